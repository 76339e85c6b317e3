"""Extraction without a model: documents → sentences → entity mentions → candidate triples.

The registry of extractors, verification by the checker and the ``kb extract`` pipeline are
in :mod:`grounded.extract`; everything here runs without torch.
"""

from kg.extract.base import Candidate, Extractor, merge_candidates
from kg.extract.documents import Document, Sentence, read_documents, sentences_of
from kg.extract.entities import EntityFinder, EntityMention
from kg.extract.patterns import (
    PatternExtractor,
    QuestionExtractor,
    TemplateExtractor,
    statements_from_question,
)
from kg.extract.review import (
    entity_types,
    flag_conflicts,
    kept,
    read_review,
    write_entities,
    write_review,
    write_triples,
)

__all__ = [
    "Candidate",
    "Document",
    "EntityFinder",
    "EntityMention",
    "Extractor",
    "PatternExtractor",
    "QuestionExtractor",
    "Sentence",
    "TemplateExtractor",
    "entity_types",
    "flag_conflicts",
    "kept",
    "merge_candidates",
    "read_documents",
    "read_review",
    "sentences_of",
    "statements_from_question",
    "write_entities",
    "write_review",
    "write_triples",
]
