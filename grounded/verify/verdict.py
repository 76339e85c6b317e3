"""The verdict on one claim (:class:`Verdict`), what :class:`~grounded.verify.verifier.Verifier`
returns and the audit reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
        reason: one sentence a person reads; for a text of several clauses it names the
            clause that decided.
        clauses: the verdict on each judged clause, when the text has several.
        unread: clauses that no template, graph or checker could read (reported, not judged).
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
    clauses: tuple[Verdict, ...] = ()
    unread: tuple[str, ...] = ()

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
            **(
                {
                    "clauses": [
                        {k: c.to_dict()[k] for k in ("claim", "label", "decided_by", "reason")}
                        for c in self.clauses
                    ]
                }
                if self.clauses
                else {}
            ),
            **({"unread": list(self.unread)} if self.unread else {}),
        }


_SEVERITY: dict[str, int] = {"refuted": 0, "not_enough_info": 1, "supported": 2}


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worst_of(
    claim: str,
    question: str | None,
    judged: Sequence[Verdict],
    counted: Sequence[bool],
    unread: Sequence[str] = (),
) -> Verdict:
    """The verdict on a text from the verdicts on its clauses: the worst counted one.

    refuted > not enough info > supported: one false clause refutes the text, one the graph
    cannot decide leaves it not enough info, and only a text whose every judged clause is
    supported is supported. The reason names the clause that decided. A clause verdict that
    does not count (``counted`` False: nothing read it) is listed as unread, as are
    ``unread`` clauses; when nothing counts, the first verdict stands (not enough info).

    Args:
        claim: the whole text (what the verdict reports).
        question: the question it answers, if any.
        judged: one verdict per judged clause, in order (at least one).
        counted: per verdict, whether a template, the graph or the checker read its clause.
        unread: clauses not judged at all (filler, or text no template reads).

    Raises:
        ValueError: ``judged`` is empty or ``counted`` does not pair with it.

    Example:
        >>> a = Verdict("A", "supported", 1.0, "graph", reason="holds A")
        >>> b = Verdict("B", "refuted", 1.0, "graph", reason="B is wrong")
        >>> v = worst_of("A; B", None, [a, b], [True, True])
        >>> v.label, v.reason
        ('refuted', "clause 2 of 2 ('B') decides: B is wrong")
    """
    if not judged or len(judged) != len(counted):
        raise ValueError(
            f"`judged` ({len(judged)}) must be non-empty and pair with `counted` ({len(counted)})"
        )
    unread = [*unread, *(v.claim for v, c in zip(judged, counted, strict=True) if not c)]
    pool = [(i, v) for i, (v, c) in enumerate(zip(judged, counted, strict=True)) if c]
    k, base = min(pool, key=lambda iv: _SEVERITY[iv[1].label]) if pool else (0, judged[0])
    if len(judged) == 1 and not unread:
        return replace(base, claim=claim, question=question)
    if not pool or len(judged) == 1:
        reason = base.reason
    elif base.label == "supported" and len(pool) > 1:
        reason = f"all {len(pool)} judged clauses are supported; clause {k + 1}: {base.reason}"
    else:
        reason = f"clause {k + 1} of {len(judged)} ({_short(base.claim)!r}) decides: {base.reason}"
    if unread:
        reason += "; unread: " + ", ".join(repr(_short(u)) for u in unread)
    return replace(
        base,
        claim=claim,
        question=question,
        reason=reason,
        clauses=tuple(judged) if len(judged) > 1 else (),
        unread=tuple(unread),
    )
