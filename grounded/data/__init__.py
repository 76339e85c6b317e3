"""Training and evaluation data: entity groups, prompts, examples with retrieved evidence,
and reading items about made-up entities."""

from grounded.data.examples import (
    build_examples,
    build_reading_examples,
    contradicted_objects,
    example_features,
)
from grounded.data.groups import GROUPS, EntityGroups, answerable_pairs, build_groups
from grounded.data.prompts import format_example, format_prompt
from grounded.data.reading import ReadingItem, reading_items

__all__ = [
    "GROUPS",
    "EntityGroups",
    "ReadingItem",
    "answerable_pairs",
    "build_examples",
    "build_groups",
    "build_reading_examples",
    "contradicted_objects",
    "example_features",
    "format_example",
    "format_prompt",
    "reading_items",
]
