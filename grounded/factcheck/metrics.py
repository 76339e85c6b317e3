"""Classification metrics for verdicts: pure functions over label sequences.

A confusion matrix has one row per gold label and one column per predicted label, in the
order of ``labels``. A class with no gold and no predicted example has precision, recall
and F1 of 0.0 by convention and still counts in the macro average (it is a class the
checker should handle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grounded.types import LABELS


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
    if len(gold) != len(pred):
        raise ValueError(f"`gold` ({len(gold)}) and `pred` ({len(pred)}) differ in length")
    pos = {lab: i for i, lab in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        for name, value in (("gold", g), ("pred", p)):
            if value not in pos:
                raise ValueError(f"`{name}` holds {value!r}, not one of {list(labels)}")
        m[pos[g]][pos[p]] += 1
    return m


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def per_class(matrix: Sequence[Sequence[int]], labels: Sequence[str] = LABELS) -> dict[str, dict]:
    """Precision, recall, F1 and support of each label from a confusion matrix.

    Example:
        >>> per_class([[1, 1], [0, 1]], labels=["a", "b"])["a"]
        {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    out = {}
    for i, lab in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        out[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def classification_report(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    Returns:
        ``{"n", "correct", "accuracy", "macro_f1", "per_class", "confusion", "labels"}``;
        ``accuracy`` is ``correct / n`` (0.0 for no examples).

    Example:
        >>> r = classification_report(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])
        >>> r["accuracy"], round(r["macro_f1"], 4)
        (0.6666666666666666, 0.6667)
    """
    m = confusion_matrix(gold, pred, labels)
    classes = per_class(m, labels)
    correct = sum(m[i][i] for i in range(len(labels)))
    return {
        "n": len(gold),
        "correct": correct,
        "accuracy": _ratio(correct, len(gold)),
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
