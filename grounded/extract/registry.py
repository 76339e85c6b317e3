"""The registered extractors: a name → a class built as ``cls(schema, finder)``.

Listing the names imports nothing heavy (targets are ``module:attribute`` strings).
"""

from __future__ import annotations

from collections.abc import Sequence

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
DEFAULT_EXTRACTORS = ("questions", "templates")


def get_extractors(
    names: Sequence[str], schema: Schema, finder: EntityFinder, field: str = "extractors"
) -> list[Extractor]:
    """Build the named extractors over ``schema`` and ``finder``.

    Raises:
        ValueError: a name is not registered (naming ``field``, the value and the choices),
            or no name is given.
    """
    if not names:
        raise ValueError(f"`{field}` is empty; choose from {EXTRACTORS.names()}")
    return [EXTRACTORS.get(EXTRACTORS.check(n, field))(schema, finder) for n in names]
