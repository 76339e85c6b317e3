"""``embedding`` injection: evidence vectors from the FAISS index become soft tokens."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from grounded.injection.base import EvidenceTensors, Injection
from grounded.injection.functional import add_entity_vectors, prepend_soft_tokens

if TYPE_CHECKING:
    from grounded.injection.layer import InjectionConfig


class EmbeddingInjection(Injection):
    """Project each evidence vector into ``soft_tokens_per_fact`` soft tokens, inserted after
    the prompt's first ``soft_token_offset`` tokens (the attention sink stays first).

    The projection is an MLP (``evidence_dim`` → ``hidden_size`` → m·``d_model``) followed by
    a parameter-free LayerNorm and a learned scale initialised at the RMS of what the language
    model's input-embedding module outputs (:func:`~grounded.injection.layer.embedding_rms`),
    so soft tokens start at the magnitude of real tokens.
    With ``entity_vectors``, each linked mention's vector goes through a linear map
    initialised at zero (the model starts unchanged) and is added to the mention's tokens.
    """

    reads_vectors = True

    def __init__(self, config: InjectionConfig) -> None:
        super().__init__(config)
        d, m = config.d_model, config.soft_tokens_per_fact
        self.project = nn.Sequential(
            nn.Linear(config.evidence_dim, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, m * d),
        )
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.log_scale = nn.Parameter(torch.tensor(math.log(config.init_scale)))
        self.entity = nn.Linear(config.evidence_dim, d) if config.entity_vectors else None
        if self.entity is not None:
            nn.init.zeros_(self.entity.weight)
            nn.init.zeros_(self.entity.bias)

    @property
    def reads_entities(self) -> bool:
        return self.entity is not None

    def soft_tokens(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, K, evidence_dim) → (B, K·m, d_model), fact by fact."""
        b, k, _ = vectors.shape
        out = self.project(vectors).view(b, k * self.config.soft_tokens_per_fact, -1)
        return self.norm(out) * self.log_scale.exp()

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        evidence: EvidenceTensors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if evidence is None or evidence.vectors is None or evidence.mask is None:
            raise ValueError(
                "`embedding` injection needs evidence vectors; pass `evidence` with `vectors` "
                "and `mask` (the batcher fills them when the injection reads vectors)"
            )
        if self.entity is not None:
            if evidence.entity_vectors is None or evidence.entity_token_mask is None:
                raise ValueError(
                    "`entity_vectors` is on but the batch has no `entity_vectors`; build the "
                    "examples with `link_mentions=True`"
                )
            # Always applied (even to an all-zero mask) so every parameter takes part in the
            # graph, as DistributedDataParallel requires.
            ent = self.entity(evidence.entity_vectors.to(inputs_embeds.dtype))  # (B, M, D)
            inputs_embeds = add_entity_vectors(inputs_embeds, ent, evidence.entity_token_mask)
        vectors = evidence.vectors.to(self.project[0].weight.dtype)
        soft = self.soft_tokens(vectors)  # (B, K·m, D)
        soft_mask = evidence.mask.repeat_interleave(self.config.soft_tokens_per_fact, dim=1)
        injected = prepend_soft_tokens(
            inputs_embeds, attention_mask, soft, soft_mask, offset=self.config.soft_token_offset
        )
        return injected.inputs_embeds, injected.attention_mask
