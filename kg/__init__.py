"""grounded's knowledge graph: triples in, facts out. Never imports torch or transformers."""

from kg.check import Check, check_claim
from kg.graph import KnowledgeGraph
from kg.linker import EntityLinker, Mention
from kg.loaders import (
    SourceFileError,
    load_aliases,
    load_entities,
    load_passages,
    load_source,
    load_triples,
    write_source,
)
from kg.normalize import normalize
from kg.schema import Relation, Schema
from kg.source import KnowledgeSource, LoadReport, review_source
from kg.types import CheckResult, EntityId, Passage, Triple

__all__ = [
    "Check",
    "CheckResult",
    "EntityId",
    "EntityLinker",
    "KnowledgeGraph",
    "KnowledgeSource",
    "LoadReport",
    "Mention",
    "Passage",
    "Relation",
    "Schema",
    "SourceFileError",
    "Triple",
    "check_claim",
    "load_aliases",
    "load_entities",
    "load_passages",
    "load_source",
    "load_triples",
    "normalize",
    "review_source",
    "write_source",
]
