"""Sentences an answer may be: the schema's statement templates and the echoes of its questions.

:func:`grounded.answers.read_answer` asks :func:`template_reading` whether a template reads an
answer, and whether the sentence is about the question's own (subject, relation). The
templates are the schema's (``relations.json``): its statement and plural templates with
their possessive forms (:class:`kg.claims.ClaimReader`), and the statements a person makes
when answering one of its question templates (:func:`echo_templates`: English wh-question
rules, nothing specific to one knowledge base).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kg.claims import ClaimReader, TemplatePattern, compile_template, possessive_variants
from kg.normalize import normalize
from kg.text import strip_end

if TYPE_CHECKING:
    from kg import KnowledgeGraph


@dataclass(frozen=True)
class TemplateReading:
    """What a template read in a sentence.

    Attributes:
        kind: ``statement`` (objects of the asked pair), ``negated`` (it denies them) or
            ``other_pair`` (a sentence about another subject or relation of the graph).
        objects: the stated objects (``statement``, ``negated``).
        subject: the asked subject, or the one the sentence names (``other_pair``).
        relation: the asked relation, or the one the sentence states (``other_pair``).
        wholes: what the sentence says the objects are part of ("Western Asia, part of
            Asia"): a person takes the answer as right when either level is the KB's.
    """

    kind: Literal["statement", "negated", "other_pair"]
    objects: tuple[str, ...]
    subject: str
    relation: str
    wholes: tuple[str, ...] = ()


_PRONOUN_SUBJECT = re.compile(
    r"^(?:it|its|they|their|this|that|these|those|he|she|his|her)$", re.IGNORECASE
)
HEDGE = re.compile(  # "approximately 945,087 square kilometres": the hedge is no part of the object
    r"^\s*(?:approximately|about|around|roughly|circa|some)\s+", re.IGNORECASE
)
_NOT = re.compile(r"^\s*(?:not|never)\s+", re.IGNORECASE)
_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _reader(kg: KnowledgeGraph) -> tuple[ClaimReader, tuple[TemplatePattern, ...]]:
    """The graph's claim reader and its echo patterns, built once per graph."""
    found = _READERS.get(kg)
    if found is None:
        echoes = tuple(
            compile_template(v, rel.name, "echo")
            for rel in kg.schema
            for q in rel.questions
            for t in echo_templates(q)
            for v in (t, *possessive_variants(t))
        )
        found = (ClaimReader(kg), tuple(sorted(echoes, key=lambda p: -p.specificity)))
        _READERS[kg] = found
    return found


_WH = r"^(?:what|which|who)\s+"
_AUX = r"(?P<aux>is|are|was|were)\s+"
_NOUN = r"(?P<noun>\w+(?:\s+or\s+\w+)?)\s+"
_S = r"\{subject\}"
_PREP = r"(?P<prep>(?:\w+\s+)?(?:in|of|on|at|from|to|with|by))"
_ECHO_RULES: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = (
    # "What is the capital of {subject}" → "The capital of {subject} is {object}", and
    # inverted, "{object} is the capital of {subject}"
    (re.compile(rf"{_WH}{_AUX}(?P<rest>(?:the|a|an)\s.*)$", re.I),
     ("{rest} {aux} {{object}}", "{{object}} {aux} {rest}")),
    # "What are people from {subject} called" → "People from {subject} are called {object}"
    (re.compile(rf"{_WH}{_AUX}(?P<rest>.*{_S}.*?)\s+(?P<verb>called|named|known as)$", re.I),
     ("{rest} {aux} {verb} {{object}}",)),
    # "Which region is {subject} part of" → "{subject} is part of {object}", "The region
    # that (is) {subject} part of is {object}"
    (re.compile(rf"{_WH}{_NOUN}{_AUX}{_S}\s+{_PREP}$", re.I),
     ("{{subject}} {aux} {prep} {{object}}",
      "The {noun} that {{subject}} {prep} {aux} {{object}}",
      "The {noun} that {aux} {{subject}} {prep} {aux} {{object}}")),
    # "Which city is the capital of {subject}" → "{object} is the capital of {subject}";
    # "Which currency is used in {subject}" → also "{object} is a currency used in
    # {subject}", "The currency used in {subject} is {object}"
    (re.compile(rf"{_WH}{_NOUN}{_AUX}(?P<rest>.*{_S}.*)$", re.I),
     ("{{object}} {aux} {rest}", "{{object}} {aux} a {noun} {rest}",
      "The {noun} {rest} {aux} {{object}}", "The {noun} that {aux} {rest} {aux} {{object}}")),
    # "How big is {subject}" → "{subject} is {object}"
    (re.compile(rf"^how\s+\w+\s+{_AUX}{_S}(?:\s.*)?$", re.I),
     ("{{subject}} {aux} {{object}}",)),
    # "Which countries border {subject}" → "The countries that border {subject} are {object}"
    (re.compile(rf"{_WH}(?P<noun>\w+)\s+(?P<rest>(?!(?:is|are|do|does|did)\b)\w+\s.*{_S}.*)$",
                re.I),
     ("The {noun} that {rest} are {{object}}", "The {noun} that {rest} is {{object}}")),
)  # fmt: skip


def echo_templates(question: str) -> list[str]:
    """Statement templates an answer that echoes ``question`` (a question template of the
    schema, with ``{subject}``) may follow, by the English wh-question rules alone: nothing
    is specific to one knowledge base.

    Example:
        >>> echo_templates("What is the official language of {subject}?")
        ['the official language of {subject} is {object}']
        >>> echo_templates("Which countries border {subject}?")[0]
        'The countries that border {subject} are {object}'
        >>> echo_templates("Which subregion is {subject} in?")[0]
        '{subject} is in {object}'
    """
    body = question.strip().rstrip("?").strip()
    for rule, forms in _ECHO_RULES:
        m = rule.match(body)
        if m:
            out = [f.format(**m.groupdict()) for f in forms]
            of = _OF_SUBJECT.match(m.groupdict().get("rest") or "")
            if of and m.groupdict().get("aux"):  # "In {subject}, the currency is {object}"
                out.append(f"In {{subject}}, the {of['noun']} {m['aux']} {{object}}")
            return out
    return []


_OF_SUBJECT = re.compile(r"^(?:the\s+)(?P<noun>[\w\s-]+?)\s+of\s+\{subject\}$", re.IGNORECASE)
_PART_OF = re.compile(
    r"^(?P<part>.+?),?\s+(?:which\s+is\s+)?(?:a\s+)?part\s+of\s+(?P<whole>.+)$", re.IGNORECASE
)
_NOUN_OF = re.compile(r"^(?:the\s+)?[\w-]+\s+of\s+(?P<name>.+)$", re.IGNORECASE)


def _unwrapped(reader: ClaimReader, text: str, relation: str) -> str:
    """``text`` without a noun that only introduces the name ("the continent of Africa" →
    "Africa") when the name is an object of ``relation`` and the whole is not."""
    m = _NOUN_OF.match(strip_end(text))
    if m and not reader.known(strip_end(text), relation) and reader.known(m["name"], relation):
        return m["name"]
    return text


def _names_subject(reader: ClaimReader, slot: str, side: str, asked: set[str]) -> bool:
    """Whether a template's subject slot names the asked subject (``asked``: its id, name
    and the entities it resolves to); a pronoun refers back to it."""
    text = strip_end(slot)
    if _PRONOUN_SUBJECT.match(text):
        return True
    _, ids = reader.subject_of(slot, side)  # type: ignore[arg-type]
    if ids:
        return bool(asked & set(ids))
    key = normalize(text)
    for a in asked:
        words = [w for w in re.findall(r"\w+", a) if w[0].isupper()]
        if key == normalize(a) or (len(words) > 1 and text == "".join(w[0] for w in words)):
            return True  # the same name written otherwise, or its initials ("UAE")
    return False


def template_reading(
    kg: KnowledgeGraph, subject: str, relation: str, text: str
) -> TemplateReading | None:
    """The reading of ``text`` by a statement, plural or echo template; None when none reads
    it. A reading of the asked pair wins over readings of others."""
    reader, echoes = _reader(kg)
    asked = {subject, *kg.resolve(subject)}
    other: TemplateReading | None = None
    for p in (*reader.statements, *echoes):
        m = p.regex.search(text)
        if m is None:
            continue
        side_s, side_o = p.sides["subject"], p.sides["object"]
        slot = m["object"]
        negated = side_o != "start" and _NOT.match(slot) is not None
        if negated:
            slot = _NOT.sub("", slot, count=1)
        if side_o != "start":
            slot = HEDGE.sub("", slot, count=1)  # "approximately 945,087 square kilometres"
        wholes: tuple[str, ...] = ()
        part_of = _PART_OF.match(slot) if side_o == "end" else None
        if part_of:  # "Western Asia, part of Asia": the place and what holds it
            slot = part_of["part"]
            wholes = reader.objects_of(part_of["whole"], side_o, p.relation)
        objects = reader.objects_of(slot, side_o, p.relation)
        if not objects:
            continue
        objects = tuple(_unwrapped(reader, o, p.relation) for o in objects)
        wholes = tuple(_unwrapped(reader, o, p.relation) for o in wholes)
        if p.relation == relation and _names_subject(reader, m["subject"], side_s, asked):
            kind = "negated" if negated else "statement"
            return TemplateReading(kind, objects, subject, relation, wholes)
        if other is None:
            named, ids = reader.subject_of(m["subject"], side_s)
            if ids:  # about another entity of the graph, or another relation of this one
                other = TemplateReading("other_pair", (), named, p.relation)
    return other
