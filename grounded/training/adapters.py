"""The adapter registry: a name → a factory of the PEFT config for a :class:`TrainConfig`.

Importing this module is cheap; peft loads inside the factories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grounded.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from grounded.training.config import TrainConfig

ADAPTERS = Registry("adapter")


@ADAPTERS.register("lora", help="low-rank updates of the linear layers (default)")
def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_targets(config),
    )


def _targets(config: TrainConfig) -> list[str] | str | None:
    """``target_modules`` as PEFT takes it: a list, ``"all-linear"``, or None (its default)."""
    targets = list(config.target_modules)
    return "all-linear" if targets == ["all-linear"] else (targets or None)


@ADAPTERS.register("prefix", help="prefix tuning: trained key/value prefixes in every layer")
def prefix_config(config: TrainConfig) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
    )


@ADAPTERS.register("prompt", help="prompt tuning: trained virtual tokens before the input")
def prompt_config(config: TrainConfig) -> Any:
    from peft import PromptTuningConfig, TaskType

    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
    )


@ADAPTERS.register("ia3", help="IA3: learned rescaling of keys, values and feed-forward")
def ia3_config(config: TrainConfig) -> Any:
    from peft import IA3Config, TaskType

    # IA3 rescales chosen projections; "all-linear" means PEFT's per-model default here.
    targets = _targets(config)
    targets = None if targets == "all-linear" else targets
    return IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        feedforward_modules=[] if targets else None,
    )


def get_adapter_model(lm: nn.Module, config: TrainConfig) -> Any:
    """Wrap ``lm`` in the PEFT adapter ``config.adapter`` names (``get_peft_model``).

    Raises:
        ValueError: PEFT cannot choose target modules for this architecture; the message
            says to pass ``target_modules``.
    """
    from peft import get_peft_model

    peft_config = ADAPTERS.get(config.adapter)(config)
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
