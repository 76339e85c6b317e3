"""The maths of the knowledge-constraint and feedback terms, as pure tensor functions.

Shapes: R answer rows, T answer tokens, V vocabulary, P prompts (examples), N negatives per
prompt.

Where gold and negative are compared (``scope``):

- ``divergence`` (default): at the first token where the two answers differ. Both answers
  share everything before it, so the comparison is exactly the sequence comparison minus
  the tokens after the split. Its gradient moves probability from the negative's token to
  the gold token at that position and nowhere else (the softmax normalizer cancels), and it
  is the decision greedy decoding takes. With whole sequences, the negative's later tokens
  (``.`` after a wrong city, in a context the gold answer never visits) are pushed down
  too; on the countries KB that drove a small model to emit garbage within 100 steps.
- ``sequence``: summed (or per-token mean) log-probabilities of the whole answers.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Scope = Literal["divergence", "sequence"]
SCOPES: tuple[Scope, ...] = ("divergence", "sequence")


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-probability of each target token under teacher forcing, 0 where masked.

    Args:
        logits: (R, T, V) logits; ``logits[r, t]`` predicts ``targets[r, t]``.
        targets: (R, T) token ids.
        mask: (R, T), 1 for real target tokens.

    Returns:
        (R, T) float32 log-probabilities.
    """
    r, t, v = logits.shape
    ignore = torch.where(mask.bool(), targets, torch.full_like(targets, -100))
    return -F.cross_entropy(
        logits.float().reshape(r * t, v), ignore.reshape(-1), reduction="none"
    ).view(r, t)


def sequence_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each target sequence, and its token count: (R,), (R,).

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
        >>> logp, n = sequence_logprobs(logits, torch.tensor([[0, 1]]), torch.tensor([[1, 1]]))
        >>> round(logp.item(), 4) == round(math.log(0.5 * 0.1), 4), n.item()
        (True, 2.0)
    """
    return token_logprobs(logits, targets, mask).sum(1), mask.float().sum(1)


def first_divergence(
    gold_ids: torch.Tensor,
    gold_mask: torch.Tensor,
    neg_ids: torch.Tensor,
    neg_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each negative first differs from its gold answer.

    Args:
        gold_ids, gold_mask: (P, T) gold answers (right-padded).
        neg_ids, neg_mask: (P, N, T) negatives (right-padded).

    Returns:
        ``(position, differs)``: (P, N) the first position where token or mask differ, and
        (P, N) False where the negative equals the gold answer (no position).

    Example:
        >>> pos, ok = first_divergence(torch.tensor([[5, 6, 2]]), torch.ones(1, 3),
        ...     torch.tensor([[[5, 7, 2], [5, 6, 2]]]), torch.ones(1, 2, 3))
        >>> pos.tolist(), ok.tolist()
        ([[1, 0]], [[True, False]])
    """
    differ = (gold_ids[:, None] != neg_ids) & (gold_mask[:, None].bool() | neg_mask.bool())
    differ |= gold_mask[:, None].bool() != neg_mask.bool()  # (P, N, T)
    return differ.int().argmax(-1), differ.any(-1)


def pair_logprobs(
    token_logp: torch.Tensor,
    answer_ids: torch.Tensor,
    answer_mask: torch.Tensor,
    gold_rows: torch.Tensor,
    neg_rows: torch.Tensor,
    *,
    scope: Scope = "divergence",
    length_normalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The log-probabilities the constraint compares, for every (gold, negative) pair.

    Args:
        token_logp: (R, T) per-token log-probabilities of every answer row.
        answer_ids, answer_mask: (R, T) the rows' tokens.
        gold_rows: (P,) the gold row of each prompt.
        neg_rows: (P, N) its negative rows, -1 for none.
        scope: ``divergence`` (the first differing token) or ``sequence`` (whole answers).
        length_normalize: with ``sequence``, per-token means instead of sums.

    Returns:
        ``(gold, neg, valid)``, each (P, N): the gold and negative log-probabilities of each
        pair, and which pairs exist.

    Raises:
        ValueError: ``scope`` is unknown.
    """
    if scope not in SCOPES:
        raise ValueError(f"`scope` must be one of {SCOPES}, got {scope!r}")
    valid = neg_rows >= 0  # (P, N)
    safe = neg_rows.clamp(min=0)
    if scope == "sequence":
        seq = token_logp.sum(1)  # (R,)
        if length_normalize:
            seq = seq / answer_mask.float().sum(1).clamp(min=1.0)
        gold = seq[gold_rows][:, None].expand_as(safe)
        return gold, seq[safe], valid
    pos, differs = first_divergence(
        answer_ids[gold_rows], answer_mask[gold_rows], answer_ids[safe], answer_mask[safe]
    )  # (P, N) each
    gold = token_logp[gold_rows].gather(1, pos)  # (P, N)
    neg = token_logp[safe.flatten(), pos.flatten()].view_as(pos)  # (P, N)
    return gold, neg, valid & differs


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1; 0 (still in the graph) when nothing is."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def margin_loss(
    gold_logp: torch.Tensor,
    neg_logp: torch.Tensor,
    neg_mask: torch.Tensor,
    margin: float = 1.0,
) -> torch.Tensor:
    """Hinge on the gap between the gold answer and each negative.

    ``mean over valid (b, n) of max(0, margin - (gold_logp[b] - neg_logp[b, n]))``.

    Args:
        gold_logp: (B,) log-probability of each gold answer, or (B, N) one per pair.
        neg_logp: (B, N) log-probabilities of the negatives.
        neg_mask: (B, N), 1 for a real negative (rows have different counts).
        margin: the gap in nats below which a negative is penalized.

    Returns:
        A scalar; 0 when no negative is valid.

    Example:
        >>> margin_loss(torch.tensor([-1.0]), torch.tensor([[-1.5, -4.0]]), torch.ones(1, 2))
        tensor(0.2500)
    """
    if gold_logp.dim() == 1:
        gold_logp = gold_logp[:, None]
    return _masked_mean(F.relu(margin - (gold_logp - neg_logp)), neg_mask)  # (B, N) averaged


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for x < 0, stable at both ends (Mächler, 2012)."""
    x = x.clamp(max=-1e-6)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def unlikelihood_loss(neg_logp: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Unlikelihood: ``mean over valid (b, n) of -log(1 - p(negative))``.

    Args:
        neg_logp: (B, N) log-probabilities of the negatives (of their diverging token, or
            summed over the whole answer: ``exp`` of it must be a probability).
        neg_mask: (B, N), 1 for a real negative.

    Example:
        >>> unlikelihood_loss(torch.log(torch.tensor([[0.5]])), torch.ones(1, 1))
        tensor(0.6931)
    """
    return _masked_mean(-log1mexp(neg_logp), neg_mask)
