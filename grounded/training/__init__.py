"""Grounded adapter fine-tuning: config, adapters, model, trainer, save/load, generation.

Importing this package is cheap: torch, transformers and peft load on first use.

Example:
    >>> from grounded.training import TrainConfig, train, GroundedModel
    >>> train("runs/countries/kb", "runs/countries/base", "runs/countries/model")  # doctest: +SKIP
    >>> GroundedModel.from_pretrained("runs/countries/model").answer(["..."])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from grounded.training.adapters import ADAPTERS
from grounded.training.config import VARIANTS, TrainConfig, variant_config

if TYPE_CHECKING:
    from grounded.training.artifacts import load_base, read_grounding
    from grounded.training.batch import Batcher
    from grounded.training.generate import Answer, GroundedModel, generate_texts
    from grounded.training.model import GroundingModel
    from grounded.training.pipeline import TrainResult, train
    from grounded.training.trainer import GroundedTrainer, loss_terms

_LAZY = {
    "Answer": "grounded.training.generate",
    "Batcher": "grounded.training.batch",
    "GroundedModel": "grounded.training.generate",
    "GroundedTrainer": "grounded.training.trainer",
    "GroundingModel": "grounded.training.model",
    "TrainResult": "grounded.training.pipeline",
    "generate_texts": "grounded.training.generate",
    "load_base": "grounded.training.artifacts",
    "loss_terms": "grounded.training.trainer",
    "read_grounding": "grounded.training.artifacts",
    "train": "grounded.training.pipeline",
}

__all__ = [
    "ADAPTERS",
    "VARIANTS",
    "Answer",
    "Batcher",
    "GroundedModel",
    "GroundedTrainer",
    "GroundingModel",
    "TrainConfig",
    "TrainResult",
    "generate_texts",
    "load_base",
    "loss_terms",
    "read_grounding",
    "train",
    "variant_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'grounded.training' has no attribute {name!r}")
