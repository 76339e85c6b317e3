"""`KnowledgeInjection`: the active injection modes as one module, saved as safetensors + JSON.

``InjectionConfig`` pairs with :func:`get_injection`, as peft's ``LoraConfig`` pairs with
``get_peft_model``::

    config = InjectionConfig(modes=["text", "embedding"])
    injection = get_injection(config, lm)          # d_model and scale read from lm
    embeds, mask = injection(lm.get_input_embeddings()(ids), mask, evidence)
    injection.save_pretrained("model/")            # injection.json + injection.safetensors
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from grounded.injection.base import EvidenceTensors
from grounded.injection.config import CONFIG_NAME, InjectionConfig
from grounded.injection.registry import INJECTIONS
from kg.io import atomic_write_json
from kg.manifest import read_json

WEIGHTS_NAME = "injection.safetensors"

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "InjectionConfig", "KnowledgeInjection", "get_injection"]


class KnowledgeInjection(nn.Module):
    """The active injection modes applied in turn to a batch's input embeddings.

    Works with any causal LM through ``inputs_embeds``: take ``lm.get_input_embeddings()``
    of the prompt ids, call this module, pass the result and the returned mask to the LM.

    Args:
        config: the settings; ``d_model`` must be set when ``embedding`` is active (use
            :func:`get_injection` to read it from the model).
    """

    def __init__(self, config: InjectionConfig) -> None:
        super().__init__()
        if "embedding" in config.modes and config.d_model < 1:
            raise ValueError(
                "`d_model` is 0; build the layer with `get_injection(config, lm)` or set "
                "`d_model` to the LM's embedding width"
            )
        self.config = config
        self.modes = nn.ModuleDict({m: INJECTIONS.get(m)(config) for m in config.modes})

    @property
    def writes_text(self) -> bool:
        """Evidence sentences go into the prompt."""
        return any(m.writes_text for m in self.modes.values())

    @property
    def reads_vectors(self) -> bool:
        """Batches must carry evidence vectors."""
        return any(m.reads_vectors for m in self.modes.values())

    @property
    def reads_entities(self) -> bool:
        """Batches must carry linked-mention vectors."""
        return any(m.reads_entities for m in self.modes.values())

    @property
    def uses_evidence(self) -> bool:
        return bool(self.config.modes)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        evidence: EvidenceTensors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) embeddings and (B, T) mask → (B, T', D) and (B, T'), T' ≥ T."""
        for mode in self.modes.values():
            inputs_embeds, attention_mask = mode(inputs_embeds, attention_mask, evidence)
        return inputs_embeds, attention_mask

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``injection.json`` and, when it has weights, ``injection.safetensors``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / CONFIG_NAME, self.config.to_dict())
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if state:
            save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> KnowledgeInjection:
        """Load a layer written by :meth:`save_pretrained`.

        Raises:
            FileNotFoundError: ``injection.json`` (or the weights it needs) is missing.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        cpath = directory / CONFIG_NAME
        if not cpath.is_file():
            raise FileNotFoundError(f"{directory} has no {CONFIG_NAME}; not a grounded model")
        config = InjectionConfig.from_dict(read_json(cpath), origin=str(cpath))
        layer = cls(config)
        wpath = directory / WEIGHTS_NAME
        if list(layer.state_dict()):
            if not wpath.is_file():
                raise FileNotFoundError(f"{wpath} is missing; {cpath} needs its weights")
            layer.load_state_dict(load_file(str(wpath)))
        return layer


def get_injection(config: InjectionConfig, lm: nn.Module | None = None) -> KnowledgeInjection:
    """Build the injection layer of ``config`` for ``lm``.

    ``d_model`` (when 0) and ``init_scale`` are read from ``lm``'s input embeddings: the
    soft tokens start at the RMS of real token embeddings (:func:`embedding_rms`).
    """
    if lm is not None and "embedding" in config.modes:
        embed = lm.get_input_embeddings()
        config = dataclasses.replace(
            config,
            d_model=config.d_model or embed.weight.shape[1],
            init_scale=embedding_rms(embed),
        )
    return KnowledgeInjection(config)


def embedding_rms(embed: nn.Module, n_tokens: int = 1024) -> float:
    """RMS of what the input-embedding module outputs, over up to ``n_tokens`` evenly spaced ids.

    Measured on the module's output, not its weight: Gemma multiplies inside its embedding
    module by sqrt(d_model), so the weight's RMS would start soft tokens sqrt(d) too small.

    Example:
        >>> emb = nn.Embedding(10, 4); _ = nn.init.constant_(emb.weight, 0.5)
        >>> embedding_rms(emb)
        0.5
    """
    weight = embed.weight
    vocab = weight.shape[0]
    ids = torch.linspace(0, vocab - 1, min(vocab, n_tokens), device=weight.device).long()
    with torch.no_grad():
        out = embed(ids)  # (n, D)
    return float(out.detach().float().pow(2).mean().sqrt())
