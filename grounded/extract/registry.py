"""The registered extractors: a name → a class built as ``cls(schema, finder, **options)``.

Listing the names imports nothing heavy (targets are ``module:attribute`` strings). The
model-free extractors take no options; ``model`` needs ``model=FOLDER`` (a folder written
by ``grounded kb train-extractor``, or a loaded :class:`grounded.extract.ExtractorModel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grounded.registry import Registry
from kg.extract import EntityFinder, Extractor
from kg.schema import Schema

EXTRACTORS = Registry("extractor")
EXTRACTORS.register(
    "templates",
    "kg.extract.patterns:TemplateExtractor",
    help="the relations' statement and plural templates read backwards (no model)",
)
EXTRACTORS.register(
    "questions",
    "kg.extract.patterns:QuestionExtractor",
    help="statements derived from the relations' question templates (no model)",
)
EXTRACTORS.register(
    "model",
    "grounded.extract.model:ModelExtractor",
    help="a LoRA-trained causal LM writes `head | relation | tail` lines, constrained to the "
    "schema and to spans of the sentence (needs --extractor-model FOLDER)",
)
DEFAULT_EXTRACTORS = ("questions", "templates")


def get_extractors(
    names: Sequence[str],
    schema: Schema,
    finder: EntityFinder,
    field: str = "extractors",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Extractor]:
    """Build the named extractors over ``schema`` and ``finder``.

    Args:
        options: keyword arguments by extractor name, e.g. ``{"model": {"model": FOLDER}}``.

    Raises:
        ValueError: a name is not registered (naming ``field``, the value and the choices),
            or no name is given.
    """
    if not names:
        raise ValueError(f"`{field}` is empty; choose from {EXTRACTORS.names()}")
    options = options or {}
    return [
        EXTRACTORS.get(EXTRACTORS.check(n, field))(schema, finder, **options.get(n, {}))
        for n in names
    ]
