"""`OptimConfig`: the optimiser settings shared by pretraining, training and the fact-checker.

They are ``transformers.TrainingArguments`` settings under TrainingArguments' own names, and
:meth:`OptimConfig.training_arguments` is the one place they are mapped onto it. Each
owner holds one as its ``optim`` section (``--learning-rate`` on the command line,
``optim: {learning_rate: 1e-4}`` or flat ``learning_rate: 1e-4`` in YAML); a subclass that
changes only defaults serves each owner (:class:`grounded.pretrain.PretrainOptimConfig`,
:class:`grounded.factcheck.CheckerOptimConfig`), as trl's ``SFTConfig`` does with
``TrainingArguments``.

Importing this module is cheap (transformers loads in :meth:`~OptimConfig.training_arguments`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import TrainingArguments

LR_SCHEDULERS = ("linear", "cosine", "constant_with_warmup", "constant")


@dataclass
class OptimConfig:
    """Optimisation settings shared by pretraining, grounded training and the fact-checker.

    The names are ``transformers.TrainingArguments``' own; :meth:`training_arguments` maps
    them (the only place that does). The defaults suit grounded adapter fine-tuning of the
    small default base; :class:`grounded.pretrain.PretrainOptimConfig` and
    :class:`grounded.factcheck.CheckerOptimConfig` change only defaults.

    Raises:
        ValueError: a setting is out of range (naming it, the value and the range).

    Example:
        >>> OptimConfig(learning_rate=1e-4).learning_rate
        0.0001
        >>> OptimConfig(learning_rate=0)
        Traceback (most recent call last):
        ...
        ValueError: `learning_rate` must be > 0, got 0
    """

    learning_rate: float = field(
        default=1e-3,
        metadata={
            "help": "Peak AdamW learning rate (lower it for models of 1B parameters and up)."
        },
    )
    lr_scheduler_type: str = field(
        default="cosine",
        metadata={
            "help": f"Schedule after warm-up: {', '.join(LR_SCHEDULERS)}.",
            "aliases": ("lr_scheduler",),
            "choices": list(LR_SCHEDULERS),
        },
    )
    warmup_steps: float = field(
        default=0.05,
        metadata={
            "help": "Linear warm-up: a float in [0, 1) is a share of the steps, 1 or more a "
            "number of steps.",
            "aliases": ("warmup_ratio",),
        },
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    num_train_epochs: float = field(
        default=3.0,
        metadata={
            "help": "Passes over the training data (ignored when `max_steps` > 0).",
            "aliases": ("epochs",),
        },
    )
    max_steps: int = field(
        default=-1,
        metadata={"help": "Optimizer steps; overrides `num_train_epochs` when > 0 (-1: unset)."},
    )
    per_device_train_batch_size: int = field(
        default=8,
        metadata={
            "help": "Examples per device per step.",
            "aliases": ("batch_size", "train_batch_size"),
        },
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Gradient accumulation steps.", "aliases": ("grad_accum",)}
    )
    logging_steps: int = field(default=10, metadata={"help": "Steps between loss logs."})

    def __post_init__(self) -> None:
        if self.lr_scheduler_type not in LR_SCHEDULERS:
            raise ValueError(
                f"`lr_scheduler_type` must be one of {list(LR_SCHEDULERS)}, got "
                f"{self.lr_scheduler_type!r}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"`max_grad_norm` must be > 0, got {self.max_grad_norm}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0 or (
            self.warmup_steps >= 1 and not float(self.warmup_steps).is_integer()
        ):
            raise ValueError(
                f"`warmup_steps` must be a share in [0, 1) or a whole number of steps, got "
                f"{self.warmup_steps}"
            )
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"`max_steps` must be > 0, or -1 (unset), got {self.max_steps}")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(
                f"set `num_train_epochs` > 0 or `max_steps` > 0 (got num_train_epochs="
                f"{self.num_train_epochs}, max_steps={self.max_steps})"
            )

    def training_arguments(
        self, output_dir: str | Path, *, seed: int, **extra: Any
    ) -> TrainingArguments:
        """The ``transformers.TrainingArguments`` of these settings.

        Args:
            output_dir: where the Trainer writes checkpoints.
            seed: the run's seed (model init and data order: ``seed`` and ``data_seed``).
            **extra: any other ``TrainingArguments`` keyword (the caller's run settings:
                saving, precision, devices, progress); they override the mapped values.

        Example:
            >>> args = OptimConfig(max_steps=5).training_arguments("/tmp/x", seed=0, use_cpu=True)
            >>> args.max_steps, args.per_device_train_batch_size, args.warmup_steps
            (5, 8, 0.05)
        """
        from transformers import TrainingArguments

        kwargs: dict[str, Any] = {
            "output_dir": str(output_dir),
            "learning_rate": self.learning_rate,
            "lr_scheduler_type": self.lr_scheduler_type,
            # a float in [0, 1) is a ratio of the total steps (transformers 5)
            "warmup_steps": self.warmup_steps if self.warmup_steps < 1 else int(self.warmup_steps),
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "logging_steps": self.logging_steps,
            "seed": seed,
            "data_seed": seed,
            "report_to": "none",
        }
        kwargs.update(extra)
        return TrainingArguments(**kwargs)
