"""A knowledge base from documents: registered extractors, verification by the checker, and
the ``grounded kb extract`` pipeline (the model-free parts live in :mod:`kg.extract`)."""

from grounded.extract.data import Example, examples_from_kb, read_labelled
from grounded.extract.format import format_prompt, format_target, parse_generation
from grounded.extract.model import ExtractorModel, ModelExtractor
from grounded.extract.pipeline import (
    DEFAULT_MIN_CONFIDENCE,
    ExtractConfig,
    Extraction,
    extract,
)
from grounded.extract.registry import DEFAULT_EXTRACTORS, EXTRACTORS, get_extractors
from grounded.extract.training import ExtractorTrainConfig, build_examples, train_extractor
from grounded.extract.verify import verify_candidates

__all__ = [
    "DEFAULT_EXTRACTORS",
    "DEFAULT_MIN_CONFIDENCE",
    "EXTRACTORS",
    "Example",
    "ExtractConfig",
    "Extraction",
    "ExtractorModel",
    "ExtractorTrainConfig",
    "ModelExtractor",
    "build_examples",
    "examples_from_kb",
    "extract",
    "format_prompt",
    "format_target",
    "get_extractors",
    "parse_generation",
    "read_labelled",
    "train_extractor",
    "verify_candidates",
]
