"""Verification: a candidate is kept only if its source sentence supports it (the checker).

The checker (:class:`grounded.factcheck.FactChecker`) reads the pair (the relation's template
filled with the spans as written, the source sentence); its probability of ``supported``
becomes the candidate's confidence, and the extractor's own is kept in
``extractor_confidence``. Without a checker the extractor's confidence stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from kg.extract import Candidate
from kg.schema import Schema

if TYPE_CHECKING:
    from grounded.factcheck import FactChecker


def verify_candidates(
    candidates: Sequence[Candidate],
    schema: Schema,
    checker: FactChecker | None,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> list[Candidate]:
    """Rescore ``candidates`` with ``checker``: confidence = P(supported | statement, sentence).

    Args:
        candidates: from any extractor.
        schema: the relations (their templates make the statements).
        checker: a fact-checker, or None to keep the extractors' confidences.
        batch_size: pairs per forward pass.

    Returns:
        The candidates in the same order, with ``confidence`` from the checker and
        ``extractor_confidence`` the extractor's.
    """
    if checker is None or not candidates:
        return list(candidates)
    from grounded.types import LABELS

    claims = [c.statement(schema) for c in candidates]
    evidence = [c.sentence.text for c in candidates]
    probs = checker.predict_proba(
        claims, evidence, batch_size=batch_size, show_progress=show_progress
    )  # (n, 3)
    col = LABELS.index("supported")
    return [
        replace(c, confidence=round(float(p[col]), 6), extractor_confidence=c.confidence)
        for c, p in zip(candidates, probs, strict=True)
    ]
