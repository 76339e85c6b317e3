"""Surface forms of a claim: the ways a fact is said, built from the relation's own templates.

A form is a function ``(relation, subject, objects, rng) -> Surface | None`` registered by
name; it returns None when it does not apply (one object only, no question template...).
Add a form with::

    @register_form("my_form")
    def my_form(rel, subject, objects, rng): ...
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kg import Relation
from kg.text import join_items


@dataclass(frozen=True)
class Surface:
    """A claim as text; ``question`` is set when the text answers it (judged in its context)."""

    text: str
    question: str = ""

    @property
    def claim(self) -> str:
        """What a reader of the claim sees: the question, then the text."""
        return f"{self.question} {self.text}".strip()


ClaimForm = Callable[[Relation, str, Sequence[str], random.Random], "Surface | None"]

FORMS: dict[str, ClaimForm] = {}
"""Every registered surface form by name."""

LIST_FORMS: set[str] = set()
"""Forms that can state several objects at once."""

PREFIXES = (
    "As far as I know, ",
    "According to the records, ",
    "It is well documented that ",
    "Most sources agree that ",
)
SUFFIXES = (
    ", as far as I know.",
    ", according to the records.",
    ", which is worth remembering.",
    ", as most sources agree.",
)
ANSWERS = ("{o}.", "It is {o}.", "The answer is {o}.", "I believe it is {o}.", "{o}, I think.")


def register_form(name: str, *, lists: bool = False) -> Callable[[ClaimForm], ClaimForm]:
    """Decorator adding a surface form to :data:`FORMS` (``lists``: it can state several).

    Raises:
        ValueError: ``name`` is already registered.
    """

    def deco(fn: ClaimForm) -> ClaimForm:
        if name in FORMS:
            raise ValueError(f"claim form {name!r} is registered twice")
        FORMS[name] = fn
        if lists:
            LIST_FORMS.add(name)
        return fn

    return deco


def _starts_with_slot(template: str) -> bool:
    return template.lstrip().startswith("{")


@register_form("statement")
def statement(
    rel: Relation, subject: str, objects: Sequence[str], rng: random.Random
) -> Surface | None:
    """The relation's statement template: "The capital of Chad is N'Djamena." """
    if len(objects) != 1:
        return None
    return Surface(rel.statement(subject, objects[0]))


@register_form("plural", lists=True)
def plural(
    rel: Relation, subject: str, objects: Sequence[str], rng: random.Random
) -> Surface | None:
    """The plural template: "The official languages of Afghanistan are Pashto and Uzbek." """
    if len(objects) < 2 or rel.plural_template is None:
        return None
    return Surface(rel.plural_template.format(subject=subject, objects=join_items(objects)))


@register_form("clause")
def clause(
    rel: Relation, subject: str, objects: Sequence[str], rng: random.Random
) -> Surface | None:
    """The statement with an extra clause before or after it."""
    if len(objects) != 1:
        return None
    text = rel.statement(subject, objects[0])
    if rng.random() < 0.5:
        body = text if _starts_with_slot(rel.template) else text[:1].lower() + text[1:]
        return Surface(rng.choice(PREFIXES) + body)
    return Surface(text.rstrip(".!? ") + rng.choice(SUFFIXES))


@register_form("question_answer", lists=True)
def question_answer(
    rel: Relation, subject: str, objects: Sequence[str], rng: random.Random
) -> Surface | None:
    """A question template and an answer sentence: "What is the capital of Chad? It is X." """
    if not rel.questions:
        return None
    question = rng.choice(rel.questions).format(subject=subject)
    return Surface(rng.choice(ANSWERS).format(o=join_items(objects)), question)


@register_form("short_answer", lists=True)
def short_answer(
    rel: Relation, subject: str, objects: Sequence[str], rng: random.Random
) -> Surface | None:
    """A question template and the bare answer: "What is the capital of Chad? N'Djamena" """
    if not rel.questions:
        return None
    question = rng.choice(rel.questions).format(subject=subject)
    return Surface(join_items(objects), question)
