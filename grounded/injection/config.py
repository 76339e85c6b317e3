"""`InjectionConfig`: the settings of the knowledge-injection layer (no torch here).

It pairs with :func:`grounded.injection.get_injection`, as peft's ``LoraConfig`` pairs with
``get_peft_model``, and is the ``injection`` section of
:class:`grounded.training.TrainConfig` (flags ``--injection``, ``--soft-tokens-per-fact``,
``--injection-hidden``, ``--entity-vectors``). ``evidence_dim``, ``d_model`` and
``init_scale`` are derived when the layer is built (from the knowledge base's index and the
model's embeddings), so they are no flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from grounded.injection.registry import INJECTIONS, injection_name, parse_injection

CONFIG_NAME = "injection.json"
INJECTION_FORMAT_VERSION = 2
"""2: ``soft_token_offset`` (version 1 put soft tokens first: read as offset 0)."""


@dataclass
class InjectionConfig:
    """Settings of the knowledge-injection layer."""

    modes: list[str] = field(
        default_factory=lambda: ["text", "embedding"],
        metadata={
            "help": f"Injection modes joined by + or , from: {INJECTIONS.describe()}; or none "
            "(ungrounded SFT).",
            "flag": "injection",
        },
    )
    evidence_dim: int = field(
        default=384,
        metadata={
            "help": "Dimension of the index's evidence vectors (training sets it from the "
            "knowledge base).",
            "cli": False,
        },
    )
    d_model: int = field(
        default=0,
        metadata={
            "help": "Width of the LM's input embeddings (0: read from the model).",
            "cli": False,
        },
    )
    soft_tokens_per_fact: int = field(
        default=1, metadata={"help": "Soft tokens produced from each evidence vector."}
    )
    soft_token_offset: int = field(
        default=1,
        metadata={
            "help": "Prompt tokens kept before the soft tokens: 1 keeps the first token (BOS "
            "or the chat template's opening) first, where pretrained models park much of "
            "their attention (the attention sink); 0 puts soft tokens at the very start."
        },
    )
    hidden_size: int = field(
        default=256,
        metadata={
            "help": "Hidden width of the evidence-projection MLP.",
            "flag": "injection_hidden",
        },
    )
    entity_vectors: bool = field(
        default=False,
        metadata={"help": "Add projected entity vectors at linked-mention tokens (ERNIE)."},
    )
    init_scale: float = field(
        default=1.0,
        metadata={
            "help": "Initial RMS of the soft tokens (read from the model's embeddings).",
            "cli": False,
        },
    )

    def __post_init__(self) -> None:
        self.modes = list(parse_injection(self.modes, "injection"))  # the flag's name
        if self.soft_token_offset < 0:
            raise ValueError(
                f"`soft_token_offset` must be >= 0 (prompt tokens before the soft tokens), got "
                f"{self.soft_token_offset}"
            )
        for name in ("evidence_dim", "soft_tokens_per_fact", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.d_model < 0:
            raise ValueError(f"`d_model` must be >= 0 (0: read from the model), got {self.d_model}")
        if self.init_scale <= 0:
            raise ValueError(f"`init_scale` must be > 0, got {self.init_scale}")
        if self.entity_vectors and "embedding" not in self.modes:
            raise ValueError(
                f"`entity_vectors` needs the `embedding` mode; modes are {self.modes}: add "
                "`embedding` or turn `entity_vectors` off"
            )

    @property
    def name(self) -> str:
        return injection_name(self.modes)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "format_version": INJECTION_FORMAT_VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> InjectionConfig:
        """Inverse of :meth:`to_dict`; unknown keys warn, a newer format fails."""
        from grounded.config import config_from_dict
        from kg.manifest import check_record

        check_record(data, origin, version=INJECTION_FORMAT_VERSION)

        values = {k: v for k, v in data.items() if k != "format_version"}
        if data.get("format_version", 1) < 2:  # written before the offset: soft tokens first
            values.setdefault("soft_token_offset", 0)
        return config_from_dict(cls, values, origin=origin, unknown="warn")
