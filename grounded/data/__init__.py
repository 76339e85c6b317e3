"""Training and evaluation data: entity groups, prompts, examples with retrieved evidence."""

from grounded.data.examples import (
    build_examples,
    contradicted_objects,
    example_features,
)
from grounded.data.groups import GROUPS, EntityGroups, answerable_pairs, build_groups
from grounded.data.prompts import format_example, format_prompt

__all__ = [
    "GROUPS",
    "EntityGroups",
    "answerable_pairs",
    "build_examples",
    "build_groups",
    "contradicted_objects",
    "example_features",
    "format_example",
    "format_prompt",
]
