"""Verification against a knowledge base: verdicts, the guard and the audit.

- :mod:`~grounded.verify.graph`: the graph's decision on a claim read with :mod:`kg.claims`;
- :mod:`~grounded.verify.verdict`: the verdict on one claim (label, path, evidence, reason);
- :mod:`~grounded.verify.verifier`: combined verdicts (graph first, then the neural checker
  of :mod:`grounded.factcheck`), also the :class:`grounded.types.AnswerJudge` the trainer's
  feedback and the evaluator use;
- :mod:`~grounded.verify.guard`: answers verified before they are shown (kept, revised from
  the KB, or turned into abstentions);
- :mod:`~grounded.verify.audit`: text, JSONL outputs or question/answer pairs → report.

Importing this package is cheap: names load from their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

if TYPE_CHECKING:
    from grounded.verify.audit import AuditConfig, Auditor, AuditReport, Claim, Document
    from grounded.verify.config import VerifierConfig
    from grounded.verify.graph import GraphDecision, decide
    from grounded.verify.guard import Guard, GuardConfig, GuardedAnswer
    from grounded.verify.verdict import Verdict
    from grounded.verify.verifier import Verifier

_WHERE = {
    "AuditConfig": "grounded.verify.audit",
    "AuditReport": "grounded.verify.audit",
    "Auditor": "grounded.verify.audit",
    "Claim": "grounded.verify.audit",
    "Document": "grounded.verify.audit",
    "GraphDecision": "grounded.verify.graph",
    "Guard": "grounded.verify.guard",
    "GuardConfig": "grounded.verify.guard",
    "GuardedAnswer": "grounded.verify.guard",
    "Verdict": "grounded.verify.verdict",
    "Verifier": "grounded.verify.verifier",
    "VerifierConfig": "grounded.verify.config",
    "decide": "grounded.verify.graph",
}

__all__ = [
    "AuditConfig",
    "AuditReport",
    "Auditor",
    "Claim",
    "Document",
    "GraphDecision",
    "Guard",
    "GuardConfig",
    "GuardedAnswer",
    "Verdict",
    "Verifier",
    "VerifierConfig",
    "decide",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
