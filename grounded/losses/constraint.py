"""Knowledge-constraint losses: push graph-contradicted answers below the gold one.

Each loss takes the sequence log-probabilities of the gold answers (B,) and of their
negatives (B, N) with a mask, and calls a pure function of :mod:`grounded.losses.functional`.

Why summed (not length-normalized) log-probabilities by default: greedy decoding picks the
sequence with the larger *sum*, and negatives share their last tokens with the gold answer
(the full stop and end-of-sequence), which dilutes a per-token mean toward zero gap.
``length_normalize=True`` switches the margin to per-token means.
"""

from __future__ import annotations

import torch

from grounded.losses.functional import margin_loss, unlikelihood_loss


class ConstraintLoss:
    """Interface: ``loss(gold_logp (B,), neg_logp (B, N), neg_mask (B, N)) -> scalar``.

    Args:
        margin: the gap in nats (margin losses).
        length_normalize: compare per-token mean log-probabilities instead of sums.
    """

    def __init__(self, *, margin: float = 1.0, length_normalize: bool = False) -> None:
        self.margin = margin
        self.length_normalize = length_normalize

    def uses_mean(self) -> bool:
        """Whether the sequence log-probabilities passed in are per-token means."""
        return self.length_normalize

    def __call__(
        self, gold_logp: torch.Tensor, neg_logp: torch.Tensor, neg_mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


class MarginConstraint(ConstraintLoss):
    """Hinge: ``max(0, margin - (log p(gold) - log p(negative)))`` per negative."""

    def __call__(
        self, gold_logp: torch.Tensor, neg_logp: torch.Tensor, neg_mask: torch.Tensor
    ) -> torch.Tensor:
        return margin_loss(gold_logp, neg_logp, neg_mask, self.margin)


class UnlikelihoodConstraint(ConstraintLoss):
    """Unlikelihood: ``-log(1 - p(negative))`` per negative; the gold answer is left to the
    LM loss. Always on summed log-probabilities (``exp`` of a mean is no probability)."""

    def uses_mean(self) -> bool:
        return False

    def __call__(
        self, gold_logp: torch.Tensor, neg_logp: torch.Tensor, neg_mask: torch.Tensor
    ) -> torch.Tensor:
        return unlikelihood_loss(neg_logp, neg_mask)
