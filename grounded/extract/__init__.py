"""A knowledge base from documents: registered extractors, verification by the checker, and
the ``grounded kb extract`` pipeline (the model-free parts live in :mod:`kg.extract`)."""

from grounded.extract.pipeline import (
    DEFAULT_MIN_CONFIDENCE,
    ExtractConfig,
    Extraction,
    extract,
)
from grounded.extract.registry import DEFAULT_EXTRACTORS, EXTRACTORS, get_extractors
from grounded.extract.verify import verify_candidates

__all__ = [
    "DEFAULT_EXTRACTORS",
    "DEFAULT_MIN_CONFIDENCE",
    "EXTRACTORS",
    "ExtractConfig",
    "Extraction",
    "extract",
    "get_extractors",
    "verify_candidates",
]
