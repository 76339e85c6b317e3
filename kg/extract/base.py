"""The extraction interface: sentences in, candidate triples (with source and confidence) out.

An extractor is any object with a ``name`` and an ``extract(sentences)`` method returning
:class:`Candidate` objects; it is built by ``factory(schema, finder, **options)``. The
registered members are listed in :data:`grounded.extract.EXTRACTORS`; the model-free ones
live here in ``kg/extract/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from kg.extract.documents import Sentence
from kg.schema import Schema
from kg.types import EntityId, Triple


@dataclass(frozen=True)
class Candidate:
    """A triple read from one sentence, before it is kept.

    Attributes:
        subject, relation, object: the triple (entities: a KB entity when linked, else the
            name as written).
        sentence: where it was read (its :attr:`Sentence.source` is the triple's source).
        confidence: in [0, 1]; the extractor's own, replaced by the checker's probability
            of ``supported`` once verified (:func:`grounded.extract.verify_candidates`).
        extractor: the registered name of the extractor (``a+b`` when several agree).
        subject_surface, object_surface: the spans as written in the sentence.
        subject_type, object_type: the type of a new entity (from the relation's schema).
        extractor_confidence: the extractor's confidence, kept when a checker rescored it.
        notes: what a reviewer should know (a shared name, a conflict with the KB).
        flagged: the candidate contradicts the existing KB: never merged automatically.
    """

    subject: EntityId
    relation: str
    object: EntityId
    sentence: Sentence
    confidence: float
    extractor: str
    subject_surface: str = ""
    object_surface: str = ""
    subject_type: str | None = None
    object_type: str | None = None
    extractor_confidence: float | None = None
    notes: tuple[str, ...] = field(default=())
    flagged: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(subject, relation, object, source): one candidate per triple and sentence."""
        return (self.subject, self.relation, self.object, self.sentence.source)

    def triple(self) -> Triple:
        """The candidate as a :class:`Triple` with its source, confidence and extractor."""
        return Triple(
            self.subject,
            self.relation,
            self.object,
            source=self.sentence.source,
            confidence=round(float(self.confidence), 6),
            extractor=self.extractor,
        )

    def statement(self, schema: Schema) -> str:
        """The relation's template filled with the spans as written: what the checker reads."""
        return schema[self.relation].statement(
            self.subject_surface or self.subject, self.object_surface or self.object
        )

    def with_note(self, note: str, *, flagged: bool = False) -> Candidate:
        return replace(self, notes=(*self.notes, note), flagged=self.flagged or flagged)


@runtime_checkable
class Extractor(Protocol):
    """Reads candidate triples from sentences.

    Implementations take ``(schema, finder, **options)`` in their constructor, emit only
    relations of ``schema`` and entity spans present in the sentence, and give each
    candidate a confidence in [0, 1].
    """

    name: str

    def extract(self, sentences: Sequence[Sentence]) -> list[Candidate]: ...


def merge_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per (triple, sentence): the highest confidence, extractors joined.

    Example:
        >>> s = Sentence("d", 1, "Dune was written by Frank Herbert.")
        >>> a = Candidate("Dune", "author", "Frank Herbert", s, 0.9, "templates")
        >>> b = Candidate("Dune", "author", "Frank Herbert", s, 0.7, "questions")
        >>> [(c.confidence, c.extractor) for c in merge_candidates([a, b])]
        [(0.9, 'questions+templates')]
    """
    best: dict[tuple[str, str, str, str], Candidate] = {}
    names: dict[tuple[str, str, str, str], set[str]] = {}
    for c in candidates:
        k = c.key
        names.setdefault(k, set()).update(c.extractor.split("+"))
        if k not in best or c.confidence > best[k].confidence:
            best[k] = c
    return [replace(c, extractor="+".join(sorted(names[k]))) for k, c in best.items()]
