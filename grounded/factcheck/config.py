"""Settings of the neural checker: the model (:class:`FactCheckerConfig`) and its optimiser
(:class:`CheckerOptimConfig`), read by :func:`grounded.factcheck.training.train_checker` and
``grounded factcheck train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grounded.config import config_from_dict, to_dict, with_default
from grounded.optim import OptimConfig

__all__ = ["CheckerOptimConfig", "FactCheckerConfig"]


@dataclass
class CheckerOptimConfig(OptimConfig):
    """:class:`~grounded.optim.OptimConfig` with the checker's defaults: a pretrained encoder
    fine-tuned gently (a low learning rate, linear decay, 16 pairs a step)."""

    learning_rate: float = with_default(OptimConfig, "learning_rate", 1e-4)
    lr_scheduler_type: str = with_default(OptimConfig, "lr_scheduler_type", "linear")
    warmup_steps: float = with_default(OptimConfig, "warmup_steps", 0.06)
    num_train_epochs: float = with_default(
        OptimConfig,
        "num_train_epochs",
        4.0,
        help="Passes over the data. On the countries KB (3,316 pairs with the default "
        "counterfactual twins) 4 passes are 832 steps of 16 pairs, about 13 minutes on one "
        "CPU thread; held-out accuracy 0.77 after 2 passes, 0.82 after 3, 0.85 after 4 "
        "(on a 40-country cities sample: 0.84 after 2, 0.96 after 4; "
        "bench/results/factcheck.md).",
    )
    per_device_train_batch_size: int = with_default(OptimConfig, "per_device_train_batch_size", 16)
    logging_steps: int = with_default(OptimConfig, "logging_steps", 20)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.learning_rate >= 1:
            raise ValueError(f"`learning_rate` must be in (0, 1), got {self.learning_rate}")


@dataclass
class FactCheckerConfig:
    """Settings of :func:`train_checker` (and of a new checker's model).

    Example:
        >>> FactCheckerConfig(optim=CheckerOptimConfig(max_steps=30)).optim.learning_rate
        0.0001
        >>> FactCheckerConfig.from_dict({"max_steps": 30, "train_batch_size": 8}).optim.max_steps
        30
    """

    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Local folder to start from: a sentence encoder, a BERT-like checkpoint, or "
            "a sequence-classification checkpoint (default: the packaged all-MiniLM-L6-v2)."
        },
    )
    max_length: int = field(
        default=256,
        metadata={
            "help": "The checker's window in tokens (claim and evidence). Longer evidence is "
            "read in overlapping chunks at prediction time; a training pair is cut to its "
            "chunk sharing the most words with the claim."
        },
    )
    optim: CheckerOptimConfig = field(
        default_factory=CheckerOptimConfig,
        metadata={"help": "the optimiser (transformers.TrainingArguments' names)"},
    )
    eval_batch_size: int = field(default=64, metadata={"help": "Pairs per prediction batch."})
    best_epoch: bool = field(
        default=True,
        metadata={
            "help": "With a dev split, score it after every epoch and keep the epoch with the "
            "best balanced accuracy (Trainer's load_best_model_at_end), not the last one."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the new head and the data order."})
    device: str = field(default="cpu", metadata={"help": "Torch device: cpu or cuda."})

    def __post_init__(self) -> None:
        for name in ("max_length", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.max_length > 512:
            raise ValueError(f"`max_length` must be <= 512 (BERT positions), got {self.max_length}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"`device` must be cpu, cuda or cuda:N, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every setting, nested by section, JSON-ready (what ``factcheck.json`` records)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> FactCheckerConfig:
        """Settings from :meth:`to_dict` output or the flat names (older checkers recorded
        ``train_batch_size``, ``warmup_ratio``: they are read too); unknown keys warn."""
        return config_from_dict(cls, data, origin=origin, unknown="warn")
