"""Inference with grounded models: the model with its injection layer, batching, generation,
and the artifacts on disk (base checkpoints, adapters, ``grounding.json``).

Importing this package is cheap: torch, transformers and peft load on first use.

Example:
    >>> from grounded.model import GroundedModel
    >>> GroundedModel.from_pretrained("runs/countries/model").answer(["..."])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

if TYPE_CHECKING:
    from grounded.model.artifacts import load_base, read_grounding
    from grounded.model.batch import Batcher
    from grounded.model.generate import Answer, GroundedModel, generate_texts
    from grounded.model.grounding import GroundingModel

_WHERE = {
    "Answer": "grounded.model.generate",
    "Batcher": "grounded.model.batch",
    "GroundedModel": "grounded.model.generate",
    "GroundingModel": "grounded.model.grounding",
    "generate_texts": "grounded.model.generate",
    "load_base": "grounded.model.artifacts",
    "read_grounding": "grounded.model.artifacts",
}

__all__ = [
    "Answer",
    "Batcher",
    "GroundedModel",
    "GroundingModel",
    "generate_texts",
    "load_base",
    "read_grounding",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
