"""Scoring the checker on held-out subjects: the neural checker alone, and combined verdicts.

Both read the test split of :func:`~grounded.factcheck.data.build_claim_data`:

- **neural**: the checker on each claim with the evidence stored in the split (the hybrid
  retriever's top-k over the held-out knowledge base);
- **combined**: :class:`~grounded.verify.verifier.Verifier` over the same held-out
  knowledge base: the graph decides what it can read, the checker retrieves and judges the
  rest;
- **graph**: the verifier without a checker (what the graph alone decides; the rest is not
  enough info), for reference.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from grounded.factcheck.metrics import classification_report
from grounded.types import LABELS
from grounded.verify.verdict import DECIDED_BY
from grounded.verify.verifier import Verifier, VerifierConfig

if TYPE_CHECKING:
    from datasets import Dataset

    from grounded.factcheck.checker import FactChecker
    from grounded.kb import KnowledgeBase

MAX_ERRORS = 20


def _by(values: list[str], gold: list[str], pred: list[str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for v, g, p in zip(values, gold, pred, strict=True):
        groups[v][0] += g == p
        groups[v][1] += 1
    return {
        k: {"correct": c, "n": n, "accuracy": c / n if n else 0.0}
        for k, (c, n) in sorted(groups.items())
    }


def evaluate_checker(
    checker: FactChecker, dataset: Dataset, *, batch_size: int = 64
) -> dict[str, Any]:
    """The neural checker alone on (claim, stored evidence) rows.

    Returns:
        :func:`~grounded.factcheck.metrics.classification_report` plus ``per_kind`` and
        ``per_relation`` accuracy, ``seconds``, ``pairs_per_second`` and up to 20 ``errors``.
    """
    t0 = time.perf_counter()
    preds = checker.predict(dataset["claim"], dataset["evidence"], batch_size=batch_size)
    seconds = time.perf_counter() - t0
    gold = [LABELS[i] for i in dataset["label"]]
    pred = [p.label for p in preds]
    report = classification_report(gold, pred)
    report["per_kind"] = _by(dataset["kind"], gold, pred)
    report["per_relation"] = _by(dataset["relation"], gold, pred)
    report["seconds"] = round(seconds, 3)
    report["pairs_per_second"] = round(len(gold) / seconds, 2) if seconds else None
    report["errors"] = [
        {"claim": c, "evidence": e, "gold": g, "predicted": p.label, "confidence": p.confidence}
        for c, e, g, p in zip(dataset["claim"], dataset["evidence"], gold, preds, strict=True)
        if g != p.label
    ][:MAX_ERRORS]
    return report


def evaluate_verifier(
    kb: KnowledgeBase,
    dataset: Dataset,
    checker: FactChecker | None = None,
    config: VerifierConfig | None = None,
) -> dict[str, Any]:
    """Combined verdicts (graph first, then ``checker``) on the rows' claims.

    Args:
        kb: the knowledge base the labels refer to (the held-out view of the split).
        dataset: rows with ``text``, ``question`` and ``label``.
        checker: None scores the graph alone.
        config: verifier settings.

    Returns:
        The classification report plus ``decided_by`` (count and accuracy per path),
        ``per_kind``, ``timings`` (seconds per stage), ``claims_per_second``, ``errors``.
    """
    verifier = Verifier(kb, checker, config)
    t0 = time.perf_counter()
    verdicts = verifier.verify(dataset["text"], [q or None for q in dataset["question"]])
    seconds = time.perf_counter() - t0
    gold = [LABELS[i] for i in dataset["label"]]
    pred = [v.label for v in verdicts]
    report = classification_report(gold, pred)
    paths = [v.decided_by for v in verdicts]
    report["decided_by"] = {k: v for k, v in _by(paths, gold, pred).items() if k in DECIDED_BY}
    report["per_kind"] = _by(dataset["kind"], gold, pred)
    report["timings"] = {k: round(v, 3) for k, v in verifier.timings.items()}
    report["seconds"] = round(seconds, 3)
    report["claims_per_second"] = round(len(gold) / seconds, 2) if seconds else None
    report["errors"] = [
        {
            "claim": v.claim,
            "question": v.question,
            "gold": g,
            "predicted": v.label,
            "decided_by": v.decided_by,
            "reason": v.reason,
        }
        for v, g in zip(verdicts, gold, strict=True)
        if g != v.label
    ][:MAX_ERRORS]
    return report


def score_checker(
    data: Any, checker: FactChecker, data_config: Any, *, show_progress: bool = True
) -> dict[str, Any]:
    """Score ``checker`` on ``data``'s test claims three ways: the checker alone
    (``neural``), graph first then the checker (``combined``) and the graph alone (``graph``).

    The verifier reads evidence as the test claims were built (``evidence_k``, alias notes).
    """
    from grounded.verify.verifier import VerifierConfig

    test = data.dataset["test"]
    if show_progress:
        print(f"scoring on {len(test)} test claims (held-out subjects) ...")
    vc = VerifierConfig(evidence_k=data_config.evidence_k, alias_notes=data_config.alias_notes)
    return {
        "neural": evaluate_checker(checker, test),
        "combined": evaluate_verifier(data.view, test, checker, vc),
        "graph": evaluate_verifier(data.view, test, None, vc),
    }
