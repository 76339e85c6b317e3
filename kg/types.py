"""Domain types shared by every room of grounded: triples, entity ids, verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EntityId = str
"""The canonical name of an entity; node id in the graph (e.g. ``"Mongolia"``)."""

RelationName = str

CheckResult = Literal["supported", "contradicted", "unknown"]
"""Outcome of the symbolic check of a (subject, relation, object) claim against the graph."""


@dataclass(frozen=True, order=True)
class Triple:
    """One fact: ``subject --relation--> object``.

    Equality and hashing use only (subject, relation, object), so provenance does
    not make two copies of a fact distinct.

    Example:
        >>> Triple("Mongolia", "capital", "Ulaanbaatar").key
        'Mongolia\\tcapital\\tUlaanbaatar'
    """

    subject: EntityId
    relation: RelationName
    object: EntityId
    source: str | None = field(default=None, compare=False)
    confidence: float | None = field(default=None, compare=False)
    extractor: str | None = field(default=None, compare=False)
    """The extractor that read the fact from a document (``grounded kb extract``), if any."""

    @property
    def key(self) -> str:
        """A stable string id of the fact (tab-joined subject, relation, object)."""
        return f"{self.subject}\t{self.relation}\t{self.object}"

    @classmethod
    def from_key(cls, key: str) -> Triple:
        """Inverse of :attr:`key`."""
        parts = key.split("\t")
        if len(parts) != 3:
            raise ValueError(
                f"`key` must hold subject, relation and object tab-joined; got {key!r}"
            )
        return cls(*parts)


@dataclass(frozen=True)
class Passage:
    """A free-text passage of the knowledge base (optional, alongside the triples)."""

    id: str
    text: str
    entities: tuple[EntityId, ...] = ()
    source: str | None = None
