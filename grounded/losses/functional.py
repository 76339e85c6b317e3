"""The maths of the knowledge-constraint and feedback terms, as pure tensor functions.

Shapes: R sequences, T answer tokens, V vocabulary, B examples, N negatives per example.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sequence_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each target sequence under teacher forcing.

    Args:
        logits: (R, T, V) logits; ``logits[r, t]`` predicts ``targets[r, t]``.
        targets: (R, T) token ids.
        mask: (R, T), 1 for real target tokens.

    Returns:
        ``(logp, count)``: (R,) summed log-probabilities over the masked tokens, and (R,)
        the number of tokens summed.

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
        >>> logp, n = sequence_logprobs(logits, torch.tensor([[0, 1]]), torch.tensor([[1, 1]]))
        >>> round(logp.item(), 4) == round(math.log(0.5 * 0.1), 4), n.item()
        (True, 2.0)
    """
    r, t, v = logits.shape
    ignore = torch.where(mask.bool(), targets, torch.full_like(targets, -100))
    token_logp = -F.cross_entropy(
        logits.float().reshape(r * t, v), ignore.reshape(-1), reduction="none"
    ).view(r, t)  # (R, T), 0 where masked
    return token_logp.sum(1), mask.to(token_logp.dtype).sum(1)


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
        gold_logp: (B,) sequence log-probability of each gold answer.
        neg_logp: (B, N) sequence log-probabilities of the negatives.
        neg_mask: (B, N), 1 for a real negative (rows have different counts).
        margin: the gap in nats below which a negative is penalized.

    Returns:
        A scalar; 0 when no negative is valid.

    Example:
        >>> margin_loss(torch.tensor([-1.0]), torch.tensor([[-1.5, -4.0]]), torch.ones(1, 2))
        tensor(0.2500)
    """
    gaps = gold_logp[:, None] - neg_logp  # (B, N)
    return _masked_mean(F.relu(margin - gaps), neg_mask)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for x < 0, stable at both ends (Mächler, 2012)."""
    x = x.clamp(max=-1e-6)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def unlikelihood_loss(neg_logp: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Sequence-level unlikelihood: ``mean over valid (b, n) of -log(1 - p(negative))``.

    Args:
        neg_logp: (B, N) summed log-probabilities of the negatives (not length-normalized:
            ``exp`` of it is the probability of generating the negative).
        neg_mask: (B, N), 1 for a real negative.

    Example:
        >>> unlikelihood_loss(torch.log(torch.tensor([[0.5]])), torch.ones(1, 1))
        tensor(0.6931)
    """
    return _masked_mean(-log1mexp(neg_logp), neg_mask)
