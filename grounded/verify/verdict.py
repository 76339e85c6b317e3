"""The verdict on one claim (:class:`Verdict`), what :class:`~grounded.verify.verifier.Verifier`
returns and the audit reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grounded.retrieval import Evidence
from grounded.types import Label

DecidedBy = Literal["graph", "checker", "none"]
DECIDED_BY: tuple[DecidedBy, ...] = ("graph", "checker", "none")


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim.

    Attributes:
        claim: the claim as given (an answer, when ``question`` is set).
        label: ``supported``, ``refuted`` or ``not_enough_info``.
        confidence: probability of ``label``: the checker's softmax; 1.0 for a template
            reading the graph decided; the relation-detection probability for a graph
            decision on linked entities; 1.0 for ``none`` (nothing in the KB bears on it).
        decided_by: ``graph``, ``checker`` or ``none``.
        evidence: the graph facts or retrieved evidence the decision read.
        question: the question the claim answers, when given.
        subject, relation, objects: how the claim was read, when it was.
        probabilities: the checker's distribution over the labels, when it decided.
        reason: one sentence a person reads.
    """

    claim: str
    label: Label
    confidence: float
    decided_by: DecidedBy
    evidence: tuple[Evidence, ...] = ()
    question: str | None = None
    subject: str | None = None
    relation: str | None = None
    objects: tuple[str, ...] = ()
    probabilities: dict[str, float] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "question": self.question,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "decided_by": self.decided_by,
            "subject": self.subject,
            "relation": self.relation,
            "objects": list(self.objects),
            "probabilities": (
                {k: round(v, 6) for k, v in self.probabilities.items()}
                if self.probabilities
                else None
            ),
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
        }
