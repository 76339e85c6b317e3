"""The interface every injection mode implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from grounded.injection.layer import InjectionConfig


@dataclass
class EvidenceTensors:
    """The evidence of a batch of prompts, as tensors.

    Attributes:
        vectors: (B, K, E_dim) stored index vectors of the retrieved evidence.
        mask: (B, K), 1 for a present evidence item.
        entity_vectors: (B, M, E_dim) one vector per linked mention, or None.
        entity_token_mask: (B, M, T), 1 where prompt token t belongs to mention m, or None.
    """

    vectors: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    entity_vectors: torch.Tensor | None = None
    entity_token_mask: torch.Tensor | None = None


class Injection(nn.Module):
    """One way of putting evidence into a causal LM.

    Class attributes say what a mode needs from the data: ``writes_text`` (evidence lines in
    the prompt), ``reads_vectors`` (evidence vectors), ``reads_entities`` (mention vectors).
    ``forward`` maps (embeddings, mask, evidence) to new (embeddings, mask).
    """

    writes_text: ClassVar[bool] = False
    reads_vectors: ClassVar[bool] = False

    def __init__(self, config: InjectionConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def reads_entities(self) -> bool:
        return False

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        evidence: EvidenceTensors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs_embeds, attention_mask
