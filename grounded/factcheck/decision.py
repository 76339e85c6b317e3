"""The one decision rule that turns the checker's probabilities into a verdict.

Pair scoring (``grounded factcheck score``), :meth:`FactChecker.predict
<grounded.factcheck.checker.FactChecker.predict>`, the verifier, the audit and the guard all
call :func:`decide`; none of them takes the argmax on its own. The rule abstains (``not
enough info``) unless the evidence decides the claim:

1. the calibration biases shift the probabilities (``p'_k ∝ p_k · exp(b_k)``);
2. the most probable label is the candidate; ``not_enough_info`` is kept as is;
3. a ``supported`` or ``refuted`` candidate below ``min_confidence`` → not enough info;
4. one whose lead over the runner-up is below ``min_margin`` → not enough info (the top two
   are close: prefer abstaining over guessing);
5. a ``refuted`` candidate whose lead is below ``refute_margin`` → not enough info: refuted
   means the evidence states something incompatible, and must stand clearly above both
   other labels (an on-topic sentence that says nothing about the claim is not a refutation).

The thresholds live in :class:`DecisionRule`, stored in a checker's ``factcheck.json``
(``calibration.rule``) beside the biases and what they were tuned on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from grounded.types import LABELS, Label

__all__ = ["Decision", "DecisionRule", "decide", "decide_ids", "decision_rule"]

_SUP, _REF, _NEI = (LABELS.index(x) for x in ("supported", "refuted", "not_enough_info"))


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of :func:`decide` (probabilities after the calibration biases).

    Example:
        >>> DecisionRule(min_margin=0.2).to_dict()["min_margin"]
        0.2
        >>> DecisionRule.from_dict({"min_confidence": 0.6}).min_confidence
        0.6
    """

    min_confidence: float = field(
        default=0.5,
        metadata={
            "help": "The probability a supported or refuted verdict needs; below it (less "
            "than even odds) the verdict is not enough info. 0: no floor."
        },
    )
    min_margin: float = field(
        default=0.1,
        metadata={
            "help": "How far a supported or refuted verdict must lead the runner-up label; "
            "closer top two give not enough info."
        },
    )
    refute_margin: float = field(
        default=0.2,
        metadata={
            "help": "How far a refuted verdict must lead both other labels (refuted means "
            "contradicted: it must stand clearly above not enough info). At least "
            "`min_margin` in effect."
        },
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(
                    f"`{f.name}` must be a number in [0, 1], got {value!r}: it is compared "
                    "with probabilities"
                )

    def to_dict(self) -> dict[str, float]:
        """The thresholds, JSON-ready (what ``factcheck.json`` records)."""
        return {k: round(float(v), 6) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DecisionRule:
        """A rule from :meth:`to_dict` output; missing keys take the defaults.

        Raises:
            ValueError: an unknown key (the valid names are listed) or a bad value.
        """
        data = dict(data or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"decision rule: unknown key(s) {unknown}; valid: {names}")
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class Decision:
    """The verdict :func:`decide` gives one row.

    Attributes:
        label: the decided verdict.
        top: the most probable label (after the biases).
        confidence: the probability of ``label``.
        reason: why, in words (printed by pair scoring, recorded by the verifier).
    """

    label: Label
    top: Label
    confidence: float
    reason: str


def _prepare(probabilities: np.ndarray, biases: Sequence[float] | np.ndarray | None) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(LABELS))
    if biases is not None and np.asarray(biases, dtype=np.float64).any():
        from grounded.factcheck.labels import apply_biases

        p = apply_biases(p, biases)
    return p


def decide_ids(
    probabilities: np.ndarray,
    rule: DecisionRule | None = None,
    biases: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """The rule's label ids (indices into :data:`LABELS`), vectorized; see :func:`decide`.

    Example:
        >>> decide_ids(np.array([[0.36, 0.33, 0.31], [0.8, 0.1, 0.1]])).tolist()
        [2, 0]
    """
    rule = rule or DecisionRule()
    p = _prepare(probabilities, biases)
    if not len(p):
        return np.zeros(0, dtype=np.int64)
    top = p.argmax(axis=1)
    ordered = np.sort(p, axis=1)
    lead = ordered[:, -1] - ordered[:, -2]
    out = top.copy()
    weak = (ordered[:, -1] < rule.min_confidence) | (lead < rule.min_margin)
    weak |= (top == _REF) & (lead < max(rule.refute_margin, rule.min_margin))
    out[(top != _NEI) & weak] = _NEI
    return out


def decide(
    probabilities: np.ndarray,
    rule: DecisionRule | None = None,
    biases: Sequence[float] | np.ndarray | None = None,
) -> list[Decision]:
    """Verdicts for rows of probabilities, by the one rule (see the module notes).

    Args:
        probabilities: (n, 3) or (3,) in :data:`LABELS` order.
        rule: thresholds (default: :class:`DecisionRule`'s defaults).
        biases: per-label log-space calibration biases to apply first (None: the
            probabilities are already calibrated).

    Returns:
        One :class:`Decision` per row.

    Example:
        >>> d = decide(np.array([0.36, 0.33, 0.31]))[0]
        >>> d.label, d.top
        ('not_enough_info', 'supported')
        >>> d.reason
        'supported is the most probable (0.36) but below min_confidence 0.5 → not enough info'
        >>> decide(np.array([0.05, 0.55, 0.40]))[0].label  # refuted leads by 0.15 < 0.2
        'not_enough_info'
    """
    rule = rule or DecisionRule()
    p = _prepare(probabilities, biases)
    ids = decide_ids(p, rule)
    out = []
    for row, k in zip(p, ids, strict=True):
        t = int(row.argmax())
        second = float(np.sort(row)[-2])
        top, label = LABELS[t], LABELS[int(k)]
        lead = float(row[t]) - second
        if t == _NEI:
            reason = f"not_enough_info is the most probable ({row[t]:.2f})"
        elif label == top:
            reason = f"{top} is the most probable ({row[t]:.2f}), {lead:.2f} above the runner-up"
        elif row[t] < rule.min_confidence:
            reason = (
                f"{top} is the most probable ({row[t]:.2f}) but below min_confidence "
                f"{rule.min_confidence:g} → not enough info"
            )
        elif lead < rule.min_margin:
            reason = (
                f"{top} ({row[t]:.2f}) leads the runner-up by {lead:.2f}, below min_margin "
                f"{rule.min_margin:g} → not enough info"
            )
        else:
            reason = (
                f"refuted ({row[t]:.2f}) leads the runner-up by {lead:.2f}, below "
                f"refute_margin {max(rule.refute_margin, rule.min_margin):g}: not clearly "
                "contradicted → not enough info"
            )
        out.append(Decision(label, top, float(row[int(k)]), reason))
    return out


def decision_rule(checker: Any = None, min_confidence: float | None = None) -> DecisionRule:
    """The rule a consumer of ``checker`` applies: the checker's own (its ``rule``, stored in
    ``factcheck.json``; the defaults without a checker), with ``min_confidence`` overridden
    when given (the verifier's setting).

    Example:
        >>> decision_rule(None, 0.7).min_confidence
        0.7
    """
    from dataclasses import replace

    rule = getattr(checker, "rule", None) or DecisionRule()
    return rule if min_confidence is None else replace(rule, min_confidence=min_confidence)
