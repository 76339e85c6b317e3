"""Classification metrics for verdicts: thin wrappers over :mod:`sklearn.metrics`.

A confusion matrix has one row per gold label and one column per predicted label, in the
order of ``labels``. A class with no gold and no predicted example has precision, recall
and F1 of 0.0 by convention (``zero_division=0.0``) and still counts in the macro average
(it is a class the checker should handle): every label in ``labels`` is passed to sklearn,
so the average runs over all of them, not only the ones seen.

The wrappers add what sklearn leaves out: a check that every label is known (sklearn drops
unknown labels silently when ``labels`` is given), an empty input that scores 0.0 instead
of raising, and plain Python numbers that serialise to JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn import metrics as skm

from grounded.types import LABELS


def _check(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"`gold` ({len(gold)}) and `pred` ({len(pred)}) differ in length")
    known = set(labels)
    for name, values in (("gold", gold), ("pred", pred)):
        for value in values:
            if value not in known:
                raise ValueError(f"`{name}` holds {value!r}, not one of {list(labels)}")


def confusion_matrix(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> list[list[int]]:
    """Counts ``m[i][j]`` of examples with gold ``labels[i]`` predicted as ``labels[j]``.

    Raises:
        ValueError: lengths differ, or a label is not in ``labels``.

    Example:
        >>> confusion_matrix(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])
        [[1, 1], [0, 1]]
    """
    _check(gold, pred, labels)
    if not gold:
        return [[0] * len(labels) for _ in labels]
    return skm.confusion_matrix(list(gold), list(pred), labels=list(labels)).tolist()


def per_class(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, dict]:
    """Precision, recall, F1 and support of each label (``precision_recall_fscore_support``).

    Raises:
        ValueError: lengths differ, or a label is not in ``labels``.

    Example:
        >>> per_class(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])["a"]
        {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    _check(gold, pred, labels)
    if not gold:
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return {lab: dict(zero) for lab in labels}
    p, r, f, s = skm.precision_recall_fscore_support(
        list(gold), list(pred), labels=list(labels), zero_division=0.0
    )
    return {
        lab: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, lab in enumerate(labels)
    }


def classification_report(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    Returns:
        ``{"n", "correct", "accuracy", "macro_f1", "per_class", "confusion", "labels"}``;
        ``accuracy`` is ``correct / n`` and ``macro_f1`` the unweighted mean of the
        per-class F1 over every label in ``labels`` (both 0.0 for no examples).

    Raises:
        ValueError: lengths differ, or a label is not in ``labels``.

    Example:
        >>> r = classification_report(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])
        >>> r["accuracy"], round(r["macro_f1"], 4)
        (0.6666666666666666, 0.6667)
    """
    classes = per_class(gold, pred, labels)
    m = confusion_matrix(gold, pred, labels)
    correct = sum(m[i][i] for i in range(len(labels)))
    return {
        "n": len(gold),
        "correct": correct,
        "accuracy": float(skm.accuracy_score(list(gold), list(pred))) if gold else 0.0,
        "macro_f1": sum(c["f1"] for c in classes.values()) / len(labels) if labels else 0.0,
        "per_class": classes,
        "confusion": m,
        "labels": list(labels),
    }


def format_report(report: dict[str, Any], title: str = "") -> str:
    """A classification report as Markdown: summary line, per-class table, confusion matrix."""
    labels = report["labels"]
    lines = [f"### {title}", ""] if title else []
    lines.append(
        f"accuracy {report['accuracy']:.4f} ({report['correct']} / {report['n']} claims), "
        f"macro-F1 {report['macro_f1']:.4f}"
    )
    lines += ["", "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for lab in labels:
        c = report["per_class"][lab]
        lines.append(
            f"| {lab} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |"
        )
    lines += ["", "| gold \\ predicted | " + " | ".join(labels) + " |"]
    lines.append("|---|" + "---:|" * len(labels))
    for lab, row in zip(labels, report["confusion"], strict=True):
        lines.append(f"| {lab} | " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines) + "\n"
