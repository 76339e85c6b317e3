"""Reading a claim as (subject, relation, objects) with the knowledge base's own templates.

Every relation's statement template (and plural template, and question templates when an
answer comes with its question) becomes a regular expression with named slots:
``"The capital of {subject} is {object}."`` reads ``"As far as I know, the capital of
Australia is Sydney, right?"`` as subject ``Australia``, object ``Sydney``. Nothing is
specific to one knowledge base: the templates come from ``relations.json``.

The subject must resolve to an entity of the graph (aliases, case and accents ignored); the
object is whatever fills its slot and need not be an entity ("Sydney" is no node of the
countries KB, yet the claim is decidable: ``capital`` is functional). Slot text is cleaned
of extra clauses ("..., as far as I know") and split into items when it lists several
("Pashto, Uzbek and Turkmen"), keeping names that contain commas or "and" whole when the
graph knows them ("Bosnia and Herzegovina").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from kg import EntityId, KnowledgeGraph, normalize
from kg.clauses import (
    Clause,
    coordinated,
    is_filler,
    join_enumeration,
    split_clauses,
    strip_joiner,
    strip_markup,
)
from kg.text import (
    boundaries,
    list_separators,
    strip_end,
    strip_lead_in,
)

SlotSide = Literal["start", "end", "inner"]
"""Where a slot sits in its template; extra words can only leak into a start or end slot."""

ReadingVia = Literal["statement", "plural", "question", "given", "linked"]

_TEMPLATE_TOKEN = re.compile(r"\{(?P<slot>\w+)\}|(?P<word>\w+)|(?P<space>\s+)|(?P<mark>[^\w\s])")
_FINAL_MARKS = frozenset(".!?…")
_NOT = re.compile(r"^\s*(?:not|never)\s+", re.IGNORECASE)
_THAT = re.compile(r"\bthat\s+", re.IGNORECASE)  # "It is well known that X ..."
# Slots that refer back rather than name: never "a subject the KB does not know".
_PRONOUN = re.compile(
    r"^(?:it|its|they|their|them|he|she|his|her|this|that|these|those|which|what|who)\b",
    re.IGNORECASE,
)


# Hedges and additions before a list item ("and also Atlantis", "possibly Atlantis"): the
# item is still stated, so it is judged.
_QUALIFIER = re.compile(
    r"^(?:(?:also|possibly|probably|perhaps|maybe|likely|even|presumably|arguably|"
    r"certainly|definitely|surely|plus|including|especially|notably|then|finally|lastly|"
    r"and|or|as\s+well\s+as|along\s+with|together\s+with|not\s+to\s+mention|"
    r"i\s+(?:think|believe|guess))\b[\s,]*)+",
    re.IGNORECASE,
)
_TRAILING_QUALIFIER = re.compile(r"(?:[\s,]+(?:too|as\s+well|also|probably|perhaps|maybe))+$", re.I)


def unqualified(item: str) -> str:
    """A list item without the hedges around it: "and possibly Atlantis" → "Atlantis".

    Example:
        >>> unqualified("and also Atlantis"), unqualified("Atlantis too")
        ('Atlantis', 'Atlantis')
    """
    return _TRAILING_QUALIFIER.sub("", _QUALIFIER.sub("", item.strip())).strip()


def _name_like(text: str) -> bool:
    """A short capitalised phrase or a number: a list item, not a trailing clause."""
    words = text.split()
    return 0 < len(words) <= 4 and (text[:1].isupper() or text[:1].isdigit())


def _negation(slot: str) -> tuple[str, bool]:
    """``slot`` without a leading "not"/"never", and whether it had one."""
    m = _NOT.match(slot)
    return (slot[m.end() :], True) if m else (slot, False)


@dataclass(frozen=True)
class TemplatePattern:
    """A relation template compiled to a regular expression.

    Attributes:
        relation: the relation's name.
        kind: ``statement``, ``plural`` or ``question``.
        template: the source template.
        regex: the compiled pattern; groups are the template's slot names.
        specificity: literal words the pattern requires (more is more specific).
        sides: slot name → where it sits (``start``, ``end`` or ``inner``).
    """

    relation: str
    kind: str
    template: str
    regex: re.Pattern
    specificity: int
    sides: Mapping[str, SlotSide]


_OF_SUBJECT = re.compile(r"\bthe\s+(?P<noun>[\w\s-]+?)\s+of\s+\{subject\}", re.IGNORECASE)


def possessive_variants(template: str) -> list[str]:
    """The template's "the X of {subject}" written "{subject}'s X", as people also write it.

    Claims in a user's own words often use the possessive ("Manganese's atomic number is
    10.") where the relation file says "The atomic number of {subject} is {object}."; the
    reader compiles both, so no KB has to list the variant.

    Example:
        >>> possessive_variants("The atomic number of {subject} is {object}.")
        ["{subject}'s atomic number is {object}."]
        >>> possessive_variants("What is the capital of {subject}?")
        ["What is {subject}'s capital?"]
        >>> possessive_variants("{subject} borders {object}.")
        []
    """
    m = _OF_SUBJECT.search(template)
    if m is None:
        return []
    variant = template[: m.start()] + "{subject}'s " + m["noun"] + template[m.end() :]
    return [variant[:1].upper() + variant[1:] if m.start() == 0 else variant]


_ARTICLES = frozenset({"a", "an", "the"})


def compile_template(template: str, relation: str = "", kind: str = "statement") -> TemplatePattern:
    """Compile ``template`` (``{subject}``, ``{object}`` or ``{objects}`` slots) to a regex.

    Literal words match case-insensitively with any whitespace between them; a "the" next to
    a slot is optional; sentence-final punctuation is optional; text before a leading literal
    or after a trailing literal is allowed (an extra clause).

    Raises:
        ValueError: ``template`` has no slot, or repeats one.

    Example:
        >>> p = compile_template("The capital of {subject} is {object}.")
        >>> m = p.regex.search("As far as I know, the capital of Australia is Sydney.")
        >>> m["subject"], m["object"], p.sides["object"]
        ('Australia', 'Sydney', 'end')
    """
    tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TEMPLATE_TOKEN.finditer(template)]
    while tokens and (tokens[-1][0] == "space" or tokens[-1][1] in _FINAL_MARKS):
        tokens.pop()  # sentence-final punctuation is optional in claims
    slots = [v for kind_, v in tokens if kind_ == "slot"]
    if not slots:
        raise ValueError(f"`template` {template!r} has no {{slot}}")
    if len(set(slots)) != len(slots):
        raise ValueError(f"`template` {template!r} repeats a slot; each may appear once")
    solid = [i for i, (kind_, _) in enumerate(tokens) if kind_ != "space"]
    sides: dict[str, SlotSide] = {}
    out: list[str] = []
    specificity = 0
    skip_space = False
    for i, (kind_, value) in enumerate(tokens):
        if kind_ == "space":
            if skip_space:
                skip_space = False
                continue
            near_mark = tokens[i - 1][0] == "mark" or tokens[i + 1][0] == "mark"
            out.append(r"\s*" if near_mark else r"\s+")
        elif kind_ == "slot":
            sides[value] = "start" if i == solid[0] else "end" if i == solid[-1] else "inner"
            out.append(f"(?P<{value}>.+?)")
        elif kind_ == "mark":
            out.append(re.escape(value))
        else:
            nxt = tokens[i + 2] if i + 2 < len(tokens) and tokens[i + 1][0] == "space" else None
            if value.lower() == "the" and (i == solid[0] or (nxt and nxt[0] == "slot")):
                out.append(r"(?:the\s+)?")  # "the" next to a slot is optional
                skip_space = nxt is not None
                continue
            specificity += 1
            if value.lower() in _ARTICLES:
                # "{object} is an official language of {subject}" also reads "... is the
                # official language of ...": a person does not weigh the article
                out.append(r"(?:an?|the)")
                continue
            out.append(re.escape(value))
    if tokens[0][0] == "word":
        out.insert(0, r"\b")
    out.append(r"[\s.!?…]*$" if tokens[-1][0] == "slot" else r"(?=\W|$)")
    regex = re.compile("".join(out), re.IGNORECASE)
    return TemplatePattern(relation, kind, template, regex, specificity, sides)


@dataclass(frozen=True)
class Reading:
    """One reading of a claim as a (subject, relation, objects) statement.

    Attributes:
        relation: the relation's name.
        subject: the subject as written (what :func:`kg.check_claim` resolves).
        subjects: the entities ``subject`` may name (several when a name is shared).
        objects: the claimed objects as written; several when the claim lists them.
        via: how it was read: a ``statement``/``plural`` template, a ``question`` template
            plus the answer, ``given`` subject and relation, or ``linked`` entities.
        specificity: literal words matched (ranks competing readings).
        negated: the claim denies the objects ("... is not Sydney").
    """

    relation: str
    subject: str
    subjects: tuple[EntityId, ...]
    objects: tuple[str, ...]
    via: ReadingVia
    specificity: int = 0
    negated: bool = False


class ClaimReader:
    """Reads claims with the templates of a knowledge graph's schema.

    Args:
        kg: the graph whose relations, entities and aliases define what can be read.

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema, Triple
        >>> kg = KnowledgeGraph([Triple("Australia", "capital", "Canberra")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> r = ClaimReader(kg).read("The capital of Australia is Sydney, I think.")[0]
        >>> r.relation, r.subjects, r.objects
        ('capital', ('Australia',), ('Sydney',))
    """

    def __init__(self, kg: KnowledgeGraph) -> None:
        self.kg = kg
        statements, questions = [], []
        for rel in kg.schema:
            for template in (rel.template, *possessive_variants(rel.template)):
                statements.append(compile_template(template, rel.name, "statement"))
            if rel.plural_template:
                plural = rel.plural_template.replace("{objects}", "{object}")
                for template in (plural, *possessive_variants(plural)):
                    statements.append(compile_template(template, rel.name, "plural"))
            questions.extend(
                compile_template(t, rel.name, "question")
                for q in rel.questions
                for t in (q, *possessive_variants(q))
            )
        key = lambda p: -p.specificity  # noqa: E731
        self.statements = sorted(statements, key=key)
        self.questions = sorted(questions, key=key)
        subjects: dict[str, set[EntityId]] = defaultdict(set)
        objects: dict[str, set[EntityId]] = defaultdict(set)
        for s, o, r in kg.graph.edges(keys=True):
            subjects[r].add(s)
            objects[r].add(o)
        typed: dict[str, set[EntityId]] = defaultdict(set)
        for rel in kg.schema:
            if rel.subject_type:
                typed[rel.subject_type] |= subjects[rel.name]
            if rel.object_type:
                typed[rel.object_type] |= objects[rel.name]
        self.typed = {t: frozenset(v) for t, v in typed.items()}
        # Entities whose type the graph tells (a node with facts); an alias-only name has none.
        self._with_type = frozenset().union(*subjects.values(), *objects.values())
        self.relation_subjects = {r: frozenset(v) for r, v in subjects.items()}
        self.relation_objects = {r: frozenset(v) for r, v in objects.items()}
        self.pools: dict[str, frozenset[EntityId]] = {
            rel.name: frozenset(kg.object_pool(rel.name)) for rel in kg.schema
        }
        self._object_keys: dict[str, set[str]] = defaultdict(set)
        for r, objs in self.relation_objects.items():
            for o in objs:
                self._object_keys[r].add(normalize(o))
                self._object_keys[r].update(normalize(a) for a in kg.aliases.get(o, ()))

    # -- statements --------------------------------------------------------------------------
    def read(self, text: str) -> list[Reading]:
        """Readings of a statement, most specific first; ``[]`` when no template matches."""
        out = []
        for p in self.statements:
            m = p.regex.search(text)
            if m is None:
                continue
            subject, subjects = self.subject_of(m["subject"], p.sides["subject"])
            if not subjects:
                continue
            slot, negated = (
                _negation(m["object"]) if p.sides["object"] != "start" else (m["object"], False)
            )
            objects = self.objects_of(slot, p.sides["object"], p.relation)
            if objects:
                out.append(
                    Reading(
                        p.relation,
                        subject,
                        subjects,
                        objects,
                        "plural" if p.kind == "plural" else "statement",
                        p.specificity,
                        negated,
                    )
                )
        return self._rank(out)

    def _rank(self, readings: list[Reading]) -> list[Reading]:
        # Most specific first; among equals, a reading whose subject has facts of the relation.
        def key(r: Reading) -> tuple[int, int]:
            subs = self.relation_subjects.get(r.relation, frozenset())
            return (-r.specificity, 0 if any(s in subs for s in r.subjects) else 1)

        return sorted(readings, key=key)

    # -- questions and answers -----------------------------------------------------------------
    def read_question(self, question: str) -> list[Reading]:
        """(subject, relation) readings of a question, with no objects yet."""
        out = []
        for p in self.questions:
            m = p.regex.search(question)
            if m is None:
                continue
            subject, subjects = self.subject_of(m["subject"], p.sides["subject"])
            if subjects:
                out.append(Reading(p.relation, subject, subjects, (), "question", p.specificity))
        return self._rank(out)

    def read_answer(self, question: str, answer: str) -> list[Reading]:
        """Readings of ``answer`` in the context of ``question``.

        A full statement in the answer is read by the statement templates (readings of the
        question's relation first); a short answer ("Canberra.", "It is Canberra.") takes
        its subject and relation from the question.
        """
        asked = self.read_question(question)
        readings = self.read(answer)
        if readings:
            relations = {q.relation for q in asked}
            return sorted(readings, key=lambda r: r.relation not in relations)
        body, negated = _negation(strip_lead_in(answer))
        out = []
        for q in asked:
            objects = self.objects_of(body, "end", q.relation)
            if objects:
                out.append(
                    Reading(
                        q.relation,
                        q.subject,
                        q.subjects,
                        objects,
                        "question",
                        q.specificity,
                        negated,
                    )
                )
        return out

    def read_given(self, subject: str, relation: str, answer: str) -> Reading | None:
        """The reading of ``answer`` to a question about a known (subject, relation).

        Raises:
            KeyError: ``relation`` is not in the schema.
        """
        self.kg.schema[relation]  # raises with the known relations
        subjects = self.kg.resolve(subject)
        for r in self.read(answer):
            if r.relation == relation:
                return Reading(
                    relation, subject, subjects, r.objects, "given", r.specificity, r.negated
                )
        body, negated = _negation(strip_lead_in(answer))
        objects = self.objects_of(body, "end", relation)
        if not objects:
            return None
        return Reading(relation, subject, subjects, objects, "given", 0, negated)

    def unnamed_subject(self, claim: str, question: str | None = None) -> str | None:
        """The subject a template reads in ``question`` (else in ``claim``) when it names no
        entity of the graph (no name, alias or mention inside it); None otherwise.

        Such a claim is about something the knowledge base does not know ("What is the
        capital of Eljunlor?"): KB facts cannot support it.

        Example:
            >>> question = "What is the capital of Eljunlor?"
            >>> reader.unnamed_subject("Lima.", question)  # doctest: +SKIP
            'Eljunlor'
        """
        text, patterns = (question, self.questions) if question else (claim, self.statements)
        for p in patterns:
            m = p.regex.search(text)
            if m is None:
                continue
            slot = m["subject"].strip().rstrip("?.!").strip()
            if not slot or _PRONOUN.match(slot):
                continue
            if self.subject_of(m["subject"], p.sides["subject"])[1]:
                return None  # a template reads a known subject: not unnamed
            return slot
        return None

    # -- clauses ---------------------------------------------------------------------------------
    def clauses(self, text: str, *, answer: bool = False) -> list[Clause]:
        """The clauses of ``text``, each to be judged on its own (see :mod:`kg.clauses`).

        Markup is stripped and numbered or bulleted lists are joined ("1. China 2. Russia"
        reads "China, Russia"); the text is split at sentence ends, semicolons, dashes,
        parentheses and line breaks, then before coordinated clauses that a template reads
        ("..., and the capital of Peru is Tokyo") and relative clauses ("..., which borders
        Atlantis", read as "N'Djamena borders Atlantis"). Text a reading leaves unread is
        found by :meth:`unread_tail`.

        Args:
            text: a claim or an answer.
            answer: ``text`` answers a question, so its first clause may be a bare object.

        Example:
            >>> [c.text for c in reader.clauses("The capital of Chad is N'Djamena; the "
            ...  "capital of Peru is Tokyo.")]  # doctest: +SKIP
            ["The capital of Chad is N'Djamena", 'the capital of Peru is Tokyo.']
        """
        cleaned = join_enumeration(strip_markup(text))
        protect = [(m.start, m.end) for m in self.kg.linker.link(cleaned)]
        out: list[Clause] = []
        pieces = split_clauses(cleaned, protect=protect)
        for piece in pieces:
            if piece == cleaned:
                spans = protect  # one clause: the mentions are those of the whole text
            else:
                spans = [(m.start, m.end) for m in self.kg.linker.link(piece)]
            first = answer and not any(not is_filler(c.text) for c in out)
            out.extend(
                coordinated(
                    piece, self._readable, self._antecedent, protect=spans, first_is_answer=first
                )
            )
        return out

    def unread_tail(self, text: str, reading: Reading) -> str:
        """The text after the last name ``reading`` read in ``text``, when it states something
        ("..., but Atlantis is its twin"); ``""`` when it is empty or filler ("I think")."""
        low = text.lower()
        end = 0
        for part in (reading.subject, *reading.objects):
            i = low.rfind(part.lower()) if part else -1
            if i >= 0:
                end = max(end, i + len(part))
        if end == 0:
            return ""
        tail = strip_joiner(text[end:])
        return "" if is_filler(tail) else tail

    def _readable(self, text: str) -> bool:
        """A statement template reads ``text`` from its start (filler aside), so ``text`` can
        stand as a clause of its own."""
        for p in self.statements:
            m = p.regex.search(text)
            if m is None or not is_filler(text[: m.start()]):
                continue
            slot = m["subject"]
            surface, subjects = self.subject_of(slot, p.sides["subject"])
            if not subjects:
                continue
            if p.sides["subject"] == "start":
                head = slot.lower().rfind(surface.lower())
                if head < 0 or not is_filler(slot[:head]):
                    continue
            return True
        return False

    def _antecedent(self, text: str) -> str | None:
        """What "which" after ``text`` refers to: the object its reading ends with, else its
        last named entity, else ``text`` itself when it is a short name."""
        readings = self.read(text)
        if readings and readings[0].objects:
            return readings[0].objects[-1]
        mentions = self.kg.linker.link(text)
        if mentions:
            return mentions[-1].surface
        short = strip_end(text)
        return short if _name_like(short) else None

    # -- slots -------------------------------------------------------------------------------
    def known(self, text: str, relation: str | None = None) -> bool:
        """True if ``text`` names an entity, or an object of ``relation`` (literal values)."""
        if not text.strip():
            return False
        if self.kg.resolve(text):
            return True
        return relation is not None and normalize(text) in self._object_keys.get(relation, ())

    def compatible(self, relation: str, text: str) -> bool | None:
        """Can ``text`` be an object of ``relation``? None when it names no known entity.

        An entity is compatible when it has the relation's object type (it appears as an
        object, or a subject, of a relation with that type), or, for untyped relations, when
        some subject has it as an object of ``relation``.
        """
        if normalize(text) in self._object_keys.get(relation, ()):
            return True  # an object of the relation somewhere, whatever else the name names
        ids = self.kg.resolve(text)
        if not ids:
            return None
        if not any(i in self._with_type for i in ids):
            return None  # named, but the graph holds no fact about it: its type is unknown
        pool = self.pools.get(relation, frozenset())
        return any(i in pool for i in ids)

    def subject_of(self, text: str, side: SlotSide) -> tuple[str, tuple[EntityId, ...]]:
        """The subject named in a slot: the whole slot, else the mention next to the template."""
        text = strip_end(text) if side == "end" else text.strip()
        ids = self.kg.resolve(text)
        if ids:
            return text, ids
        mentions = self.kg.linker.link(text)
        if not mentions:
            return text, ()
        if side == "start":
            m = mentions[-1]
        elif side == "end":
            m = mentions[0]
        else:
            m = max(mentions, key=lambda m: m.end - m.start)
        return m.surface, m.candidates

    def objects_of(self, text: str, side: SlotSide, relation: str) -> tuple[str, ...]:
        """The object items in a slot (several when it lists them); ``()`` if empty.

        Order of attempts: the whole slot names a known entity or object; the slot is a list
        whose items (merged where a merge is a known name) are all known; extra words are
        cut at a clause boundary (keeping the longest known part).
        """
        text = strip_end(text) if side != "start" else text.strip()
        if side == "start":
            text = self._trim_start(text, relation)
        if not text:
            return ()
        if self.known(text, relation):
            return (text,)
        items = self._items(text, relation)
        if len(items) > 1:
            if all(self.known(i, relation) for i in items):
                return tuple(items)
            if side == "end":
                last = self._trim_end(items[-1], relation)
                listed = (*items[:-1], last)
                if all(self.known(i, relation) for i in listed):
                    return listed
                # A list of names beside known ones ("China, Russia and Atlantis") states
                # every item: an invented one must be judged, not trimmed away as a clause.
                if any(self.known(i, relation) for i in listed) and all(
                    _name_like(i) for i in listed
                ):
                    return listed
        if side == "end":
            return (self._trim_end(text, relation),)
        return (text,)

    def _items(self, text: str, relation: str) -> list[str]:
        """List items of ``text``, merging neighbours whose joined span is a known name."""
        seps = list_separators(text)
        if not seps:
            return [text]
        starts = [0] + [b for _, b in seps]
        ends = [a for a, _ in seps] + [len(text)]
        items, i = [], 0
        while i < len(starts):
            j = next(
                (
                    j
                    for j in range(len(starts) - 1, i, -1)
                    if self.known(text[starts[i] : ends[j]], relation)
                ),
                i,
            )
            item = text[starts[i] : ends[j]].strip()
            if not self.known(item, relation):
                bare = unqualified(item)
                item = "" if not bare and is_filler(item) else bare or item
            if item:
                items.append(item)
            i = j + 1
        return items

    def _trim_end(self, text: str, relation: str) -> str:
        cuts = boundaries(text)
        for a, _ in reversed(cuts):
            if self.known(text[:a], relation):
                return text[:a].strip()
        mentions = self.kg.linker.link(text)
        if mentions and mentions[0].start == 0 and cuts and mentions[0].end <= cuts[0][0]:
            return mentions[0].surface
        return text[: cuts[0][0]].strip() if cuts and cuts[0][0] > 0 else text

    def _trim_start(self, text: str, relation: str) -> str:
        cuts = boundaries(text) + [m.span() for m in _THAT.finditer(text)]
        cuts.sort()
        for _, b in cuts:
            if self.known(text[b:], relation):
                return text[b:].strip()
        mentions = self.kg.linker.link(text)
        if mentions and mentions[-1].end == len(text.rstrip()):
            return mentions[-1].surface
        return text[cuts[-1][1] :].strip() if cuts and cuts[-1][1] < len(text) else text
