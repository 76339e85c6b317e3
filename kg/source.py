"""`KnowledgeSource`: the raw material of a knowledge base, before graph and index."""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.schema import Schema
from kg.types import EntityId, Passage, Triple


@dataclass
class LoadReport:
    """What loading kept, dropped and flagged, for the build summary and manifest."""

    files: list[str] = field(default_factory=list)
    lines_read: int = 0
    duplicates_dropped: int = 0
    # functional relations where one subject has several objects: (subject, relation, objects)
    multi_object_functional: list[tuple[str, str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "lines_read": self.lines_read,
            "duplicates_dropped": self.duplicates_dropped,
            "multi_object_functional": [
                {"subject": s, "relation": r, "objects": o}
                for s, r, o in self.multi_object_functional
            ],
            "notes": self.notes,
        }


@dataclass
class KnowledgeSource:
    """Triples, their schema, aliases and optional passages: everything `kb build` consumes.

    Args:
        triples: deduplicated facts.
        schema: every relation used by ``triples``.
        aliases: extra surface names per entity (the entity's own name is implicit).
        passages: optional free-text passages indexed beside the facts.
        name: a short name of the source (``countries``), recorded in manifests.
        report: what the loader or converter kept, dropped and flagged.
    """

    triples: list[Triple]
    schema: Schema
    aliases: dict[EntityId, list[str]] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    name: str = "custom"
    report: LoadReport = field(default_factory=LoadReport)
