"""Acceptance targets as data: a YAML or JSON list checked against a report's rates.

The report names what was measured; which thresholds a run must reach belongs to whoever
runs it (``bench/targets.yaml`` holds the project's own), not to the evaluator. A target
reads one rate, ``measure`` of ``variant`` over ``group`` (``all``, ``kb_covered`` or an
entity group), and asks exactly one of:

- ``at_least`` / ``at_most``: the rate against a number in [0, 1];
- ``reduction_vs: OTHER`` with ``at_least``: ``1 - rate / rate_of_OTHER`` (a relative cut);
- ``below: OTHER``: lower than OTHER's rate with non-overlapping 95% intervals;
- ``within_points_of: OTHER`` with ``points``: at most ``points`` percentage points below
  OTHER's rate.

Example (YAML)::

    - variant: grounded
      group: unknown
      measure: hallucination_rate
      at_most: 0.03
    - variant: grounded
      group: all
      measure: hallucination_rate
      below: raft
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.evaluation.metrics import Rate, intervals_overlap

MEASURES = ("accuracy", "hallucination_rate", "hallucination_rate_answered", "abstention_rate")
_KINDS = ("at_least", "at_most", "reduction_vs", "below", "within_points_of")
_KEYS = frozenset({"name", "variant", "group", "measure", "points", *_KINDS})


@dataclass(frozen=True)
class Target:
    """One acceptance target (see the module)."""

    variant: str
    group: str
    measure: str
    at_least: float | None = None
    at_most: float | None = None
    reduction_vs: str | None = None
    below: str | None = None
    within_points_of: str | None = None
    points: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"`measure` must be one of {list(MEASURES)}, got {self.measure!r}")
        comparisons = [k for k in ("reduction_vs", "below", "within_points_of") if getattr(self, k)]
        bounds = [k for k in ("at_least", "at_most") if getattr(self, k) is not None]
        if len(comparisons) > 1 or (not comparisons and len(bounds) != 1):
            raise ValueError(
                "a target asks one thing: `at_least` or `at_most` alone, or one of "
                f"`reduction_vs` (with `at_least`), `below`, `within_points_of` (with `points`); "
                f"got {comparisons + bounds}"
            )
        if self.reduction_vs and self.at_least is None:
            raise ValueError("`reduction_vs` needs `at_least` (the relative cut, e.g. 0.9)")
        if self.within_points_of and self.points is None:
            raise ValueError("`within_points_of` needs `points` (percentage points, e.g. 2)")
        for k in ("at_least", "at_most"):
            value = getattr(self, k)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"`{k}` is a rate in [0, 1], got {value!r}")

    @property
    def title(self) -> str:
        """The target in words: its ``name``, or one made from its fields."""
        if self.name:
            return self.name
        what = f"{self.variant}: {self.measure.replace('_', ' ')} ({self.group})"
        if self.reduction_vs:
            return f"{what} at least {100 * self.at_least:.0f}% below {self.reduction_vs}"
        if self.below:
            return f"{what} below {self.below}, intervals apart"
        if self.within_points_of:
            return f"{what} within {self.points:g} points of {self.within_points_of}"
        if self.at_least is not None:
            return f"{what} >= {100 * self.at_least:g}%"
        return f"{what} <= {100 * self.at_most:g}%"


def load_targets(path: str | Path) -> list[Target]:
    """Read targets from a YAML or JSON list.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a list of mappings, an unknown key, or an invalid target (the message
            names the file and the entry).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"targets file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {e}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of targets, got {type(data).__name__}")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: target {i} must be a mapping, got {entry!r}")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ValueError(
                f"{path}: target {i} has unknown key(s) {unknown}; valid: {sorted(_KEYS)}"
            )
        try:
            out.append(Target(**entry))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: target {i}: {e}") from None
    return out


def rate_of(summary: dict, variant: str, group: str, measure: str) -> Rate | None:
    """``measure`` of ``variant`` over ``group`` in a report summary, or None if absent."""
    v = summary.get(variant)
    if v is None:
        return None
    block = v.get(group) if group in ("all", "kb_covered") else v.get("groups", {}).get(group)
    if not block or measure not in block:
        return None
    return Rate(**block[measure])


def check_targets(summary: dict, targets: list[Target]) -> list[dict[str, Any]]:
    """Each target with the figures and whether it is reached (None: a rate is missing).

    Example:
        >>> s = {"g": {"all": {"accuracy": {"value": 0.5, "low": 0.4, "high": 0.6,
        ...     "numerator": 5, "denominator": 10}}, "groups": {}}}
        >>> check_targets(s, [Target("g", "all", "accuracy", at_least=0.9)])[0]["reached"]
        False
    """
    return [_check(summary, t) for t in targets]


def _check(summary: dict, t: Target) -> dict[str, Any]:
    def result(reached: bool | None, detail: str) -> dict[str, Any]:
        return {"target": t.title, "variant": t.variant, "reached": reached, "detail": detail}

    own = rate_of(summary, t.variant, t.group, t.measure)
    if own is None or own.value is None:
        return result(None, f"no {t.measure} of {t.variant} over {t.group} in this run")
    other_name = t.reduction_vs or t.below or t.within_points_of
    if other_name is None:
        if t.at_least is not None:
            return result(own.value >= t.at_least, f"{t.variant} {own}")
        return result(own.value <= t.at_most, f"{t.variant} {own}")
    other = rate_of(summary, other_name, t.group, t.measure)
    if other is None or other.value is None:
        return result(None, f"no {t.measure} of {other_name} over {t.group} in this run")
    if t.reduction_vs:
        if not other.value:
            return result(None, f"{other_name}'s rate is 0: no reduction to measure")
        cut = 1 - own.value / other.value
        return result(
            cut >= t.at_least,
            f"{100 * cut:.1f}% lower ({t.variant} {own.value:.3f} vs {other_name} "
            f"{other.value:.3f})",
        )
    if t.below:
        separate = not intervals_overlap(own, other)
        word = "non-overlapping" if separate else "overlapping"
        return result(
            own.value < other.value and separate,
            f"{t.variant} {own} vs {other_name} {other}: {word} intervals",
        )
    gap = 100 * (other.value - own.value)
    side = f"{gap:.1f} points below" if gap >= 0 else f"{-gap:.1f} points above"
    return result(gap <= t.points, f"{t.variant} {own} vs {other_name} {other}: {side}")
