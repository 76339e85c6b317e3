"""Grounded adapter fine-tuning: config, adapters, the training pipeline, the trainer and the
fact-checker feedback loop. Inference (the trained model, generation) is :mod:`grounded.model`.

Importing this package is cheap: torch, transformers and peft load on first use.

Example:
    >>> from grounded.training import TrainConfig, train
    >>> train("runs/countries/kb", "runs/countries/base", "runs/countries/model")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports
from grounded.training.adapters import ADAPTERS, AdapterConfig
from grounded.training.config import (
    VARIANTS,
    ConstraintConfig,
    DataConfig,
    FeedbackConfig,
    TrainConfig,
    variant_config,
)

if TYPE_CHECKING:
    from grounded.training.feedback import FeedbackLoop, GraphJudge, make_judge
    from grounded.training.pipeline import TrainResult, train
    from grounded.training.trainer import GroundedTrainer, loss_terms

_LAZY = {
    "FeedbackLoop": "grounded.training.feedback",
    "GraphJudge": "grounded.training.feedback",
    "GroundedTrainer": "grounded.training.trainer",
    "TrainResult": "grounded.training.pipeline",
    "loss_terms": "grounded.training.trainer",
    "make_judge": "grounded.training.feedback",
    "train": "grounded.training.pipeline",
}

__all__ = [
    "ADAPTERS",
    "VARIANTS",
    "AdapterConfig",
    "ConstraintConfig",
    "DataConfig",
    "FeedbackConfig",
    "FeedbackLoop",
    "GraphJudge",
    "GroundedTrainer",
    "TrainConfig",
    "TrainResult",
    "loss_terms",
    "make_judge",
    "train",
    "variant_config",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
