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

Answers are read as a person reads them (:func:`read_answer`): a bare object ("Pago
Pago."), a lead-in ("The answer is: Baku."), or a sentence that a template of the schema
reads as stating the object about the question's own subject and relation ("The capital of
American Samoa is Pago Pago.", "X's capital is Y.", "The languages of X are A and B.",
and the sentences that echo the question: :mod:`grounded.answer_templates`). A sentence
about another subject or relation answers nothing: it is no abstention (the model did not
say it does not know) and not correct, so the evaluator counts it a hallucination, the
graph judge ``not_enough_info`` (it states nothing to refute about the pair), and the guard
turns it away. ``tests/data/`` holds hand-labelled real answers that keep this honest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from grounded.answer_templates import HEDGE, template_reading
from kg.check import Judgement, judge_objects
from kg.normalize import normalize
from kg.text import join_items, list_items, split_sentences, strip_end, strip_lead_in

if TYPE_CHECKING:
    from grounded.types import Label
    from kg import KnowledgeGraph

ABSTAIN = "I don't know."
"""The abstention phrase the training data teaches and every reader of answers recognizes."""

ABSTAIN_PHRASINGS: tuple[str, ...] = (
    ABSTAIN,
    "I (do not|don't) know ...",
    "I (am|'m) not (sure|certain|aware) ...",
    "Not sure ...",
    "Unknown.",
    "I (cannot|can't|am unable to|'m unable to|was unable to) (answer|say|tell|determine|find) ...",
    "I (could not|couldn't|did not|didn't) find ...",
    "I (do not|don't) have [enough|any|the] (information|data|facts|knowledge|answer) ...",
    "I have no (information|data|knowledge|idea) ...",
    "No idea ...",
    "(There is|There's|There are) no [specific|available|such|relevant] "
    "(information|data|mention|facts|fact|record|answer|evidence) ...",
    "No (information|data|answer|mention|facts) ...",
    "Not enough (information|data|facts) ...",
    "The [provided|given|retrieved|above|available] "
    "(facts|fact|evidence|context|information|text) (do not|don't|does not|doesn't) "
    "(say|mention|state|contain|include|provide|give|specify|tell|list) ...",
    "... (is|are) (unknown|not known).",
    "... (is|are) not (mentioned|stated|given|listed|provided|specified) in the "
    "[provided|given|retrieved|above] (facts|evidence|context|text|information) ...",
)
"""The ways an answer says it does not know: the one list every reader of answers accepts.

Each phrasing is matched against the whole answer's words (case and punctuation ignored)
with contractions spelt out ("don't" = "do not"). ``(a|b)`` is one of the alternatives,
``[a|b]`` an optional one, ``...`` any further words (a subject, "about Banav", "on that")
as long as they do not go on to state an answer: "I don't know much, but it is Paris." is
no abstention (:data:`ANSWER_MARKERS`). A leading "Sorry," or "Unfortunately," is allowed.
"""

ANSWER_MARKERS: tuple[str, ...] = (
    "but", "however", "though", "although", "yet", "except", "it is", "they are",
    "the answer is", "i think", "i believe", "i guess", "probably", "maybe", "perhaps",
    "likely",
)  # fmt: skip
"""Words that, inside the free part (``...``) of an abstention phrasing, mean the answer
goes on to state something: the answer is then read, not taken as an abstention."""

Outcome = Literal["correct", "abstain", "hallucination"]
OUTCOMES: tuple[Outcome, ...] = ("correct", "abstain", "hallucination")

_CONTRACTIONS = {
    "don t": "do not", "doesn t": "does not", "didn t": "did not", "can t": "cannot",
    "can not": "cannot", "couldn t": "could not", "isn t": "is not", "aren t": "are not",
    "wasn t": "was not", "haven t": "have not", "hasn t": "has not", "won t": "will not",
    "i m": "i am", "it s": "it is", "there s": "there is", "that s": "that is",
    "they re": "they are",
}  # fmt: skip
_CONTRACTION = re.compile(r"\b(?:" + "|".join(map(re.escape, _CONTRACTIONS)) + r")\b")
_WORD = re.compile(r"\w+")
_SOFTENER = r"(?:(?:i am )?sorry |unfortunately |i apologize |well )*(?:but )?"
_GROUP = re.compile(r"\((?P<req>[^)]*)\)|\[(?P<opt>[^\]]*)\]|(?P<any>\.\.\.)|(?P<text>[^([.]+)")


def _canonical(text: str) -> str:
    """Normalized words with contractions spelt out: the form abstention phrasings match."""
    words = " ".join(_WORD.findall(text.casefold().replace("’", "'")))
    return _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group()], words)


def _alternatives(spec: str) -> str:
    words = (_canonical(a) for a in spec.split("|"))
    return "(?:" + "|".join(re.escape(w) for w in words if w) + ")"


def _compile_phrasing(phrasing: str) -> re.Pattern:
    """A phrasing of :data:`ABSTAIN_PHRASINGS` as a regex over :func:`_canonical` text; the
    free parts (``...``) are the named groups ``free0``, ``free1``..."""
    parts, free = [], 0
    for m in _GROUP.finditer(phrasing):
        if m["req"] is not None:
            parts.append(_alternatives(m["req"]))
        elif m["opt"] is not None:
            parts.append(_alternatives(m["opt"]) + "?")
        elif m["any"] is not None:
            parts.append(f"(?P<free{free}>.*?)")
            free += 1
        elif _canonical(m["text"]):
            parts.append(re.escape(_canonical(m["text"])))
    return re.compile("^" + _SOFTENER + r"\s*".join(parts) + "$")


_ABSTAIN_PATTERNS = tuple(_compile_phrasing(p) for p in ABSTAIN_PHRASINGS)
_MARKER = re.compile(r"\b(?:" + "|".join(re.escape(_canonical(w)) for w in ANSWER_MARKERS) + r")\b")


def _says_it_does_not_know(sentence: str) -> bool:
    key = _canonical(sentence)
    for pattern in _ABSTAIN_PATTERNS:
        m = pattern.match(key)
        if m and not any(_MARKER.search(v) for k, v in m.groupdict().items() if v):
            return True
    return False


def is_abstention(answer: str) -> bool:
    """True when ``answer`` says it does not know (:data:`ABSTAIN_PHRASINGS`), or says nothing.

    The first sentence must be an abstention phrasing; a sentence after it may explain
    ("There is no information about Banav. It may be fictional.") but not answer: a short
    fragment ("I'm not sure. Paris.") or one that opens with "But"/"However" is an answer.

    Example:
        >>> is_abstention("I don't know."), is_abstention("i do NOT know"), is_abstention("")
        (True, True, True)
        >>> is_abstention("The facts do not say what the capital of Banav is.")
        True
        >>> is_abstention("Paris."), is_abstention("I don't know much, but it is Paris.")
        (False, False)
    """
    if not _canonical(answer):
        return True
    spans = split_sentences(answer, keep_numbers=True)
    if not spans:
        return False
    first = answer[spans[0][0] : spans[0][1]]
    if not _says_it_does_not_know(strip_end(first)):
        return False
    rest = answer[spans[0][1] :].strip()
    if not rest:
        return True
    words = _canonical(rest).split()
    return len(words) > 4 and words[0] not in {"but", "however", "though", "yet", "although"}


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
    """The answer in a generated continuation: its first line, cut after its first sentence.

    A model asked one question answers in its first sentence; what follows is a ramble (an
    instruct base goes on until the token limit: "The demonym of Rwanda is Rwandan. This is
    a Bantu term that ...") or the next turn of a document ("Question: ..."), and the reader
    of an answer must not mistake either for the answer. One exception: a first line that
    ends in a colon, followed by list lines ("are:\\n- Laos\\n- Vietnam"), keeps its items,
    joined as :func:`format_answer` joins them.

    Example:
        >>> parse_generation(" Ulaanbaatar.\\nQuestion: ...")
        'Ulaanbaatar.'
        >>> parse_generation("The capital of Chad is N'Djamena. It lies on the Chari river.")
        "The capital of Chad is N'Djamena."
        >>> parse_generation("The neighbours of Cambodia are:\\n\\n1. Laos\\n2. Vietnam\\n")
        'The neighbours of Cambodia are: Laos and Vietnam.'
    """
    lines = [line.strip() for line in text.strip().splitlines()]
    first = lines[0] if lines else ""
    if first.endswith(":"):
        items = _list_lines(lines[1:])
        if items:
            return f"{first} {join_items(items)}."
    spans = split_sentences(first, keep_numbers=True)
    return first[spans[0][0] : spans[0][1]] if spans else first


_BULLET = re.compile(r"^(?:[-*•–]|\d{1,2}[.)])\s*")
_GLOSS = re.compile(r"\s*\([^()]*\)?$")  # "Myanmar (Burma)", or a gloss cut off: "French (D"


def _list_lines(lines: Sequence[str]) -> list[str]:
    """The items of the list lines under a heading: bulleted or numbered lines, lines that
    list names ("A, B and C") or short lines (a few words), up to the first that is none."""
    items: list[str] = []
    for line in lines:
        if not line:
            if items:
                break
            continue
        bulleted = _BULLET.match(line)
        if bulleted:
            pieces = [line[bulleted.end() :]]
        else:
            pieces = list_items(line)  # "Aruba, Bora Bora, the Cook Islands, and"
            if len(pieces) == 1 and len(line.split()) > 6:
                break
        for piece in pieces:
            item = _GLOSS.sub("", strip_end(piece)).strip().rstrip(",;")
            if item and item.lower() not in {"and", "or"}:
                items.append(item)
    return items


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


ReadAs = Literal["abstention", "object", "statement", "other_pair", "negated"]
READ_AS: tuple[ReadAs, ...] = ("abstention", "object", "statement", "other_pair", "negated")
"""How an answer was read (:func:`read_answer`):

- ``abstention``: it says it does not know (:func:`is_abstention`);
- ``statement``: a sentence a template reads as stating objects of the question's own
  (subject, relation): "The capital of X is Y.", "X's capital is Y.", "Y is the capital of
  X.", "The countries that border X are A and B.";
- ``other_pair``: a sentence a template reads as being about another subject or another
  relation ("The capital of China is Beijing." to a question about Mongolia): it answers
  nothing;
- ``negated``: a sentence that denies an object of the pair ("X was not written by Y."):
  it states none;
- ``object``: no template reads it: the whole answer (after a lead-in such as "It is" or
  "The answer is:") is the stated object or list, as a bare answer is.
"""

UNANSWERED: frozenset[ReadAs] = frozenset({"other_pair", "negated"})
"""Readings that state nothing about the question's pair. They are not abstentions (the
model did not say it does not know) and not correct: the evaluator counts them as
hallucinations, the judge as not enough info, the guard abstains."""


@dataclass(frozen=True)
class AnswerReading:
    """One reading of an answer to the question about a (subject, relation).

    Attributes:
        read_as: how it was read (:data:`READ_AS`).
        objects: the stated objects (``statement``; empty otherwise).
        text: the stated part that :func:`judge_against_graph` judges (``object``; for a
            ``statement`` the objects as written).
        subject: the subject the sentence names (``statement``, ``other_pair``).
        relation: the relation the sentence states (``statement``, ``other_pair``).
        wholes: what the sentence says the objects are part of ("Western Asia, part of
            Asia"); the answer is right when the objects, or these, are the KB's.
    """

    read_as: ReadAs
    objects: tuple[str, ...] = ()
    text: str = ""
    subject: str = ""
    relation: str = ""
    wholes: tuple[str, ...] = ()


_QUOTED = re.compile(r"^[\"“](?P<inner>[^\"”]+)[\"”]")  # '"Arabic" in the context of ...'
_COLON_LIST = re.compile(r"^(?P<head>[^:]{3,}?):\s+(?P<items>\S.*)$")


_TRAILING_HEDGE = re.compile(
    r"[\s,;]*(?:i\s+think|i\s+believe|i\s+guess|probably|maybe|perhaps|if\s+i\s+recall)"
    r"\s*[.!?…]*\s*$",
    re.IGNORECASE,
)
_BUT = re.compile(r",?\s+but\s+", re.IGNORECASE)


def _without_hedges(answer: str) -> str:
    """``answer`` without a hedge that states nothing: a trailing "I think" ("Spanish, I
    think."), or a leading "I don't know much, but" before what it does state."""
    answer = _TRAILING_HEDGE.sub("", answer) or answer
    m = _BUT.search(answer)
    if m and _says_it_does_not_know(answer[: m.start()]):
        return answer[m.end() :]
    return answer


def read_answer(
    kg: KnowledgeGraph, subject: str | None, relation: str | None, answer: str
) -> AnswerReading:
    """Read ``answer`` to the question about ``(subject, relation)`` as a person would.

    In order: an abstention; a sentence that a template of the schema reads (its statement
    and plural templates, their possessive forms, and the echoes of its question templates:
    :func:`echo_templates`), about the asked pair (``statement``) or about another
    (``other_pair``); a heading that names the subject followed by a colon and the answer
    ("The neighbouring countries of X are: A and B."); else the whole answer, after a
    lead-in, as a bare object or list (``object``). Without a subject or relation in the
    schema (an out-of-KB question), only the abstention and the bare object are read.

    Example:
        >>> from kg import Relation, Schema, Triple, KnowledgeGraph
        >>> kg = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar"),
        ...     Triple("China", "capital", "Beijing")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> r = read_answer(kg, "Mongolia", "capital", "The capital of Mongolia is Ulaanbaatar.")
        >>> r.read_as, r.objects, r.subject, r.relation
        ('statement', ('Ulaanbaatar',), 'Mongolia', 'capital')
        >>> read_answer(kg, "Mongolia", "capital", "The capital of China is Beijing.").read_as
        'other_pair'
        >>> read_answer(kg, "Mongolia", "capital", "The answer is: Ulaanbaatar.").text
        'Ulaanbaatar'
    """
    if is_abstention(answer):
        return AnswerReading("abstention")
    answer = _without_hedges(answer)
    body = strip_lead_in(answer)
    quoted = _QUOTED.match(body.strip())
    if quoted and quoted["inner"].strip():
        body = quoted["inner"]
    body = HEDGE.sub("", body, count=1)
    if subject is None or not relation or relation not in kg.schema:
        return AnswerReading("object", (), strip_end(body))
    found = template_reading(kg, subject, relation, answer)  # "It was written by Y."
    if found is None or found.kind == "other_pair":
        found = template_reading(kg, subject, relation, body) or found
    if found is not None and found.kind != "other_pair":
        text = join_items(list(found.objects))
        return AnswerReading(
            found.kind, found.objects, text, found.subject, found.relation, found.wholes
        )
    listed = _COLON_LIST.match(strip_end(body))
    if listed:
        head = listed["head"]
        asked = {subject, *kg.resolve(subject)}
        named = {c for m in kg.linker.link(head) for c in m.candidates}
        if asked & named or normalize(subject) in normalize(head):
            return AnswerReading("object", (), strip_end(strip_lead_in(listed["items"])))
    if found is not None:
        return AnswerReading("other_pair", (), "", found.subject, found.relation)
    return AnswerReading("object", (), strip_end(body))


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
    """The outcome of one answer, with the items that matched and those that did not, and
    how the answer was read (:data:`READ_AS`)."""

    outcome: Outcome
    matched: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()
    read_as: ReadAs = "object"


def score_answer(
    kg: KnowledgeGraph, subject: str | None, relation: str | None, answer: str
) -> Scored:
    """Score ``answer`` to the question about ``(subject, relation)`` (see the module).

    ``subject`` None (or a pair with no object in the graph) means an out-of-KB question.
    The answer is read by :func:`read_answer`: a sentence about another pair, or one that
    denies an object, answers nothing and is scored ``hallucination`` (it is no abstention:
    see :data:`UNANSWERED`).

    Example:
        >>> from kg import Relation, Schema, Triple, KnowledgeGraph
        >>> kg = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]),
        ...     {"Ulaanbaatar": ["Ulan Bator"]})
        >>> score_answer(kg, "Mongolia", "capital", "Ulan Bator.").outcome
        'correct'
        >>> score_answer(kg, "Mongolia", "capital", "The capital of Mongolia is Ulan Bator.")
        Scored(outcome='correct', matched=('Ulaanbaatar',), unmatched=(), read_as='statement')
        >>> score_answer(kg, "Mongolia", "capital", "Erdenet.").outcome
        'hallucination'
        >>> score_answer(kg, "Atlantis", "capital", "I don't know.").outcome
        'abstain'
    """
    reading = read_answer(kg, subject, relation, answer)
    if reading.read_as == "abstention":
        return Scored("abstain", read_as="abstention")
    stated = (answer.strip(),)
    if reading.read_as in UNANSWERED:
        return Scored("hallucination", (), stated, reading.read_as)
    if subject is None or not relation or relation not in kg.schema:
        return Scored("hallucination", (), stated, reading.read_as)
    if not kg.objects(subject, relation):
        return Scored("hallucination", (), stated, reading.read_as)
    judgement = _judge_reading(kg, subject, relation, reading)
    matched = tuple(
        dict.fromkeys(
            _kb_object(c.claimed, c.kb_objects, kg)
            for c in judgement.checks
            if c.result == "supported"
        )
    )
    if judgement.result == "supported":
        return Scored("correct", matched, (), reading.read_as)
    return Scored(
        "hallucination", matched, judgement.unsupported_objects or stated, reading.read_as
    )


def _judge_reading(
    kg: KnowledgeGraph, subject: str, relation: str, reading: AnswerReading
) -> Judgement:
    """The graph's judgement of the objects a reading states (see :func:`read_answer`)."""
    if reading.read_as == "statement" and len(reading.objects) > 1:
        judgement = judge_objects(kg, subject, relation, list(reading.objects))
    else:
        judgement = judge_against_graph(kg, subject, relation, reading.text)
    if judgement.result != "supported" and reading.wholes:
        wider = judge_objects(kg, subject, relation, list(reading.wholes))
        if wider.result == "supported":
            return wider
    return judgement


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
    if subject is None or not relation or relation not in kg.schema:
        return "not_enough_info"
    reading = read_answer(kg, subject, relation, answer)
    if reading.read_as == "abstention" or reading.read_as in UNANSWERED:
        return "not_enough_info"
    result = _judge_reading(kg, subject, relation, reading).result
    return {"supported": "supported", "contradicted": "refuted"}.get(result, "not_enough_info")  # type: ignore[return-value]
