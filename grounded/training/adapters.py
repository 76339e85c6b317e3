"""`AdapterConfig` and the adapter registry: a name → a factory of the PEFT config.

``AdapterConfig`` pairs with :func:`get_adapter_model`, as peft's ``LoraConfig`` pairs with
``get_peft_model``; it is the ``adapter`` section of :class:`grounded.training.TrainConfig`
(flags ``--adapter``, ``--lora-r``, ...), and its fields carry peft's own names.

Importing this module is cheap; peft loads inside the factories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grounded.registry import Registry

if TYPE_CHECKING:
    from torch import nn

ADAPTERS = Registry("adapter")


@ADAPTERS.register("lora", help="low-rank updates of the linear layers (default)")
def lora_config(config: AdapterConfig) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_targets(config),
    )


def _targets(config: AdapterConfig) -> list[str] | str | None:
    """``target_modules`` as PEFT takes it: a list, ``"all-linear"``, or None (its default)."""
    targets = list(config.target_modules)
    return "all-linear" if targets == ["all-linear"] else (targets or None)


@ADAPTERS.register("prefix", help="prefix tuning: trained key/value prefixes in every layer")
def prefix_config(config: AdapterConfig) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
    )


@ADAPTERS.register("prompt", help="prompt tuning: trained virtual tokens before the input")
def prompt_config(config: AdapterConfig) -> Any:
    from peft import PromptTuningConfig, TaskType

    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
    )


@ADAPTERS.register("ia3", help="IA3: learned rescaling of keys, values and feed-forward")
def ia3_config(config: AdapterConfig) -> Any:
    from peft import IA3Config, TaskType

    # IA3 rescales chosen projections; "all-linear" means PEFT's per-model default here.
    targets = _targets(config)
    targets = None if targets == "all-linear" else targets
    return IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        feedforward_modules=[] if targets else None,
    )


@dataclass
class AdapterConfig:
    """Which PEFT adapter wraps the base model, and its settings.

    Raises:
        ValueError: an unknown adapter name or a setting out of range.

    Example:
        >>> AdapterConfig(name="lora", r=8).r
        8
    """

    name: str = field(
        default="lora",
        metadata={"help": f"PEFT adapter: {ADAPTERS.describe()}.", "flag": "adapter"},
    )
    r: int = field(default=16, metadata={"help": "LoRA rank.", "flag": "lora_r"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={
            "help": "Modules LoRA and IA3 wrap: names, or all-linear (every linear layer but "
            "the output head: reading evidence is a new skill for a small base, and "
            "attention-only LoRA barely learns it); empty: PEFT's default for the model."
        },
    )
    num_virtual_tokens: int = field(
        default=8, metadata={"help": "Virtual tokens of prefix and prompt tuning."}
    )

    def __post_init__(self) -> None:
        ADAPTERS.check(self.name, "adapter")
        self.target_modules = list(self.target_modules)
        for name, flag in (("r", "lora_r"), ("lora_alpha", "lora_alpha"),
                           ("num_virtual_tokens", "num_virtual_tokens")):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"`{flag}` must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {self.lora_dropout}")

    def peft_config(self) -> Any:
        """The peft config of this adapter (``LoraConfig``, ``PrefixTuningConfig``, ...)."""
        return ADAPTERS.get(self.name)(self)


def get_adapter_model(lm: nn.Module, config: AdapterConfig) -> Any:
    """Wrap ``lm`` in the PEFT adapter ``config.name`` names (``get_peft_model``).

    Raises:
        ValueError: PEFT cannot choose target modules for this architecture; the message
            says to pass ``target_modules``.
    """
    from peft import get_peft_model

    peft_config = config.peft_config()
    try:
        return get_peft_model(lm, peft_config)
    except ValueError as e:
        if "target_modules" not in str(e):
            raise
        names = sorted({n.rsplit(".", 1)[-1] for n, _ in lm.named_modules() if n})[:20]
        raise ValueError(
            f"PEFT has no default `target_modules` for {type(lm).__name__}; pass "
            f"`target_modules` (e.g. --target-modules q_proj v_proj); module names here "
            f"include {names}"
        ) from None


def is_prompt_learning(lm: Any) -> bool:
    """True for PEFT adapters that add virtual tokens or prefixes (prefix, prompt tuning)."""
    config = getattr(lm, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))
