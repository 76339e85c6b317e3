"""The tensor maths of knowledge injection, as pure functions tested on hand-made tensors.

Shapes: B batch, T tokens, S soft tokens, D model width, E entity mentions.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

IGNORE_INDEX = -100


class Injected(NamedTuple):
    """Input embeddings after injection, with the attention mask (and labels) to match."""

    inputs_embeds: torch.Tensor  # (B, S + T, D)
    attention_mask: torch.Tensor  # (B, S + T)
    labels: torch.Tensor | None  # (B, S + T) or None


def prepend_soft_tokens(
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    soft: torch.Tensor,
    soft_mask: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    *,
    offset: int = 0,
) -> Injected:
    """Put ``soft`` tokens right before real token number ``offset`` of each row.

    Works with left and right padding alike: a left-padded row ``[pad, pad, a, b]`` becomes
    ``[pad, pad, s1, s2, a, b]``, a right-padded row ``[a, b, pad]`` becomes
    ``[s1, s2, a, b, pad]``; with ``offset=1``, ``[pad, pad, a, s1, s2, b]`` and
    ``[a, s1, s2, b, pad]`` (a row with fewer real tokens gets them after its last one).
    Keeping the first token first matters to pretrained models, which park much of their
    attention on it (the "attention sink" of StreamingLLM, Xiao et al. 2023): soft tokens in
    its place disturb every layer before training has begun.

    Soft tokens whose ``soft_mask`` is 0 (a missing evidence slot) go before the kept tokens,
    next to the row's padding, so the valid ones always touch the text and the real
    positions stay one block. Soft positions get label -100.

    Args:
        inputs_embeds: (B, T, D) token embeddings.
        attention_mask: (B, T), 1 for real tokens.
        soft: (B, S, D) soft tokens, in the order they should appear.
        soft_mask: (B, S), 1 for valid soft tokens; all valid when None.
        labels: (B, T) token labels, or None.
        offset: real tokens of each row kept before the soft tokens (>= 0).

    Returns:
        :class:`Injected` with (B, S + T, D) embeddings, (B, S + T) mask and labels.

    Raises:
        ValueError: the shapes disagree, or ``offset`` is negative.

    Example:
        >>> x = torch.zeros(1, 3, 2); m = torch.tensor([[0, 1, 1]])
        >>> out = prepend_soft_tokens(x, m, torch.ones(1, 2, 2))
        >>> out.attention_mask.tolist(), out.inputs_embeds[0, :, 0].tolist()
        ([[0, 1, 1, 1, 1]], [0.0, 1.0, 1.0, 0.0, 0.0])
        >>> prepend_soft_tokens(x, m, torch.ones(1, 2, 2), offset=1).inputs_embeds[0, :, 0].tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0]
    """
    if offset < 0:
        raise ValueError(
            f"`offset` must be >= 0 (real tokens kept before the soft tokens), got {offset}"
        )
    b, t, d = inputs_embeds.shape
    if attention_mask.shape != (b, t) or soft.shape[0] != b or soft.shape[2] != d:
        raise ValueError(
            f"shapes disagree: inputs_embeds {tuple(inputs_embeds.shape)}, attention_mask "
            f"{tuple(attention_mask.shape)}, soft {tuple(soft.shape)}; expected (B, T, D), "
            "(B, T) and (B, S, D)"
        )
    s = soft.shape[1]
    if s == 0:
        return Injected(inputs_embeds, attention_mask, labels)
    if soft_mask is None:
        soft_mask = torch.ones(b, s, dtype=attention_mask.dtype, device=soft.device)
    else:
        order = torch.sort(soft_mask.to(torch.int8), dim=1, stable=True).indices  # (B, S)
        soft = soft.gather(1, order[..., None].expand(-1, -1, d))
        soft_mask = soft_mask.gather(1, order).to(attention_mask.dtype)
    # Each row becomes [pads][masked soft][first `offset` real tokens][valid soft][rest]:
    # pads and masked slots stay one block at the edge, the real positions one block.
    lead = (attention_mask.cumsum(1) == 0).sum(1, keepdim=True)  # (B, 1) leading pads
    kept = attention_mask.sum(1, keepdim=True).clamp(max=offset)  # (B, 1) tokens kept first
    n_masked = (soft_mask == 0).sum(1, keepdim=True)  # (B, 1), sorted to the block's front
    j = torch.arange(t + s, device=inputs_embeds.device)[None]  # (1, S + T)
    masked_end = lead + n_masked
    valid_start = masked_end + kept
    valid_end = lead + s + kept
    is_soft = ((j >= lead) & (j < masked_end)) | ((j >= valid_start) & (j < valid_end))
    src_tok = torch.where(j < lead, j, torch.where(j < valid_start, j - n_masked, j - s))
    src_tok = src_tok.clamp(0, t - 1)  # (B, S + T)
    src_soft = torch.where(j < masked_end, j - lead, j - lead - kept).clamp(0, s - 1)
    tok = inputs_embeds.gather(1, src_tok[..., None].expand(-1, -1, d))
    sft = soft.to(inputs_embeds.dtype).gather(1, src_soft[..., None].expand(-1, -1, d))
    embeds = torch.where(is_soft[..., None], sft, tok)
    mask = torch.where(is_soft, soft_mask.gather(1, src_soft), attention_mask.gather(1, src_tok))
    out_labels = None
    if labels is not None:
        out_labels = torch.where(
            is_soft, torch.full_like(src_tok, IGNORE_INDEX), labels.gather(1, src_tok)
        )
    return Injected(embeds, mask, out_labels)


def add_entity_vectors(
    inputs_embeds: torch.Tensor, entity_embeds: torch.Tensor, entity_token_mask: torch.Tensor
) -> torch.Tensor:
    """Add each mention's entity embedding to the tokens of that mention (as ERNIE does).

    Args:
        inputs_embeds: (B, T, D) token embeddings.
        entity_embeds: (B, E, D) one projected entity vector per mention.
        entity_token_mask: (B, E, T), 1 where token t belongs to mention e.

    Returns:
        (B, T, D) embeddings; tokens outside every mention are unchanged.

    Example:
        >>> x = torch.zeros(1, 3, 2)
        >>> add_entity_vectors(x, torch.ones(1, 1, 2), torch.tensor([[[0, 1, 1]]]))[0, :, 0]
        tensor([0., 1., 1.])
    """
    return inputs_embeds + torch.einsum(
        "bet,bed->btd", entity_token_mask.to(inputs_embeds.dtype), entity_embeds
    )


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting only attended tokens: (B, T) → (B, T), pads at 0.

    Example:
        >>> position_ids_from_mask(torch.tensor([[0, 0, 1, 1, 1]])).tolist()
        [[0, 0, 0, 1, 2]]
    """
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)
