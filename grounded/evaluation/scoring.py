"""Score a model's answer to a knowledge-base question: correct, abstention or hallucination.

The protocol (../shared/DESIGN.md): a question asks for the object of a (subject, relation)
pair. An answer is

- ``correct`` when it names a KB object of that pair (aliases and normalization count; for
  a many-valued relation every listed item must be a KB object);
- ``abstain`` when it says it does not know (the fixed phrase the training data teaches);
- ``hallucination`` otherwise: a stated answer the KB does not support.

For an out-of-KB question (no object in the KB) any stated answer is a hallucination and
abstaining is the right behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from grounded.types import ABSTAIN
from kg import KnowledgeGraph
from kg.normalize import normalize

Outcome = Literal["correct", "abstain", "hallucination"]
OUTCOMES: tuple[Outcome, ...] = ("correct", "abstain", "hallucination")

# Variants a model may produce for the taught phrase; matched on the normalized answer.
_ABSTAIN_KEYS = {
    normalize(p)
    for p in (ABSTAIN, "I do not know.", "I don't know", "Unknown.", "I cannot answer that.")
}
_SPLIT = re.compile(r",\s*|\s+and\s+|\s*;\s*|\s*/\s*")


def is_abstention(answer: str) -> bool:
    """True when ``answer`` is (a variant of) the abstention phrase.

    Example:
        >>> is_abstention("I don't know."), is_abstention("i DON'T know"), is_abstention("Paris")
        (True, True, False)
    """
    return normalize(answer) in _ABSTAIN_KEYS


def answer_items(answer: str) -> list[str]:
    """Split a listed answer ("Zulu, Xhosa and English.") into its items, trimmed.

    Example:
        >>> answer_items("Zulu, Xhosa and English.")
        ['Zulu', 'Xhosa', 'English']
    """
    text = answer.strip().rstrip(".!").strip()
    return [p.strip().strip(".").strip() for p in _SPLIT.split(text) if p.strip().strip(".")]


@dataclass(frozen=True)
class Scored:
    """The outcome of one answer, with the items that matched and those that did not."""

    outcome: Outcome
    matched: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()


def _object_keys(kg: KnowledgeGraph, objects: list[str]) -> dict[str, str]:
    keys = {}
    for o in objects:
        keys[normalize(o)] = o
        for alias in kg.aliases.get(o, ()):
            keys[normalize(alias)] = o
    return keys


def score_answer(
    kg: KnowledgeGraph, subject: str | None, relation: str | None, answer: str
) -> Scored:
    """Score ``answer`` to the question about ``(subject, relation)``.

    ``subject`` None (or a pair with no object in the graph) means an out-of-KB question.
    The whole answer is tried first (an object may contain "and": "Bosnia and
    Herzegovina"), then its listed items.

    Example:
        >>> from kg import Relation, Schema, Triple
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
    objects = kg.objects(subject, relation) if subject is not None and relation else []
    if not objects:
        return Scored("hallucination", (), (answer.strip(),))
    keys = _object_keys(kg, objects)
    whole = normalize(answer.strip().rstrip(".!"))
    if whole in keys:
        return Scored("correct", (keys[whole],))
    items = answer_items(answer)
    matched = tuple(keys[normalize(i)] for i in items if normalize(i) in keys)
    unmatched = tuple(i for i in items if normalize(i) not in keys)
    if items and not unmatched:
        return Scored("correct", matched)
    return Scored("hallucination", matched, unmatched or (answer.strip(),))
