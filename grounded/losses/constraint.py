"""Knowledge-constraint losses: push graph-contradicted answers below the gold one.

Each loss takes, for every (gold, negative) pair, the log-probability of the gold answer and
of the negative (where they are compared: see ``scope`` in :mod:`grounded.losses.functional`)
and calls a pure function of that module.

With ``scope="sequence"``, summed log-probabilities are the default: greedy decoding prefers
the sequence with the larger sum, and a per-token mean dilutes the gap with the tokens
gold and negative share (the full stop, end-of-sequence). ``length_normalize=True``
switches the margin to per-token means.
"""

from __future__ import annotations

import torch

from grounded.losses.functional import SCOPES, Scope, margin_loss, unlikelihood_loss


class ConstraintLoss:
    """Interface: ``loss(gold_logp (B, N), neg_logp (B, N), neg_mask (B, N)) -> scalar``.

    Args:
        margin: the gap in nats (margin losses).
        scope: ``divergence`` (compare at the first differing token) or ``sequence``.
        length_normalize: with ``sequence``, compare per-token means instead of sums.

    Raises:
        ValueError: ``scope`` is unknown.
    """

    def __init__(
        self, *, margin: float = 1.0, scope: Scope = "divergence", length_normalize: bool = False
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f"`scope` must be one of {SCOPES}, got {scope!r}")
        self.margin = margin
        self.scope = scope
        self.length_normalize = length_normalize

    def uses_mean(self) -> bool:
        """Whether whole-sequence log-probabilities are per-token means."""
        return self.scope == "sequence" and self.length_normalize

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
    LM loss. Never on per-token means (``exp`` of a mean is no probability)."""

    def uses_mean(self) -> bool:
        return False

    def __call__(
        self, gold_logp: torch.Tensor, neg_logp: torch.Tensor, neg_mask: torch.Tensor
    ) -> torch.Tensor:
        return unlikelihood_loss(neg_logp, neg_mask)
