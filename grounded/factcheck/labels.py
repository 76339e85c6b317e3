"""Verdict labels and the checker's predictions: label names a checkpoint may use, the
mapping of its output columns onto :data:`grounded.types.LABELS`, softmax and calibration
biases, and the prediction types :class:`Predictions` and :class:`CheckerPrediction`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grounded.types import LABELS, Label

_LABEL_ALIASES: dict[str, Label] = {
    "supported": "supported",
    "supports": "supported",
    "support": "supported",
    "entailment": "supported",
    "refuted": "refuted",
    "refutes": "refuted",
    "refute": "refuted",
    "contradiction": "refuted",
    "not_enough_info": "not_enough_info",
    "not enough info": "not_enough_info",
    "not-enough-info": "not_enough_info",
    "nei": "not_enough_info",
    "neutral": "not_enough_info",
    "not_supported": "not_enough_info",
}


def canonical_label(name: str) -> Label | None:
    """The verdict a checkpoint's label name stands for, or None.

    Example:
        >>> canonical_label("NOT ENOUGH INFO"), canonical_label("LABEL_0")
        ('not_enough_info', None)
    """
    return _LABEL_ALIASES.get(str(name).strip().lower())


def label_columns(id2label: Mapping[int, str], origin: str = "the model") -> list[int]:
    """For each verdict of :data:`grounded.types.LABELS`, the model's output column.

    Raises:
        ValueError: the label map does not name each of the three verdicts exactly once.

    Example:
        >>> label_columns({0: "REFUTES", 1: "SUPPORTS", 2: "NOT ENOUGH INFO"})
        [1, 0, 2]
    """
    found: dict[str, int] = {}
    for i, name in id2label.items():
        label = canonical_label(name)
        if label is not None:
            if label in found:
                raise ValueError(f"{origin}: labels {dict(id2label)} name {label!r} twice")
            found[label] = int(i)
    missing = [lab for lab in LABELS if lab not in found]
    if missing:
        raise ValueError(
            f"{origin} has labels {dict(id2label)}, which do not name {missing}; a "
            f"fact-checker needs {list(LABELS)} (or SUPPORTS / REFUTES / NOT ENOUGH INFO): "
            "train one with `grounded factcheck train KB --out CHECKER`, or pass this folder as "
            "`base_model` to train a new head on it"
        )
    return [found[lab] for lab in LABELS]


def probabilities(logits: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """Softmax of ``logits`` (n, n_outputs) over ``columns``, in :data:`LABELS` order.

    Returns:
        float array (n, 3); each row sums to 1.

    Example:
        >>> probabilities(np.array([[0.0, 0.0, 0.0]]), [0, 1, 2]).round(3).tolist()
        [[0.333, 0.333, 0.333]]
    """
    x = np.asarray(logits, dtype=np.float64)[:, list(columns)]
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def apply_biases(probs: np.ndarray, biases: Sequence[float] | np.ndarray) -> np.ndarray:
    """``probs`` (n, 3) shifted by per-label log-space ``biases`` and renormalized.

    This is how a checker's calibration acts: ``p'_k ∝ p_k · exp(b_k)``. Zero biases return
    the probabilities unchanged.

    Example:
        >>> apply_biases(np.array([[0.5, 0.25, 0.25]]), [0.0, np.log(2), 0.0]).tolist()
        [[0.4, 0.4, 0.2]]
    """
    b = np.asarray(biases, dtype=np.float64)
    if not b.any():
        return np.asarray(probs, dtype=np.float64)
    x = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) + b
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


class Predictions(Sequence["CheckerPrediction"]):
    """The checker's verdicts on a list of pairs: an array of probabilities and the labels.

    The labels come from the one decision rule (:func:`grounded.factcheck.decision.decide`),
    never from the argmax alone: a flat or close distribution, or a refutation that does not
    stand clearly above the rest, is ``not_enough_info``. Indexing and iteration give
    :class:`CheckerPrediction` objects, so code written for a list of predictions keeps
    working.

    Attributes:
        probabilities: float array (n, 3), columns in :data:`LABELS` order, rows sum to 1
            (calibrated: the biases are already applied).
        labels: the decided verdict of each row.
        top_labels: the most probable verdict of each row.
        reasons: why each row got its label.
        rule: the :class:`~grounded.factcheck.decision.DecisionRule` that decided.
        chunks: evidence chunks each pair was read in (1 when it fit the window).

    Example:
        >>> Predictions(np.array([[0.36, 0.33, 0.31]])).labels
        ['not_enough_info']
    """

    def __init__(
        self,
        probabilities: np.ndarray,
        chunks: Sequence[int] | None = None,
        rule: Any = None,
    ) -> None:
        from grounded.factcheck.decision import DecisionRule, decide

        self.probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(LABELS))
        self.rule = rule if rule is not None else DecisionRule()
        decisions = decide(self.probabilities, self.rule)
        self.labels: list[Label] = [d.label for d in decisions]
        self.top_labels: list[Label] = [d.top for d in decisions]
        self.reasons: list[str] = [d.reason for d in decisions]
        self.chunks = list(chunks) if chunks is not None else [1] * len(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = self.probabilities[i]
        label = self.labels[i]
        return CheckerPrediction(
            label,
            float(row[LABELS.index(label)]),
            dict(zip(LABELS, map(float, row), strict=True)),
            self.top_labels[i],
            self.reasons[i],
        )

    def __repr__(self) -> str:
        return f"Predictions(n={len(self)}, labels={_label_counts(self.labels)})"


def _label_counts(labels: Sequence[str]) -> dict[str, int]:
    return {lab: sum(x == lab for x in labels) for lab in LABELS}


def as_pairs(
    pairs: Sequence[Any], evidence: Sequence[Any] | None = None
) -> tuple[list[str], list[str]]:
    """(claims, evidence texts) from pairs, or from the two-list form ``(claims, evidence)``.

    Evidence may be a string or a list of strings (joined with :func:`join_evidence`).

    Raises:
        ValueError: a pair is not (claim, evidence), or the two lists differ in length.
    """
    if evidence is not None:
        if len(pairs) != len(evidence):
            raise ValueError(
                f"`claims` ({len(pairs)}) and `evidence` ({len(evidence)}) must have one "
                "entry per pair"
            )
        items = list(zip(pairs, evidence, strict=True))
    else:
        items = list(pairs)
    claims, texts = [], []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(
                f"`pairs[{i}]` must be a (claim, evidence) pair, got {item!r:.80}; pass a list "
                'of tuples, e.g. [("Paris is in France.", "Paris is the capital of France.")]'
            )
        claim, ev = item
        if not isinstance(claim, str):
            raise ValueError(f"`pairs[{i}]`: the claim must be a string, got {claim!r:.80}")
        if isinstance(ev, str):
            texts.append(ev)
        elif isinstance(ev, Sequence) and all(isinstance(e, str) for e in ev):
            texts.append(join_evidence(ev))
        else:
            raise ValueError(
                f"`pairs[{i}]`: evidence must be a string or a list of strings, got {ev!r:.80}"
            )
        claims.append(claim)
    return claims, texts


@dataclass(frozen=True)
class CheckerPrediction:
    """The checker's verdict on one (claim, evidence) pair.

    Attributes:
        label: the verdict the decision rule gives (:mod:`grounded.factcheck.decision`).
        confidence: its probability.
        probabilities: verdict → probability (sums to 1).
        top: the most probable verdict (``label`` unless the rule abstained).
        reason: why the rule gave ``label``.
    """

    label: Label
    confidence: float
    probabilities: dict[str, float]
    top: Label | None = None
    reason: str = ""


def join_evidence(texts: Sequence[str]) -> str:
    """Evidence texts as the single second segment the cross-encoder reads (best first)."""
    return " ".join(t.strip() for t in texts if t and t.strip())
