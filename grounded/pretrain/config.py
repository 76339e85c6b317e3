"""`PretrainConfig`: every setting of ``grounded pretrain``, shared by Python, YAML and the CLI.

The optimiser settings are the ``optim`` section, a :class:`PretrainOptimConfig` (the shared
:class:`grounded.optim.OptimConfig` with pretraining's defaults).

Importing this module is cheap (no torch), so ``grounded pretrain --help`` can list the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grounded.config import config_from_dict, flatten, to_dict, with_default
from grounded.optim import OptimConfig
from kg.io import OVERWRITE_NOTE

# Settings that change how a run is carried out but not what it produces: a resumed run may
# differ from the interrupted one in these, and nowhere else (flat names).
RUN_OPTIONS = frozenset(
    {"resume", "overwrite", "keep_checkpoints", "save_steps", "logging_steps", "num_threads"}
)


@dataclass
class PretrainOptimConfig(OptimConfig):
    """:class:`~grounded.optim.OptimConfig` with the defaults measured for the embedded base
    model (``bench/bench_pretrain.py``): a higher learning rate and more passes."""

    learning_rate: float = with_default(OptimConfig, "learning_rate", 3e-3)
    num_train_epochs: float = with_default(OptimConfig, "num_train_epochs", 10.0)


@dataclass
class PretrainConfig:
    """Settings of :func:`grounded.pretrain.pretrain` (``grounded pretrain``).

    The defaults train the embedded base model for the ``countries`` knowledge base in a few
    minutes on 2 CPU cores (see ``bench/bench_pretrain.py``); :data:`PRESETS` holds smaller
    ones (``quick``: a tiny model and few steps, for tests and ``demo --quick``).

    Raises:
        ValueError: a setting is out of range; the message names the field, the value and
            the valid range.

    Example:
        >>> PretrainConfig(known_fraction=0.6).known_fraction
        0.6
        >>> PretrainConfig.from_dict({"learning_rate": "1e-3"}).optim.learning_rate
        0.001
        >>> PretrainConfig(hidden_size=100, num_heads=3)
        Traceback (most recent call last):
        ...
        ValueError: `hidden_size` (100) must be divisible by `num_heads` (3)
    """

    seed: int = field(
        default=0,
        metadata={"help": "Seed of the known/unknown split, the corpus order, init and training."},
    )
    known_fraction: float = field(
        default=0.5,
        metadata={
            "help": "Fraction of the KB's subject entities whose facts the base model reads; "
            "the others stay unknown to it."
        },
    )
    abstention_docs: int = field(
        default=300,
        metadata={
            "help": "Questions about made-up entities answered with the abstention phrase "
            "(half with evidence that does not mention them): they train the phrase's "
            "tokens, which an adapter cannot; 0 leaves them out."
        },
    )
    vocab_size: int = field(
        default=4096,
        metadata={
            "help": "Target size of the byte-level BPE vocabulary (smaller if the KB's text "
            "has fewer distinct pieces)."
        },
    )
    hidden_size: int = field(default=192, metadata={"help": "Width of the Llama model."})
    num_layers: int = field(default=4, metadata={"help": "Number of transformer layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads per layer."})
    num_kv_heads: int = field(
        default=4,
        metadata={"help": "Key/value heads (grouped-query attention); must divide `num_heads`."},
    )
    intermediate_size: int = field(
        default=512, metadata={"help": "Hidden width of the SwiGLU feed-forward block."}
    )
    max_position_embeddings: int = field(
        default=512, metadata={"help": "Longest sequence the model is configured for."}
    )
    block_size: int = field(
        default=256,
        metadata={
            "help": "Tokens per training sequence; whole documents are packed into blocks of "
            "this length."
        },
    )
    optim: PretrainOptimConfig = field(
        default_factory=PretrainOptimConfig,
        metadata={"help": "the optimiser (transformers.TrainingArguments' names)"},
    )
    save_steps: int = field(
        default=200, metadata={"help": "Write a resumable checkpoint every this many steps."}
    )
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for training (default: torch's choice, one per core); 1 is "
            "faster on a machine busy with other work, where threads wait on each other."
        },
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Continue the interrupted run of this --out from its last checkpoint."},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace an existing --out folder and discard old checkpoints. "
            + OVERWRITE_NOTE
        },
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "Keep the resumable checkpoints folder after a successful run."},
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.known_fraction < 1.0:
            raise ValueError(
                f"`known_fraction` must be between 0 and 1 (exclusive), got {self.known_fraction}"
            )
        if self.vocab_size < 300:
            raise ValueError(
                f"`vocab_size` must be at least 300 (256 bytes + special tokens), got "
                f"{self.vocab_size}"
            )
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "max_position_embeddings",
            "block_size",
            "save_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"`hidden_size` ({self.hidden_size}) must be divisible by `num_heads` "
                f"({self.num_heads})"
            )
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"`hidden_size` / `num_heads` ({self.hidden_size} / {self.num_heads}) must be "
                "even: rotary position embeddings rotate pairs of dimensions"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"`num_kv_heads` ({self.num_kv_heads}) must divide `num_heads` ({self.num_heads})"
            )
        if self.block_size > self.max_position_embeddings:
            raise ValueError(
                f"`block_size` ({self.block_size}) must not exceed `max_position_embeddings` "
                f"({self.max_position_embeddings})"
            )
        if self.abstention_docs < 0:
            raise ValueError(
                f"`abstention_docs` must be >= 0 (0: none), got {self.abstention_docs}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"`num_threads` must be >= 1 or unset, got {self.num_threads}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> PretrainConfig:
        """The settings of preset ``name`` (see :data:`PRESETS`), with ``overrides`` on top.

        Raises:
            ValueError: ``name`` is not a preset (the message lists them).
        """
        if name not in PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {name!r}")
        return cls.from_dict({**PRESETS[name], **overrides}, origin=f"preset {name!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> PretrainConfig:
        """Settings from a flat or nested mapping (flat names as the flags; older names such
        as ``epochs`` and ``batch_size`` are read too).

        Raises:
            ValueError: an unknown key (naming the closest valid one), a value of the wrong
                type, or a setting out of range.
        """
        return config_from_dict(cls, data, origin=origin)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, nested by section, JSON-ready."""
        return to_dict(self)

    def model_settings(self) -> dict[str, Any]:
        """The settings that decide the trained model, by flat name: all but
        :data:`RUN_OPTIONS`."""
        return {k: v for k, v in flatten(self).items() if k not in RUN_OPTIONS}


PRESETS: dict[str, dict[str, Any]] = {
    # The measured defaults (see bench/bench_pretrain.py).
    "default": {},
    # A tiny model and a few steps: tests, `demo --quick`, trying the pipeline out.
    "quick": {
        "vocab_size": 1024,
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 2,
        "num_kv_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 256,
        "block_size": 128,
        "max_steps": 60,
        "per_device_train_batch_size": 8,
        "learning_rate": 3e-3,
        "warmup_steps": 0.1,
        "save_steps": 20,
        "logging_steps": 5,
    },
}
"""Named bundles of settings: ``grounded pretrain --preset quick`` or ``from_preset("quick")``."""
