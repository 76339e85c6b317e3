"""`AdapterConfig` and the adapter registry: a name → a factory of the PEFT config for an
:class:`AdapterConfig` and the causal LM it wraps.

``AdapterConfig`` pairs with :func:`get_adapter_model`, as peft's ``LoraConfig`` pairs with
``get_peft_model``; it is the ``adapter`` section of :class:`grounded.training.TrainConfig`
(flags ``--adapter``, ``--lora-r``, ...), and its fields carry peft's own names.

The factories read the model where PEFT's per-architecture tables fall short: prefix tuning
is sized by the key/value heads the model really attends with (multi-query Falcon has one,
whatever its config says), IA3 and LoRA targets are derived from the model's own linear
layers when PEFT has no default for the architecture, and LoRA on fused mixture-of-experts
weights runs without dropout (PEFT's parameter wrapper has none).

Importing this module is cheap; torch and peft load inside the factories.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grounded.registry import Registry

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

ADAPTERS = Registry("adapter")

# Leaf names of key and value projections, and of MLP output projections (a fallback for
# MLPs whose hidden width equals the model width, where shapes cannot tell them apart).
_KV_NAMES = re.compile(r"(k|v|key|value|wk|wv|k_proj|v_proj|key_proj|value_proj)")
_FF_OUT_NAMES = re.compile(r"(down_proj|fc2|c_proj|dense_4h_to_h|w2|fc_out|wo)")
_ATTENTION_WORDS = ("attention", "attn")


@ADAPTERS.register("lora", help="low-rank updates of the linear layers (default)")
def lora_config(config: AdapterConfig, lm: nn.Module) -> Any:
    """``LoraConfig``; ``lora_dropout`` becomes 0, with a note, where PEFT wraps fused
    expert weights (mixture-of-experts models), which it cannot apply dropout to."""
    from peft import LoraConfig, TaskType
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    targets = _targets(config)
    if (
        targets is None
        and _model_type(lm) not in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    ):
        logger.warning(
            "note: PEFT has no default LoRA targets for %s; wrapping every linear layer "
            "(`target_modules` all-linear)",
            type(lm).__name__,
        )
        targets = "all-linear"
    layers = resolve_layers(config.layers, lm)
    if layers is not None and targets == "all-linear":
        # PEFT takes `layers_to_transform` with module names only, not "all-linear"
        targets = linear_module_names(lm)
    peft_config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=layers,
    )
    if config.lora_dropout > 0 and _wraps_parameters(peft_config, lm):
        logger.warning(
            "note: %s keeps its experts' weights fused, and PEFT's LoRA on such weights has no "
            "dropout: `lora_dropout` set from %s to 0",
            type(lm).__name__,
            config.lora_dropout,
        )
        peft_config.lora_dropout = 0.0
    return peft_config


def linear_module_names(lm: nn.Module) -> list[str]:
    """Leaf names of ``lm``'s linear layers (``nn.Linear`` and GPT-2's ``Conv1D``) inside
    its blocks, the output head left out: what PEFT's ``all-linear`` wraps, as names.

    Example:
        >>> from torch import nn
        >>> class M(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layers = nn.ModuleList([nn.ModuleDict({"q": nn.Linear(2, 2)})])
        ...         self.head = nn.Linear(2, 3)
        ...     def get_output_embeddings(self):
        ...         return self.head
        >>> linear_module_names(M())
        ['q']
    """
    from torch import nn

    linear: tuple[type, ...] = (nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        linear += (Conv1D,)
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    return sorted({
        name.rsplit(".", 1)[-1] for name, module in lm.named_modules()
        if isinstance(module, linear) and module is not head and "." in name
    })  # fmt: skip


def _num_layers(lm: nn.Module) -> int | None:
    config = getattr(lm, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        n = getattr(config, name, None)
        if isinstance(n, int):
            return n
    return None


def resolve_layers(layers: str, lm: nn.Module | None = None) -> list[int] | None:
    """The layer indices LoRA wraps (peft's ``layers_to_transform``) for a ``layers`` setting:
    ``all`` (None: every layer), ``topN`` (the last N layers: the backward pass stops there,
    so a step costs about N / layers of a full one) or comma-separated indices.

    Without ``lm`` only the form is checked (``topN`` then gives ``[]``).

    Raises:
        ValueError: ``layers`` is not one of these forms, or names a layer ``lm`` lacks.

    Example:
        >>> resolve_layers("2,0"), resolve_layers("all")
        ([0, 2], None)
    """
    text = layers.strip().lower()
    if text == "all":
        return None
    n = _num_layers(lm) if lm is not None else None
    fix = "use `all`, `topN` (e.g. top8) or indices such as 0,1,2"
    if text.startswith("top"):
        k = text[3:]
        if not k.isdigit() or int(k) < 1:
            raise ValueError(f"`lora_layers` {layers!r}: N of topN must be >= 1; {fix}")
        if lm is None:
            return []  # the form is right; the model gives the layers
        if n is None:
            raise ValueError(
                f"`lora_layers` {layers!r}: the model does not say how many layers it has; "
                "give layer indices instead"
            )
        return list(range(max(0, n - int(k)), n))
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(
            f"`lora_layers` must be all, topN or indices, got {layers!r}; {fix}"
        ) from None
    if not out or out[0] < 0 or (n is not None and out[-1] >= n):
        raise ValueError(f"`lora_layers` {layers!r}: indices must be in [0, {n}); {fix}")
    return out


def _targets(config: AdapterConfig) -> list[str] | str | None:
    """``target_modules`` as PEFT takes it: a list, ``"all-linear"``, or None (its default)."""
    targets = list(config.target_modules)
    return "all-linear" if targets == ["all-linear"] else (targets or None)


def _model_type(lm: nn.Module) -> str | None:
    return getattr(getattr(lm, "config", None), "model_type", None)


def _wraps_parameters(peft_config: Any, lm: nn.Module) -> bool:
    """True when PEFT will target parameters rather than modules (fused MoE experts).

    PEFT rewrites the config of such models before wrapping them; the same rewrite runs here
    on a copy. Where this PEFT has no such rewrite, nothing is wrapped so.
    """
    import copy

    try:
        from peft.utils.transformers_weight_conversion import (
            convert_peft_config_for_transformers,
            get_model_conversion_mapping,
        )
    except ImportError:
        return False
    probe = copy.deepcopy(peft_config)
    convert_peft_config_for_transformers(
        probe, model=lm, conversions=get_model_conversion_mapping(lm)
    )
    return bool(getattr(probe, "target_parameters", None))


@ADAPTERS.register("prefix", help="prefix tuning: trained key/value prefixes in every layer")
def prefix_config(config: AdapterConfig, lm: nn.Module) -> Any:
    """``PrefixTuningConfig`` sized by the key/value heads ``lm`` attends with (measured)."""
    from peft import PrefixTuningConfig, TaskType

    sizes = {}
    shape = kv_shape(lm)
    if shape is not None:
        heads, head_dim = shape
        sizes = {"num_attention_heads": heads, "token_dim": heads * head_dim}
    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens, **sizes
    )


def kv_shape(lm: nn.Module) -> tuple[int, int] | None:
    """(key/value heads, head width) of ``lm``'s KV cache, measured on one token.

    The config can mislead: Falcon with ``multi_query=True`` lists every attention head but
    caches one. None when the cache has no per-layer tensors to read, or its layers differ
    (PEFT then sizes the prefix itself).
    """
    import torch

    param = next(lm.parameters())
    token = getattr(lm.config, "bos_token_id", None)
    token = token if isinstance(token, int) else 0
    ids = torch.tensor([[token]], device=param.device)
    was_training = lm.training
    lm.eval()
    try:
        with torch.no_grad():
            out = lm(input_ids=ids, use_cache=True)
    except (RuntimeError, TypeError, ValueError):
        return None  # a model that cannot run so here: PEFT sizes the prefix from the config
    finally:
        lm.train(was_training)
    cache = out.cache if "cache" in out else out.get("past_key_values")
    layers = getattr(cache, "layers", None)
    shapes = {
        (int(layer.keys.shape[1]), int(layer.keys.shape[-1]))
        for layer in layers or []
        if getattr(layer, "keys", None) is not None and layer.keys.dim() == 4
    }
    return shapes.pop() if len(shapes) == 1 else None


@ADAPTERS.register("prompt", help="prompt tuning: trained virtual tokens before the input")
def prompt_config(config: AdapterConfig, lm: nn.Module) -> Any:
    from peft import PromptTuningConfig, TaskType

    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
    )


@ADAPTERS.register("ia3", help="IA3: learned rescaling of keys, values and feed-forward")
def ia3_config(config: AdapterConfig, lm: nn.Module) -> Any:
    """``IA3Config``: named targets as given; otherwise PEFT's default for the architecture,
    else targets derived from ``lm``'s linear layers (:func:`derive_ia3_targets`)."""
    from peft import IA3Config, TaskType
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING

    targets = _targets(config)
    if targets not in (None, "all-linear"):
        return IA3Config(
            task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=[]
        )
    if _model_type(lm) in TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING:
        return IA3Config(task_type=TaskType.CAUSAL_LM)
    targets, feedforward = derive_ia3_targets(lm)
    logger.warning(
        "note: PEFT has no default IA3 targets for %s; rescaling %s (feed-forward: %s)",
        type(lm).__name__,
        _readable(targets),
        _readable(feedforward) if feedforward else "none",
    )
    return IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        feedforward_modules=feedforward or [],
    )


def derive_ia3_targets(lm: nn.Module) -> tuple[str, str | None]:
    """IA3 targets read from ``lm``'s own linear layers, as PEFT regexes over module names.

    Keys and values: the attention's key and value projections by name, else its fused input
    projection (an attention linear wider than the model: ``qkv_proj``, ``query_key_value``,
    ``c_attn``). Feed-forward: the linears outside attention that map a wider hidden layer
    back to the model width (``down_proj``, ``fc2``, ``dense_4h_to_h``); IA3 rescales their
    inputs. Layer indices generalise (``layers.\\d+``). The output head is never a target.

    Returns:
        ``(target_modules, feedforward_modules)``; the second is None when the model has no
        such linear (fused mixture-of-experts weights are parameters, not linears).

    Raises:
        ValueError: no key/value projection is recognisable; the message lists the linear
            layers and says to pass ``target_modules``.
    """
    d = lm.get_input_embeddings().weight.shape[1]
    kv, fused, ff, ff_named, names = [], [], [], [], []
    for name, in_f, out_f, in_attention in _linears(lm):
        leaf = name.rsplit(".", 1)[-1]
        names.append(leaf)
        if in_attention:
            if _KV_NAMES.fullmatch(leaf):
                kv.append(name)
            elif in_f == d and out_f > d:
                fused.append(name)
        elif out_f == d and in_f != d:
            ff.append(name)
        elif _FF_OUT_NAMES.fullmatch(leaf):
            ff_named.append(name)
    attention = kv or fused
    if not attention:
        raise ValueError(
            f"cannot tell the key/value projections of {type(lm).__name__} for IA3; pass "
            f"`target_modules` (with `--target-modules NAME ...`); its linear layers are "
            f"{sorted(set(names))}"
        )
    ff = ff or ff_named
    feedforward = _name_regex(ff) if ff else None
    return _name_regex(attention + ff), feedforward


def _linears(lm: nn.Module) -> Iterator[tuple[str, int, int, bool]]:
    """(name, in features, out features, inside attention) of each linear layer but the head."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    head = lm.get_output_embeddings()
    kinds: dict[str, bool] = {}
    for name, module in lm.named_modules():
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        in_attention = kinds.get(parent, False) or any(
            w in type(module).__name__.lower() for w in _ATTENTION_WORDS
        )
        kinds[name] = in_attention
        if module is head:
            continue
        if isinstance(module, nn.Linear):
            yield name, module.in_features, module.out_features, kinds.get(parent, False)
        elif isinstance(module, Conv1D):  # GPT-2's transposed linear: weight (in, out)
            yield name, module.weight.shape[0], module.weight.shape[1], kinds.get(parent, False)


def _name_regex(names: list[str]) -> str:
    """A regex fully matching ``names``, with numeric path parts generalised to ``\\d+``."""
    parts = {
        r"\.".join(r"\d+" if p.isdigit() else re.escape(p) for p in name.split("."))
        for name in names
    }
    return "|".join(sorted(parts))


def _readable(regex: str) -> str:
    """``a\\.\\d+\\.k_proj|...`` → ``a.N.k_proj, ...`` for a note."""
    return ", ".join(p.replace(r"\d+", "N").replace("\\", "") for p in regex.split("|"))


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
    layers: str = field(
        default="all",
        metadata={
            "help": "Layers LoRA wraps (peft's layers_to_transform): all, topN (the last N: "
            "the backward pass stops there, so a step is cheaper) or indices such as 0,1,2.",
            "flag": "lora_layers",
        },
    )

    def __post_init__(self) -> None:
        ADAPTERS.check(self.name, "adapter")
        self.target_modules = list(self.target_modules)
        for name, flag in (("r", "lora_r"), ("lora_alpha", "lora_alpha"),
                           ("num_virtual_tokens", "num_virtual_tokens")):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"`{flag}` must be >= 1, got {getattr(self, name)}")
        resolve_layers(self.layers)  # the form; the model checks the range
        if self.layers != "all" and self.name != "lora":
            raise ValueError(
                f"`lora_layers` {self.layers!r} applies to the lora adapter only, got adapter "
                f"{self.name!r}; leave it `all`"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {self.lora_dropout}")

    def peft_config(self, lm: nn.Module) -> Any:
        """The peft config of this adapter for ``lm`` (``LoraConfig``, ``PrefixTuningConfig``,
        ...): some settings are read from the model (see the module)."""
        return ADAPTERS.get(self.name)(self, lm)


def get_adapter_model(lm: nn.Module, config: AdapterConfig) -> Any:
    """Wrap ``lm`` in the PEFT adapter ``config.name`` names (``get_peft_model``).

    Raises:
        ValueError: PEFT cannot choose target modules for this architecture; the message
            says to pass ``target_modules``.
    """
    from peft import get_peft_model

    peft_config = config.peft_config(lm)
    try:
        with warnings.catch_warnings():
            # peft reads a transformers property deprecated in 5.x; nothing for users to do.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            return get_peft_model(lm, peft_config)
    except ValueError as e:
        if "target_modules" not in str(e):
            raise
        names = sorted({n.rsplit(".", 1)[-1] for n, _ in lm.named_modules() if n})[:20]
        raise ValueError(
            f"PEFT cannot place the {config.name} adapter on {type(lm).__name__} ({e}); "
            f"pass `target_modules` (e.g. --target-modules NAME ...); module names here "
            f"include {names}"
        ) from None


def is_prompt_learning(lm: Any) -> bool:
    """True for PEFT adapters that add virtual tokens or prefixes (prefix, prompt tuning)."""
    config = getattr(lm, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))
