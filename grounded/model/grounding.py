"""`GroundingModel`: a causal LM (usually a PEFT model) behind the knowledge-injection layer.

``forward`` scores answer rows after their prompts and returns each row's token
log-probabilities; the trainer turns those into the LM, constraint and feedback terms. One
call covers the gold answer and every negative of a batch, so under
DistributedDataParallel a step is one forward and one backward.

Shared prompt prefix: the prompts (P rows, with evidence: the long part) go through the LM
once with ``use_cache=True``; the KV cache is gathered to the R answer rows
(``Cache.reorder_cache``, differentiable) and the answers continue from it. The cost of N
negatives is N short answers, not N prompts. PEFT prompt-learning adapters (prefix and
prompt tuning) re-insert their virtual tokens on every call, so they take the flat path:
each row is prompt + answer in one right-padded sequence.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from grounded.injection.base import EvidenceTensors
from grounded.injection.functional import position_ids_from_mask
from grounded.injection.layer import KnowledgeInjection
from grounded.losses.functional import token_logprobs
from grounded.training.adapters import is_prompt_learning


class GroundingModel(nn.Module):
    """The trainable grounded model: ``lm`` + ``injection``.

    Args:
        lm: a causal LM accepting ``inputs_embeds`` (a ``PeftModel`` during training).
        injection: the knowledge-injection layer.
        shared_prefix: score answers through the prompts' KV cache; None chooses (off for
            prompt-learning adapters, which need the flat path).
    """

    def __init__(
        self, lm: nn.Module, injection: KnowledgeInjection, *, shared_prefix: bool | None = None
    ) -> None:
        super().__init__()
        self.lm = lm
        self.injection = injection
        self.prompt_learning = is_prompt_learning(lm)
        if shared_prefix and self.prompt_learning:
            raise ValueError(
                "`shared_prefix=True` does not work with prefix or prompt tuning (PEFT inserts "
                "virtual tokens on every call); leave it None"
            )
        self.shared_prefix = (not self.prompt_learning) if shared_prefix is None else shared_prefix
        base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        params = inspect.signature(base.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        # transformers renamed `past_key_values` to `cache` (the old name goes in 5.40); an
        # older transformers 5.x takes only the old one.
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # PEFT's prefix tuning hands its key/value prefix to the base model as
        # `past_key_values`, which transformers deprecates (removed in 5.40: the prefix would
        # be dropped). Where the base takes `cache`, the prefix goes in under that name here.
        config = getattr(lm, "active_peft_config", None)
        self._own_prefix = (
            str(getattr(config, "peft_type", "")).endswith("PREFIX_TUNING")
            and self._cache_arg == "cache"
        )

    def _lm(self, embeds: torch.Tensor, mask: torch.Tensor) -> Any:
        """The LM's output for (B, T, D) ``embeds`` and (B, T) ``mask``: PEFT's forward, or,
        for prefix tuning on a base that takes ``cache``, PEFT's prefix path with the prefix
        passed as ``cache`` (the attention mask grows by the virtual tokens, as PEFT's does)."""
        if not self._own_prefix or getattr(self.lm, "_adapters_disabled", False):
            # (inside PEFT's `disable_adapter()` its forward is the bare base model's)
            return self.lm(inputs_embeds=embeds, attention_mask=mask)
        n = self.lm.active_peft_config.num_virtual_tokens
        b = embeds.shape[0]
        mask = torch.cat([mask.new_ones(b, n), mask], 1)
        prefix = self.lm.get_prompt(b, max_cache_len=embeds.shape[1] + n)
        return self.lm.get_base_model()(inputs_embeds=embeds, attention_mask=mask, cache=prefix)

    # -- inputs ------------------------------------------------------------------------------
    def embed_prompts(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        evidence_vectors: torch.Tensor | None = None,
        evidence_mask: torch.Tensor | None = None,
        entity_vectors: torch.Tensor | None = None,
        entity_token_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, T) ids → (P, T', D) injected embeddings and (P, T') mask, still left-padded."""
        embeds = self.lm.get_input_embeddings()(prompt_ids)  # (P, T, D)
        evidence = EvidenceTensors(
            evidence_vectors, evidence_mask, entity_vectors, entity_token_mask
        )
        return self.injection(embeds, prompt_mask, evidence)

    # -- scoring -----------------------------------------------------------------------------
    def forward(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        answer_ids: torch.Tensor,
        answer_mask: torch.Tensor,
        row_prompt: torch.Tensor,
        evidence_vectors: torch.Tensor | None = None,
        evidence_mask: torch.Tensor | None = None,
        entity_vectors: torch.Tensor | None = None,
        entity_token_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log-probability of each answer token after its prompt (teacher forcing).

        Args:
            prompt_ids, prompt_mask: (P, T) left-padded prompts.
            answer_ids, answer_mask: (R, A) right-padded answers (ending in eos).
            row_prompt: (R,) the prompt index of each answer row.
            evidence_vectors, evidence_mask, entity_vectors, entity_token_mask: the evidence
                tensors of :class:`~grounded.injection.EvidenceTensors` (per prompt).

        Returns:
            (R, A) float32 token log-probabilities, 0 at padding.
        """
        embeds, mask = self.embed_prompts(
            prompt_ids, prompt_mask, evidence_vectors, evidence_mask, entity_vectors,
            entity_token_mask,
        )  # fmt: skip
        if self.shared_prefix:
            logits = self._answer_logits_shared(embeds, mask, answer_ids, answer_mask, row_prompt)
        else:
            logits = self._answer_logits_flat(embeds, mask, answer_ids, answer_mask, row_prompt)
        return token_logprobs(logits, answer_ids, answer_mask)

    def _answer_logits_shared(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        answer_ids: torch.Tensor,
        answer_mask: torch.Tensor,
        row_prompt: torch.Tensor,
    ) -> torch.Tensor:
        """(R, A, V) logits predicting each answer token, prompts run once through the cache."""
        keep = {"logits_to_keep": 1} if self._keeps_logits else {}
        out = self.lm(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=position_ids_from_mask(mask),
            use_cache=True,
            **keep,
        )
        last = out.logits[:, -1:]  # (P, 1, V): predicts each answer's first token
        cache = getattr(out, self._cache_arg)
        if row_prompt.numel() != mask.shape[0] or not torch.equal(
            row_prompt, torch.arange(mask.shape[0], device=row_prompt.device)
        ):
            cache.reorder_cache(row_prompt)  # (P, ...) → (R, ...)
        full_mask = torch.cat([mask[row_prompt], answer_mask], dim=1)  # (R, T' + A)
        start = mask.sum(1)[row_prompt, None]  # (R, 1): positions continue after the prompt
        positions = start + torch.arange(answer_ids.shape[1], device=mask.device)[None]
        cont = self.lm(
            inputs_embeds=self.lm.get_input_embeddings()(answer_ids),
            attention_mask=full_mask,
            position_ids=positions,
            use_cache=False,
            **{self._cache_arg: cache},
        )
        return torch.cat([last[row_prompt], cont.logits[:, :-1]], dim=1)  # (R, A, V)

    def _answer_logits_flat(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        answer_ids: torch.Tensor,
        answer_mask: torch.Tensor,
        row_prompt: torch.Tensor,
    ) -> torch.Tensor:
        """(R, A, V) logits from one right-padded prompt + answer sequence per row."""
        seq, seq_mask, starts = _right_aligned(
            embeds[row_prompt], mask[row_prompt], self.lm.get_input_embeddings()(answer_ids),
            answer_mask,
        )  # fmt: skip
        out = self._lm(seq, seq_mask)
        logits = out.logits[:, out.logits.shape[1] - seq.shape[1] :]  # drop virtual tokens
        a = answer_ids.shape[1]
        idx = starts[:, None] - 1 + torch.arange(a, device=seq.device)[None]  # (R, A)
        return logits.gather(1, idx[..., None].expand(-1, -1, logits.shape[-1]))

    # -- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        eos_token_id: int | list[int],
        pad_token_id: int,
        **evidence: torch.Tensor,
    ) -> list[list[int]]:
        """Greedy answers to left-padded prompts; new token ids per prompt, cut before the first
        stop token (``eos_token_id``: one id or several, e.g. end-of-turn and eos).

        Plain and LoRA/IA3 models go through ``lm.generate(inputs_embeds=...)`` (its KV cache
        and positions from the attention mask match :meth:`forward`). PEFT's generate does
        not take ``inputs_embeds`` for prefix and prompt tuning, so those run a cache-free
        greedy loop: exact, and cheap enough for answers of a few tokens.
        """
        from transformers import GenerationConfig

        stops = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
        embeds, mask = self.embed_prompts(prompt_ids, prompt_mask, **evidence)
        if self.prompt_learning:
            new = self._greedy_no_cache(embeds, mask, max_new_tokens, stops)
        else:
            config = GenerationConfig(
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=stops,
                pad_token_id=pad_token_id,
            )
            new = self.lm.generate(
                inputs_embeds=embeds, attention_mask=mask, generation_config=config
            ).tolist()
        out = []
        for ids in new:
            cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
            out.append(ids[:cut])
        return out

    def _greedy_no_cache(
        self, embeds: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, stops: list[int]
    ) -> list[list[int]]:
        emb_layer = self.lm.get_input_embeddings()
        empty = torch.zeros(embeds.shape[0], 0, dtype=torch.long, device=embeds.device)
        seq, seq_mask, lengths = _right_aligned(embeds, mask, emb_layer(empty), empty)
        out: list[list[int]] = [[] for _ in range(seq.shape[0])]
        done = torch.zeros(seq.shape[0], dtype=torch.bool, device=seq.device)
        rows = torch.arange(seq.shape[0], device=seq.device)
        for _ in range(max_new_tokens):
            width = int(lengths.max()) + 1
            if seq.shape[1] < width:
                grow = width - seq.shape[1]
                seq = torch.cat([seq, seq.new_zeros(seq.shape[0], grow, seq.shape[2])], 1)
                seq_mask = torch.cat([seq_mask, seq_mask.new_zeros(seq.shape[0], grow)], 1)
            logits = self._lm(seq, seq_mask).logits
            logits = logits[:, logits.shape[1] - seq.shape[1] :]
            nxt = logits[rows, lengths - 1].argmax(-1)  # (R,)
            for r in torch.nonzero(~done).flatten().tolist():
                out[r].append(int(nxt[r]))
            done |= torch.isin(nxt, torch.tensor(stops, device=nxt.device))
            if bool(done.all()):
                break
            seq[rows, lengths] = emb_layer(nxt).to(seq.dtype)
            seq_mask[rows, lengths] = 1
            lengths = lengths + 1
        return out


def _right_aligned(
    prompt: torch.Tensor,
    prompt_mask: torch.Tensor,
    answer: torch.Tensor,
    answer_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Join left-padded prompts and right-padded answers into right-padded sequences.

    Args:
        prompt: (R, T, D), prompt_mask: (R, T) left-padded; answer: (R, A, D), answer_mask:
            (R, A) right-padded.

    Returns:
        (R, T + A, D) sequences with the real tokens first, their (R, T + A) mask, and (R,)
        where each answer starts.
    """
    seq = torch.cat([prompt, answer], dim=1)
    seq_mask = torch.cat([prompt_mask, answer_mask], dim=1)
    lead = (prompt_mask.cumsum(1) == 0).sum(1)  # (R,) leading pads of each prompt
    width = seq.shape[1]
    idx = (torch.arange(width, device=seq.device)[None] + lead[:, None]) % width  # (R, T + A)
    seq = seq.gather(1, idx[..., None].expand(-1, -1, seq.shape[2]))
    seq_mask = seq_mask.gather(1, idx)
    return seq, seq_mask, prompt_mask.shape[1] - lead


def trainable_parameters(model: nn.Module) -> dict[str, int]:
    """Counts of trainable and total parameters of ``model``.

    A PEFT model counts itself (``get_nb_trainable_parameters``, which also handles 4-bit
    and DeepSpeed ZeRO-3 parameters); a :class:`GroundingModel` adds its injection layer to
    its LM's count; any other module (full fine-tuning, no peft) sums ``requires_grad``
    parameters.

    Example:
        >>> trainable_parameters(nn.Linear(3, 2))
        {'trainable': 8, 'total': 8}
    """
    if isinstance(model, GroundingModel):
        lm, injection = trainable_parameters(model.lm), trainable_parameters(model.injection)
        return {k: lm[k] + injection[k] for k in ("trainable", "total")}
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return {"trainable": int(trainable), "total": int(total)}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}
