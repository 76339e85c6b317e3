"""Inference with grounded models: the model with its injection layer, batching, generation,
and the artifacts on disk (base checkpoints, adapters, ``grounding.json``); the bases
``--base`` names (a folder, a GGUF file converted once, ``smollm2``) are resolved by
:func:`resolve_base`.

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
    from grounded.model.bases import ResolvedBase, locate_base, resolve_base
    from grounded.model.batch import Batcher
    from grounded.model.generate import Answer, GroundedModel, generate_texts
    from grounded.model.grounding import GroundingModel

_WHERE = {
    "Answer": "grounded.model.generate",
    "Batcher": "grounded.model.batch",
    "GroundedModel": "grounded.model.generate",
    "GroundingModel": "grounded.model.grounding",
    "ResolvedBase": "grounded.model.bases",
    "generate_texts": "grounded.model.generate",
    "load_base": "grounded.model.artifacts",
    "locate_base": "grounded.model.bases",
    "read_grounding": "grounded.model.artifacts",
    "resolve_base": "grounded.model.bases",
}

__all__ = [
    "Answer",
    "Batcher",
    "GroundedModel",
    "GroundingModel",
    "ResolvedBase",
    "generate_texts",
    "load_base",
    "locate_base",
    "read_grounding",
    "resolve_base",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
