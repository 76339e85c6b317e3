"""Rates with denominators and seeded 95% bootstrap intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from grounded.answers import Outcome


@dataclass(frozen=True)
class Rate:
    """``numerator / denominator`` with a 95% bootstrap interval (None when empty)."""

    numerator: int
    denominator: int
    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.value is None:
            return f"n/a (0/{self.denominator})"
        return (
            f"{100 * self.value:.1f}% [{100 * self.low:.1f}, {100 * self.high:.1f}] "
            f"({self.numerator}/{self.denominator})"
        )


def bootstrap_rate(
    hits: Sequence[bool], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> Rate:
    """The share of True in ``hits`` with a percentile bootstrap interval.

    Args:
        hits: one boolean per unit counted in the denominator.
        n_boot: bootstrap resamples.
        seed: seed of the resampling (results are deterministic).
        level: interval coverage.

    Example:
        >>> r = bootstrap_rate([True, False, False, False])
        >>> (r.numerator, r.denominator, r.value)
        (1, 4, 0.25)
    """
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"`n_boot` must be >= 1, got {n_boot}")
    arr = np.asarray(hits, dtype=bool)
    n = int(arr.size)
    if n == 0:
        return Rate(0, 0, None, None, None)
    k = int(arr.sum())
    rng = np.random.default_rng(seed)
    # (n_boot,) resampled means; binomial draws equal resampling n items with replacement.
    means = rng.binomial(n, k / n, size=n_boot) / n
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Rate(k, n, k / n, float(low), float(high))


def outcome_rates(outcomes: Sequence[Outcome], *, seed: int = 0, n_boot: int = 1000) -> dict:
    """The protocol's four rates for one set of answers.

    - accuracy: correct / all questions
    - hallucination_rate: hallucinations / all questions
    - hallucination_rate_answered: hallucinations / answered (not abstained) questions
    - abstention_rate: abstentions / all questions

    Example:
        >>> r = outcome_rates(["correct", "abstain", "hallucination", "correct"])
        >>> r["accuracy"].value, r["hallucination_rate_answered"].value
        (0.5, 0.3333333333333333)
    """
    outs = list(outcomes)
    answered = [o for o in outs if o != "abstain"]
    kw = {"seed": seed, "n_boot": n_boot}
    return {
        "accuracy": bootstrap_rate([o == "correct" for o in outs], **kw),
        "hallucination_rate": bootstrap_rate([o == "hallucination" for o in outs], **kw),
        "hallucination_rate_answered": bootstrap_rate(
            [o == "hallucination" for o in answered], **kw
        ),
        "abstention_rate": bootstrap_rate([o == "abstain" for o in outs], **kw),
    }


def intervals_overlap(a: Rate, b: Rate) -> bool:
    """Whether two rates' intervals overlap (True when either is empty)."""
    if a.low is None or b.low is None:
        return True
    return not (a.high < b.low or b.high < a.low)
