"""Fact-checking and auditing against a knowledge base.

- :mod:`~grounded.factcheck.claims`: claims read as (subject, relation, objects) with the
  schema's own templates; :mod:`~grounded.factcheck.graph_check`: the graph's decision;
- :mod:`~grounded.factcheck.data`: training claims with retrieved evidence from any KB,
  split by subject (:mod:`~grounded.factcheck.forms`: surface forms;
  :mod:`~grounded.factcheck.heldout`: the KB with facts held out);
- :mod:`~grounded.factcheck.checker`: the neural cross-encoder :class:`FactChecker`, which
  scores any (claim, evidence) pairs (:mod:`~grounded.factcheck.chunking`: long evidence);
- :mod:`~grounded.factcheck.transforms`: FactCC-style training pairs from real sentences;
  :mod:`~grounded.factcheck.pairs`: labelled pair files;
  :func:`train_factchecker`: data, training and calibration in one call;
- :mod:`~grounded.factcheck.verifier`: combined verdicts (graph first, then the checker),
  also the :class:`grounded.types.AnswerJudge` the trainer and evaluator use;
- :mod:`~grounded.factcheck.guard`: answers verified before they are shown (kept,
  revised from the KB, or turned into abstentions);
- :mod:`~grounded.factcheck.audit`: text, JSONL outputs or question/answer pairs → report;
- :mod:`~grounded.factcheck.metrics` and :mod:`~grounded.factcheck.evaluate`: scores.

Importing this package is cheap: names load from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grounded.factcheck.audit import AuditConfig, Auditor, AuditReport, Claim, Document
    from grounded.factcheck.checker import (
        CheckerPrediction,
        FactChecker,
        FactCheckerConfig,
        Predictions,
        alias_notes,
    )
    from grounded.factcheck.claims import ClaimReader, Reading
    from grounded.factcheck.data import (
        ClaimData,
        ClaimDataConfig,
        PairData,
        build_claim_data,
        build_pair_data,
    )
    from grounded.factcheck.evaluate import evaluate_checker, evaluate_verifier
    from grounded.factcheck.graph_check import GraphDecision, decide
    from grounded.factcheck.guard import Guard, GuardConfig, GuardedAnswer
    from grounded.factcheck.heldout import hide_facts
    from grounded.factcheck.metrics import classification_report, confusion_matrix
    from grounded.factcheck.pairs import PairRecord, read_pairs
    from grounded.factcheck.training import TrainLog, calibrate, train_checker, train_factchecker
    from grounded.factcheck.transforms import Corpus, transform_pairs
    from grounded.factcheck.verifier import Verdict, Verifier, VerifierConfig

_WHERE = {
    "AuditConfig": "grounded.factcheck.audit",
    "AuditReport": "grounded.factcheck.audit",
    "Auditor": "grounded.factcheck.audit",
    "CheckerPrediction": "grounded.factcheck.checker",
    "Corpus": "grounded.factcheck.transforms",
    "PairData": "grounded.factcheck.data",
    "PairRecord": "grounded.factcheck.pairs",
    "Predictions": "grounded.factcheck.checker",
    "build_pair_data": "grounded.factcheck.data",
    "calibrate": "grounded.factcheck.training",
    "read_pairs": "grounded.factcheck.pairs",
    "train_factchecker": "grounded.factcheck.training",
    "transform_pairs": "grounded.factcheck.transforms",
    "Claim": "grounded.factcheck.audit",
    "ClaimData": "grounded.factcheck.data",
    "ClaimDataConfig": "grounded.factcheck.data",
    "ClaimReader": "grounded.factcheck.claims",
    "Document": "grounded.factcheck.audit",
    "FactChecker": "grounded.factcheck.checker",
    "FactCheckerConfig": "grounded.factcheck.checker",
    "GraphDecision": "grounded.factcheck.graph_check",
    "Guard": "grounded.factcheck.guard",
    "GuardConfig": "grounded.factcheck.guard",
    "GuardedAnswer": "grounded.factcheck.guard",
    "Reading": "grounded.factcheck.claims",
    "TrainLog": "grounded.factcheck.training",
    "Verdict": "grounded.factcheck.verifier",
    "Verifier": "grounded.factcheck.verifier",
    "VerifierConfig": "grounded.factcheck.verifier",
    "alias_notes": "grounded.factcheck.checker",
    "build_claim_data": "grounded.factcheck.data",
    "classification_report": "grounded.factcheck.metrics",
    "confusion_matrix": "grounded.factcheck.metrics",
    "decide": "grounded.factcheck.graph_check",
    "evaluate_checker": "grounded.factcheck.evaluate",
    "evaluate_verifier": "grounded.factcheck.evaluate",
    "hide_facts": "grounded.factcheck.heldout",
    "train_checker": "grounded.factcheck.training",
}

__all__ = [
    "AuditConfig",
    "AuditReport",
    "Auditor",
    "CheckerPrediction",
    "Claim",
    "ClaimData",
    "ClaimDataConfig",
    "ClaimReader",
    "Corpus",
    "Document",
    "FactChecker",
    "FactCheckerConfig",
    "GraphDecision",
    "Guard",
    "GuardConfig",
    "GuardedAnswer",
    "PairData",
    "PairRecord",
    "Predictions",
    "Reading",
    "TrainLog",
    "Verdict",
    "Verifier",
    "VerifierConfig",
    "alias_notes",
    "build_claim_data",
    "build_pair_data",
    "calibrate",
    "classification_report",
    "confusion_matrix",
    "decide",
    "evaluate_checker",
    "evaluate_verifier",
    "hide_facts",
    "read_pairs",
    "train_checker",
    "train_factchecker",
    "transform_pairs",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'grounded.factcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
