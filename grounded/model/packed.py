"""Greedy generation for a batch of prompts of unequal lengths, without paying for padding.

``lm.generate`` runs a left-padded batch as one block: the prefill (the prompts' forward,
most of the cost on a CPU) computes every padded position, and every row keeps decoding
until the longest answer stops. :func:`greedy_packed` gives the same greedy tokens with
less work:

- prefill groups: the rows, sorted by length, are cut into groups whose padding stays within
  ``max_padding`` (:func:`prefill_groups`); each group is prefilled apart, its KV cache
  trimmed to its own width, then the caches are left-padded to one width and joined, so the
  decode is still one batch;
- a row leaves the batch (its KV cache rows too) as soon as it emits a stop token or
  reaches its own ``max_new_tokens``.

Each row sees the computation ``lm.generate`` gives it (its tokens, its positions counted
over attended tokens, masked padding), so the answers are those of
:meth:`GroundingModel.generate` up to floating-point rounding of the batch's shapes, the same
rounding that separates two batch sizes of ``lm.generate``.

Models whose KV cache holds other layers than ``DynamicLayer`` (sliding windows) raise
:class:`PackingUnsupported`; :func:`~grounded.model.generate.generate_texts` then falls back
to ``lm.generate``.

Example:
    >>> prefill_groups([30, 10, 12, 29, 11], max_padding=0.1)
    [[1, 4, 2], [3, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from grounded.injection.functional import position_ids_from_mask

if TYPE_CHECKING:
    from grounded.model.grounding import GroundingModel


class PackingUnsupported(ValueError):
    """The LM's cache is not one :class:`DynamicLayer` per layer (a sliding-window layer, a
    recurrent state): its caches cannot be joined here; use ``GroundingModel.generate``."""


def prefill_groups(lengths: Sequence[int], max_padding: float = 0.1) -> list[list[int]]:
    """Row indices grouped for prefill: by increasing length, a group takes the next row
    while its padded positions stay at most ``max_padding`` of all its positions.

    Args:
        lengths: each row's real (attended) length, > 0.
        max_padding: in [0, 1]; 0 groups equal lengths only, 1 makes one group.

    Returns:
        Groups of indices into ``lengths``, shortest rows first; each index once.

    Raises:
        ValueError: ``max_padding`` outside [0, 1].
    """
    if not 0 <= max_padding <= 1:
        raise ValueError(f"`max_padding` must be in [0, 1], got {max_padding}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    groups: list[list[int]] = []
    total = 0
    for i in order:
        if groups:
            n = len(groups[-1]) + 1
            # sorted: row i is the group's longest, so the group's width becomes lengths[i]
            if 1 - (total + lengths[i]) / (n * lengths[i]) <= max_padding:
                groups[-1].append(i)
                total += lengths[i]
                continue
        groups.append([i])
        total = lengths[i]
    return groups


class RoomyLayer(DynamicLayer):
    """One layer's KV cache with room for the decode: keys and values are written in place
    into buffers allocated once (``DynamicLayer`` concatenates the whole cache at every step:
    about a fifth of a 16-row decode step on a CPU); ``keys`` and ``values`` are views of the
    filled part.

    Args:
        keys, values: (B, H, T, D) the prefill's cache.
        room: positions to allocate beyond T (more still works, by concatenation).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        b, h, t, _ = keys.shape
        self.buf_k = keys.new_zeros(b, h, t + room, keys.shape[-1])
        self.buf_v = values.new_zeros(b, h, t + room, values.shape[-1])
        self.buf_k[:, :, :t] = keys
        self.buf_v[:, :, :t] = values
        self.n = t
        self.device = keys.device
        self.is_initialized = True
        self._views()

    def _views(self) -> None:
        self.keys = self.buf_k[:, :, : self.n]
        self.values = self.buf_v[:, :, : self.n]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = key_states.shape[-2]
        if self.n + step > self.buf_k.shape[-2]:  # out of room: grow as DynamicLayer does
            self.buf_k = torch.cat([self.keys, key_states], -2)
            self.buf_v = torch.cat([self.values, value_states], -2)
        else:
            self.buf_k[:, :, self.n : self.n + step] = key_states
            self.buf_v[:, :, self.n : self.n + step] = value_states
        self.n += step
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.n

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]
        self._views()


def _lead(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) left-padded mask → (B,) padded positions before each row's first attended one."""
    return (mask.cumsum(1) == 0).sum(1)


@torch.no_grad()
def greedy_packed(
    model: GroundingModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    *,
    max_new_tokens: int | Sequence[int],
    eos_token_id: int | Sequence[int],
    max_padding: float = 0.1,
    **evidence: torch.Tensor,
) -> list[list[int]]:
    """Greedy answers to left-padded prompts (see the module): new token ids per prompt,
    cut before the first stop token, as :meth:`GroundingModel.generate` returns them.

    Args:
        model: a grounded model whose LM keeps a KV cache (not prefix or prompt tuning).
        prompt_ids, prompt_mask: (P, T) left-padded prompts.
        max_new_tokens: the most new tokens, for every row or one per row.
        eos_token_id: the stop token(s).
        max_padding: the padding a prefill group may carry (:func:`prefill_groups`).
        **evidence: the evidence tensors of :meth:`GroundingModel.embed_prompts`.

    Raises:
        PackingUnsupported: the LM's cache has layers other than ``DynamicLayer`` (sliding
            windows: Gemma 2 and 3, ...).
        ValueError: a prompt-learning model, or ``max_new_tokens`` not one per row or < 1.
    """
    if model.prompt_learning:
        raise ValueError("prefix and prompt tuning re-insert virtual tokens: use `generate`")
    n = prompt_ids.shape[0]
    caps = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(caps) != n:
        raise ValueError(f"`max_new_tokens` has {len(caps)} values for {n} prompts")
    if any(c < 1 for c in caps):
        raise ValueError(f"`max_new_tokens` must be >= 1, got {min(caps)}")
    if n == 0:
        return []
    stops = torch.tensor(
        [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id),
        device=prompt_ids.device,
    )
    out: list[list[int]] = [[] for _ in range(n)]
    embeds, mask = model.embed_prompts(prompt_ids, prompt_mask, **evidence)  # (P, T', D)
    width = mask.shape[1]
    lead = _lead(mask)
    keep = {"logits_to_keep": 1} if model._keeps_logits else {}
    cache_arg = model._cache_arg
    first = torch.empty(n, dtype=torch.long, device=prompt_ids.device)
    group_caches: list[tuple[list[int], int, list[tuple[torch.Tensor, torch.Tensor]]]] = []
    for rows in prefill_groups((width - lead).tolist(), max_padding):
        idx = torch.tensor(rows, device=mask.device)
        start = int(lead[idx].min())
        sub_mask = mask[idx, start:]
        got = model.lm(
            inputs_embeds=embeds[idx, start:],
            attention_mask=sub_mask,
            position_ids=position_ids_from_mask(sub_mask),
            use_cache=True,
            **keep,
        )
        first[idx] = got.logits[:, -1].argmax(-1)
        cache = getattr(got, cache_arg)
        odd = {type(layer).__name__ for layer in cache.layers if type(layer) is not DynamicLayer}
        if odd:
            raise PackingUnsupported(
                f"the LM's KV cache has {sorted(odd)} layers, which packed generation does not "
                "join; generate with `GroundingModel.generate` (`packed=None`)"
            )
        group_caches.append((rows, start, [(layer.keys, layer.values) for layer in cache.layers]))
        del got, cache
    # One decode batch: each group's cache left-padded back to the full width, rows in order.
    order = [r for rows, _, _ in group_caches for r in rows]
    layers = []
    for i in range(len(group_caches[0][2])):
        keys, values = [], []
        for _, start, kv in group_caches:
            k, v = kv[i]
            keys.append(torch.nn.functional.pad(k, (0, 0, start, 0)))
            values.append(torch.nn.functional.pad(v, (0, 0, start, 0)))
        layers.append((torch.cat(keys), torch.cat(values)))
    del group_caches
    cache = DynamicCache()
    cache.layers = [RoomyLayer(k, v, max(caps)) for k, v in layers]
    del layers
    alive = torch.tensor(order, device=mask.device)  # (B,) original row of each batch row
    mask = mask[alive]
    token = first[alive]
    emb_layer = model.lm.get_input_embeddings()
    while True:
        stopped = torch.isin(token, stops)
        rows = alive.tolist()
        for b, r in enumerate(rows):
            if not bool(stopped[b]):
                out[r].append(int(token[b]))
        ended = stopped | torch.tensor([len(out[r]) >= caps[r] for r in rows], device=mask.device)
        if bool(ended.all()):
            return out
        if bool(ended.any()):
            live = torch.nonzero(~ended).flatten()
            alive, mask, token = alive[live], mask[live], token[live]
            cache.batch_select_indices(live)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        positions = mask.sum(1, keepdim=True) - 1  # (B, 1): attended tokens before this one
        got = model.lm(
            inputs_embeds=emb_layer(token[:, None]),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_arg: cache},
            **keep,
        )
        cache = getattr(got, cache_arg)
        token = got.logits[:, -1].argmax(-1)
