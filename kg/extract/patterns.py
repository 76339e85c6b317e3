"""Pattern extractors: the schema's own templates, read backwards, with no model.

``templates`` compiles each relation's statement template, its plural template and their
possessive variants with :func:`kg.claims.compile_template` (the reader that checks claims);
``questions`` turns each question template into statements (:func:`statements_from_question`:
"Who wrote {subject}?" → "{object} wrote {subject}.") and compiles those.

A template slot matches free text; the extractor keeps only an entity mention
(:class:`kg.extract.EntityFinder`) that sits at the slot's edge next to the template's words:
the last mention of a slot that ends the clause before the template ("The novel *Dune* was
written by"), the first of a slot that follows it ("by *Frank Herbert* in 1965", with the
following mentions when they form a list), the whole slot otherwise. So every triple names
a relation of the schema and spans written in the sentence.

Confidence (no model, no data): 0.9 for a statement template, 0.85 for its other tense
(is/was, are/were, has/had) and for a plural template, 0.8 for a possessive variant, 0.75
for a statement derived from a question; times 0.9 when a slot held words beyond its
mention. With a checker, verification replaces it.

Types: a slot whose relation declares ``date`` (or ``time``, ``year``) takes only a date
mention, ``number`` only a number, any other declared type neither; an entity whose type is
known (entities file, existing KB) fills only a slot of its type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kg.claims import TemplatePattern, compile_template, possessive_variants
from kg.extract.base import Candidate, merge_candidates
from kg.extract.documents import Sentence
from kg.extract.entities import EntityFinder, EntityMention
from kg.schema import Relation, Schema

_AUX = frozenset("is was are were does did do has have had can could will would".split())
_LEAD = re.compile(r"^[\s,;:]*(?:the\s+)?$", re.IGNORECASE)
_TAIL = re.compile(r"^(?:'s|’s)?[\s,;:]*$")
_LIST_GAP = re.compile(r"^\s*(?:,\s*(?:and\s+|or\s+)?|and\s+|or\s+|&\s*)(?:the\s+)?$", re.I)
_OF_NOUN = re.compile(
    r"^(?:what|who|which)\s+(?P<verb>is|was|are|were)\s+(?P<noun>the\s+.+\s+of)\s+\{subject\}\s*\?$",
    re.IGNORECASE,
)
_WH_SUBJECT = re.compile(
    r"^(?P<wh>who|what|which)\s+(?P<words>[^{}?]*?)\s*(?P<rest>\{subject\}.*?)\s*\?$", re.IGNORECASE
)
_IRREGULAR = {
    "begin": "began", "become": "became", "build": "built", "buy": "bought", "come": "came",
    "do": "did", "draw": "drew", "find": "found", "get": "got", "give": "gave", "go": "went",
    "have": "had", "hold": "held", "lead": "led", "leave": "left", "lose": "lost",
    "make": "made", "meet": "met", "run": "ran", "see": "saw", "sell": "sold", "sing": "sang",
    "speak": "spoke", "take": "took", "teach": "taught", "tell": "told", "win": "won",
    "write": "wrote",
}  # fmt: skip
_PAST_FORMS = frozenset(_IRREGULAR.values())
_WH_PLACE = re.compile(
    r"^(?P<wh>where|when|in\s+what\s+year|in\s+which\s+\w+)\s+(?P<aux>was|were|is|are|did|does)"
    r"\s+\{subject\}\s+(?P<verb>[\w\s]+?)\s*\?$",
    re.IGNORECASE,
)
_WH_OBJECT = re.compile(
    r"^(?:who|what|which\s+\w+)\s+(?P<aux>did|does|is|was)\s+\{subject\}\s+(?P<verb>[\w\s]+?)\s*\?$",
    re.IGNORECASE,
)


def _past(verb: str) -> str:
    """English past tense: take → took (a short irregular table), marry → married, die →
    died, work → worked."""
    first, _, rest = verb.partition(" ")
    if first.lower() in _IRREGULAR:
        first = _IRREGULAR[first.lower()]
    elif first.endswith("e"):
        first += "d"
    elif first.endswith("y") and first[-2:-1] not in "aeiou":
        first = first[:-1] + "ied"
    else:
        first += "ed"
    return f"{first} {rest}".strip()


def _present(verb: str) -> str:
    """Third person singular: contain → contains, teach → teaches, carry → carries."""
    first, _, rest = verb.partition(" ")
    if first.endswith(("s", "sh", "ch", "x", "o")):
        first += "es"
    elif first.endswith("y") and first[-2:-1] not in "aeiou":
        first = first[:-1] + "ies"
    else:
        first += "s"
    return f"{first} {rest}".strip()


def _verb_like(word: str) -> bool:
    """A finite verb after "who"/"which N": a past form (-ed, or irregular) or a third
    person present (-s), never an auxiliary."""
    w = word.lower()
    if w in _AUX:
        return False
    return w.endswith("ed") or w in _PAST_FORMS or (w.endswith("s") and len(w) > 3)


def statements_from_question(question: str) -> list[str]:
    """Statement templates a question template implies; ``[]`` when no rule applies.

    Rules: "What is the N of {subject}?" → "The N of {subject} is {object}."; "Who V
    {subject}?" or "Which N V {subject}?" (V a past or -s form) → "{object} V {subject}.";
    "Where/When was {subject} V?" → "{subject} was V in {object}."; "Where did {subject}
    V?" → "{subject} V-ed in {object}."; "Who did {subject} V?" → "{subject} V-ed
    {object}."; "What does {subject} V?" → "{subject} V-s {object}."

    Example:
        >>> statements_from_question("Who wrote {subject}?")
        ['{object} wrote {subject}.']
        >>> statements_from_question("Where was {subject} born?")
        ['{subject} was born in {object}.']
    """
    q = question.strip()
    if m := _OF_NOUN.match(q):
        noun = m["noun"][0].upper() + m["noun"][1:]
        return [f"{noun} {{subject}} {m['verb'].lower()} {{object}}."]
    if m := _WH_PLACE.match(q):
        aux, verb = m["aux"].lower(), m["verb"]
        if aux in ("did", "does"):
            return [f"{{subject}} {_past(verb)} in {{object}}."]
        return [f"{{subject}} {aux} {verb} in {{object}}."]
    if m := _WH_OBJECT.match(q):
        aux, verb = m["aux"].lower(), m["verb"]
        if aux == "did":
            return [f"{{subject}} {_past(verb)} {{object}}."]
        if aux == "does":
            return [f"{{subject}} {_present(verb)} {{object}}."]
        return []
    if m := _WH_SUBJECT.match(q):
        # "Which record label released {subject}?": the first verb-like word after the wh-
        # word (and its noun) is the verb; what follows it, up to the subject, stays.
        words = m["words"].split()
        for i, w in enumerate(words):
            if _verb_like(w) and (i > 0 or m["wh"].lower() != "which"):
                tail = " ".join(words[i:])
                return [f"{{object}} {tail} {m['rest']}."]
    return []


@dataclass(frozen=True)
class _Pattern:
    pattern: TemplatePattern
    confidence: float


_TENSE = {"is": "was", "was": "is", "are": "were", "were": "are", "has": "had", "had": "has"}
_TENSE_WORD = re.compile(r"\b(is|was|are|were|has|had)\b", re.IGNORECASE)


def tense_variant(template: str) -> str | None:
    """The template with its copula or "has" in the other tense (documents tell the past
    in the past); None when it has none.

    Example:
        >>> tense_variant("{subject} is located in {object}.")
        '{subject} was located in {object}.'
    """

    def swap(m: re.Match) -> str:
        word = _TENSE[m[1].lower()]
        return word.capitalize() if m[1][0].isupper() else word

    out = _TENSE_WORD.sub(swap, template)
    return out if out != template else None


def _statement_patterns(rel: Relation) -> list[_Pattern]:
    out = [_Pattern(compile_template(rel.template, rel.name, "statement"), 0.9)]
    if (past := tense_variant(rel.template)) is not None:
        out.append(_Pattern(compile_template(past, rel.name, "statement"), 0.85))
    out += [
        _Pattern(compile_template(t, rel.name, "statement"), 0.8)
        for t in possessive_variants(rel.template)
    ]
    if rel.plural_template:
        plural = rel.plural_template.replace("{objects}", "{object}")
        out.append(_Pattern(compile_template(plural, rel.name, "plural"), 0.85))
        out += [
            _Pattern(compile_template(t, rel.name, "plural"), 0.8)
            for t in possessive_variants(plural)
        ]
    return out


def _question_patterns(rel: Relation) -> list[_Pattern]:
    out = []
    for q in rel.questions:
        for t in statements_from_question(q):
            try:
                out.append(_Pattern(compile_template(t, rel.name, "question"), 0.75))
            except ValueError:
                continue
    return out


class PatternExtractor:
    """Reads triples with compiled template patterns (see the module docstring).

    Args:
        schema: the relations to extract (nothing else is ever emitted).
        finder: the entity finder (known entities and new ones).
        kinds: ``("statement",)`` for the templates, ``("question",)`` for statements derived
            from questions, or both.

    Example:
        >>> from kg import Relation, Schema
        >>> schema = Schema([Relation("author", "{subject} was written by {object}.",
        ...                           ["Who wrote {subject}?"])])
        >>> ex = PatternExtractor(schema, EntityFinder())
        >>> s = Sentence("d", 1, "The novel Dune was written by Frank Herbert in 1965.")
        >>> [(c.subject, c.relation, c.object) for c in ex.extract([s])]
        [('Dune', 'author', 'Frank Herbert')]
    """

    name = "patterns"

    def __init__(
        self, schema: Schema, finder: EntityFinder, kinds: Sequence[str] = ("statement", "question")
    ) -> None:
        self.schema = schema
        self.finder = finder
        self.patterns: list[_Pattern] = []
        for rel in schema:
            if "statement" in kinds:
                self.patterns += _statement_patterns(rel)
            if "question" in kinds:
                self.patterns += _question_patterns(rel)
        self.patterns.sort(key=lambda p: -p.pattern.specificity)

    def extract(self, sentences: Sequence[Sentence]) -> list[Candidate]:
        """Candidates of every sentence, one per (triple, sentence), best confidence kept."""
        out: list[Candidate] = []
        for s in sentences:
            mentions = None
            for p in self.patterns:
                m = p.pattern.regex.search(s.text)
                if m is None:
                    continue
                if mentions is None:
                    mentions = self.finder.find(s.text)
                out += self._read(s, m, p, mentions)
        return merge_candidates(out)

    def _read(
        self, s: Sentence, m: re.Match, p: _Pattern, mentions: list[EntityMention]
    ) -> list[Candidate]:
        pat = p.pattern
        rel = self.schema[pat.relation]
        subjects = _slot_mentions(s.text, m.span("subject"), pat.sides["subject"], mentions)
        objects = _slot_mentions(s.text, m.span("object"), pat.sides["object"], mentions)
        out = []
        pairs = [(x, y) for x in subjects for y in objects]
        for (sm, s_loose), (om, o_loose) in pairs:
            if sm.kind in ("date", "number") or not _type_ok(sm, rel.subject_type):
                continue
            if om.entity == sm.entity or not _type_ok(om, rel.object_type):
                continue
            conf = p.confidence * (0.9 if s_loose or o_loose else 1.0)
            notes = tuple(
                f"{x.surface!r} may name {' | '.join(x.candidates)}"
                for x in (sm, om)
                if len(x.candidates) > 1
            )
            out.append(
                Candidate(
                    sm.entity, rel.name, om.entity, s, round(conf, 6), self.name,
                    sm.surface, om.surface,
                    None if sm.known else rel.subject_type,
                    None if om.known else rel.object_type,
                    notes=notes,
                )
            )  # fmt: skip
        return out


DATE_TYPES = frozenset({"date", "time", "year", "datetime"})
"""Slot types (``subject_type``/``object_type``, any case) that only a date fills."""
NUMBER_TYPES = frozenset({"number", "quantity", "amount", "count"})
"""Slot types that only a number fills."""


def _type_ok(mention: EntityMention, wanted: str | None) -> bool:
    """Can ``mention`` fill a slot of type ``wanted``?

    A slot typed ``date`` (:data:`DATE_TYPES`) takes only a date, one typed ``number``
    (:data:`NUMBER_TYPES`) only a number, and any other typed slot neither; a known entity
    with another type than the slot's never fills it.
    """
    if wanted is None:
        return True
    kind = wanted.lower()
    if kind in DATE_TYPES:
        return mention.kind == "date" or mention.type == wanted
    if kind in NUMBER_TYPES:
        return mention.kind == "number" or mention.type == wanted
    if mention.kind in ("date", "number"):
        return False
    return mention.type is None or mention.type == wanted


def _slot_mentions(
    text: str,
    span: tuple[int, int],
    side: str,
    mentions: list[EntityMention],
) -> list[tuple[EntityMention, bool]]:
    """The mention(s) filling a slot, each with whether the slot held other words too."""
    a, b = span
    inside = [x for x in mentions if a <= x.start and x.end <= b + 3]
    if not inside:
        return []
    if side == "start":
        last = inside[-1]
        if not _TAIL.match(text[last.end : b]):
            return []
        return [(last, bool(text[a : last.start].strip()))]
    first = inside[0]
    if not _LEAD.match(text[a : first.start]):
        return []
    if side == "inner":
        if not _TAIL.match(text[first.end : b]):
            return []
        return [(first, False)]
    # end of the template: the first mention, and the ones listed after it ("A, B and C";
    # "Tacoma, Washington" has no "and": a place and its region, not a list)
    out = [(first, False)]
    prev, gaps = first, []
    for x in inside[1:]:
        gap = text[prev.end : x.start]
        if not _LIST_GAP.match(gap):
            break
        out.append((x, False))
        gaps.append(gap)
        prev = x
    if gaps and not re.search(r"\b(?:and|or)\b|&", gaps[-1]):
        out = out[:1]
    loose = bool(text[out[-1][0].end : b].strip(" .!?…"))
    return [(x, loose) for x, _ in out]


class TemplateExtractor(PatternExtractor):
    """The relations' statement and plural templates (and possessive variants) only."""

    name = "templates"

    def __init__(self, schema: Schema, finder: EntityFinder) -> None:
        super().__init__(schema, finder, kinds=("statement",))


class QuestionExtractor(PatternExtractor):
    """Statements derived from the relations' question templates only."""

    name = "questions"

    def __init__(self, schema: Schema, finder: EntityFinder) -> None:
        super().__init__(schema, finder, kinds=("question",))
