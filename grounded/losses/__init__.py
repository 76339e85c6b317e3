"""Knowledge-constraint and feedback losses (cheap to import; torch loads on first use)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from grounded.losses.registry import CONSTRAINTS, get_constraint

if TYPE_CHECKING:
    from grounded.losses.constraint import (
        ConstraintLoss,
        MarginConstraint,
        UnlikelihoodConstraint,
    )
    from grounded.losses.functional import (
        SCOPES,
        first_divergence,
        log1mexp,
        margin_loss,
        pair_logprobs,
        sequence_logprobs,
        token_logprobs,
        unlikelihood_loss,
    )

_LAZY = {
    "ConstraintLoss": "grounded.losses.constraint",
    "MarginConstraint": "grounded.losses.constraint",
    "UnlikelihoodConstraint": "grounded.losses.constraint",
    "SCOPES": "grounded.losses.functional",
    "first_divergence": "grounded.losses.functional",
    "log1mexp": "grounded.losses.functional",
    "pair_logprobs": "grounded.losses.functional",
    "token_logprobs": "grounded.losses.functional",
    "margin_loss": "grounded.losses.functional",
    "sequence_logprobs": "grounded.losses.functional",
    "unlikelihood_loss": "grounded.losses.functional",
}

__all__ = [
    "CONSTRAINTS",
    "SCOPES",
    "ConstraintLoss",
    "MarginConstraint",
    "UnlikelihoodConstraint",
    "first_divergence",
    "get_constraint",
    "log1mexp",
    "margin_loss",
    "pair_logprobs",
    "sequence_logprobs",
    "token_logprobs",
    "unlikelihood_loss",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'grounded.losses' has no attribute {name!r}")
