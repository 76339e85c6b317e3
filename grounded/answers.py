"""The one reading of an answer: abstention, answer format, listed items, scoring.

Every part of grounded that writes or reads an answer asks this module: the training
targets (:func:`format_answer`), the pretraining corpus, generation (:func:`parse_generation`),
the evaluator (:func:`score_answer`), the feedback judge and the guard (:func:`judge_answer`,
:func:`is_abstention`). Before this module the rules were written four times and disagreed:
"I do not know." was an abstention to the evaluator but a refuted answer to the feedback
term, which pushed it down in training.

The protocol (../shared/DESIGN.md): a question asks for the object of a (subject, relation)
pair. An answer is

- ``correct`` when it names a KB object of that pair (aliases and normalization count; for
  a listed answer every item must be a KB object);
- ``abstain`` when it says it does not know (:data:`ABSTAIN`, the phrase the training data
  teaches, or one of :data:`ABSTAIN_PHRASINGS`);
- ``hallucination`` otherwise: a stated answer the KB does not support. An empty answer
  states nothing and counts as an abstention.

For an out-of-KB question (no object in the KB) any stated answer is a hallucination and
abstaining is the right behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kg.check import Judgement, judge_objects
from kg.normalize import normalize
from kg.text import join_items, list_items, strip_end, strip_lead_in

if TYPE_CHECKING:
    from grounded.types import Label
    from kg import KnowledgeGraph

ABSTAIN = "I don't know."
"""The abstention phrase the training data teaches and every reader of answers recognizes."""

ABSTAIN_PHRASINGS: tuple[str, ...] = (
    ABSTAIN,
    "I do not know.",
    "Unknown.",
    "I cannot answer that.",
    "I can't answer that.",
    "I don't know the answer.",
    "Not enough information.",
)
"""Phrasings accepted as the abstention (matched after :func:`kg.normalize`)."""

Outcome = Literal["correct", "abstain", "hallucination"]
OUTCOMES: tuple[Outcome, ...] = ("correct", "abstain", "hallucination")

_ABSTAIN_KEYS = frozenset(normalize(p) for p in ABSTAIN_PHRASINGS)


def is_abstention(answer: str) -> bool:
    """True when ``answer`` says it does not know, or says nothing at all.

    Example:
        >>> is_abstention("I don't know."), is_abstention("i do NOT know"), is_abstention("")
        (True, True, True)
        >>> is_abstention("Paris.")
        False
    """
    key = normalize(strip_end(answer))
    return not key or key in _ABSTAIN_KEYS


def format_answer(objects: Sequence[str]) -> str:
    """The answer naming ``objects`` (:data:`ABSTAIN` when there are none): the items joined
    as :func:`answer_items` splits them (``A, B and C``), ending in a full stop.

    Example:
        >>> format_answer(["Zulu", "English"]), format_answer([])
        ('Zulu and English.', "I don't know.")
    """
    if not objects:
        return ABSTAIN
    listed = join_items(list(objects))
    return listed if listed.endswith(".") else listed + "."


def parse_generation(text: str) -> str:
    """The answer in a generated continuation: its first line, trimmed.

    Example:
        >>> parse_generation(" Ulaanbaatar.\\nQuestion: ...")
        'Ulaanbaatar.'
    """
    return text.strip().split("\n", 1)[0].strip()


def answer_text(answer: str) -> str:
    """The stated part of an answer: no lead-in ("It is ..."), no final full stop.

    Example:
        >>> answer_text("I think it is Canberra.")
        'Canberra'
    """
    return strip_end(strip_lead_in(answer))


def answer_items(answer: str) -> list[str]:
    """Split a listed answer ("Zulu, Xhosa and English.", "Zulu/English") into its items.

    Example:
        >>> answer_items("Zulu, Xhosa and English."), answer_items("Zulu/English.")
        (['Zulu', 'Xhosa', 'English'], ['Zulu', 'English'])
    """
    items = (strip_end(i) for i in list_items(answer_text(answer)))
    return [i for i in items if i]


def judge_against_graph(kg: KnowledgeGraph, subject: str, relation: str, answer: str) -> Judgement:
    """The graph's judgement of a stated answer to the question about ``(subject, relation)``.

    The whole answer is tried first (an object may contain "and": "Bosnia and Herzegovina");
    when the graph does not hold it whole, each listed item is judged
    (:func:`kg.check.judge_objects`, with its list rule).

    Raises:
        KeyError: ``relation`` is not in the schema.
    """
    whole = answer_text(answer)
    judgement = judge_objects(kg, subject, relation, [whole])
    if judgement.result == "supported":
        return judgement
    items = answer_items(answer)
    if len(items) > 1:
        return judge_objects(kg, subject, relation, items)
    return judgement


@dataclass(frozen=True)
class Scored:
    """The outcome of one answer, with the items that matched and those that did not."""

    outcome: Outcome
    matched: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()


def score_answer(
    kg: KnowledgeGraph, subject: str | None, relation: str | None, answer: str
) -> Scored:
    """Score ``answer`` to the question about ``(subject, relation)`` (see the module).

    ``subject`` None (or a pair with no object in the graph) means an out-of-KB question.

    Example:
        >>> from kg import Relation, Schema, Triple, KnowledgeGraph
        >>> kg = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]),
        ...     {"Ulaanbaatar": ["Ulan Bator"]})
        >>> score_answer(kg, "Mongolia", "capital", "Ulan Bator.").outcome
        'correct'
        >>> score_answer(kg, "Mongolia", "capital", "Erdenet.").outcome
        'hallucination'
        >>> score_answer(kg, "Atlantis", "capital", "I don't know.").outcome
        'abstain'
    """
    if is_abstention(answer):
        return Scored("abstain")
    if subject is None or not relation or relation not in kg.schema:
        return Scored("hallucination", (), (answer.strip(),))
    if not kg.objects(subject, relation):
        return Scored("hallucination", (), (answer.strip(),))
    judgement = judge_against_graph(kg, subject, relation, answer)
    matched = tuple(
        dict.fromkeys(
            _kb_object(c.claimed, c.kb_objects, kg)
            for c in judgement.checks
            if c.result == "supported"
        )
    )
    if judgement.result == "supported":
        return Scored("correct", matched)
    return Scored("hallucination", matched, judgement.unsupported_objects or (answer.strip(),))


def _kb_object(claimed: str, kb_objects: Sequence[str], kg: KnowledgeGraph) -> str:
    """The KB object a supported ``claimed`` name stands for."""
    resolved = kg.resolve(claimed)
    key = normalize(claimed)
    for o in kb_objects:
        if o == claimed or o in resolved or normalize(o) == key:
            return o
        if any(normalize(a) == key for a in kg.aliases.get(o, ())):
            return o
    return claimed


def judge_answer(
    kg: KnowledgeGraph, subject: str | None, relation: str | None, answer: str
) -> Label:
    """The verdict the graph alone gives an answer to the question about ``(subject, relation)``.

    ``supported`` when every stated item is a KB object of the pair, ``refuted`` when the graph
    contradicts the answer (a functional or closed relation with another object, or a list
    with an item the KB does not hold), ``not_enough_info`` otherwise. An abstention (or an
    empty answer) is never refuted: it states nothing.

    Example:
        >>> from kg import Relation, Schema, Triple, KnowledgeGraph
        >>> kg = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> judge_answer(kg, "Mongolia", "capital", "Beijing.")
        'refuted'
        >>> judge_answer(kg, "Mongolia", "capital", "I do not know.")
        'not_enough_info'
    """
    if is_abstention(answer) or subject is None or not relation or relation not in kg.schema:
        return "not_enough_info"
    result = judge_against_graph(kg, subject, relation, answer).result
    return {"supported": "supported", "contradicted": "refuted"}.get(result, "not_enough_info")  # type: ignore[return-value]
