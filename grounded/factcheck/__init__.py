"""The neural fact-checker: a cross-encoder scoring (claim, evidence) pairs.

- :mod:`~grounded.factcheck.checker`: the model, :class:`FactChecker` (load, save, score);
- :mod:`~grounded.factcheck.data`: training claims with retrieved evidence from any KB,
  split by subject (:mod:`~grounded.factcheck.forms`: surface forms;
  :mod:`~grounded.factcheck.heldout`: the KB with facts held out);
- :mod:`~grounded.factcheck.training`: :func:`train_checker`;
- :mod:`~grounded.factcheck.metrics` and :mod:`~grounded.factcheck.evaluate`: scores.

Reading claims lives in :mod:`kg.claims`; verdicts that combine the graph and this checker,
the guard and the audit live in :mod:`grounded.verify`. Importing this package is cheap:
names load from their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

if TYPE_CHECKING:
    from grounded.factcheck.checker import (
        CheckerOptimConfig,
        CheckerPrediction,
        FactChecker,
        FactCheckerConfig,
        alias_notes,
    )
    from grounded.factcheck.data import ClaimData, ClaimDataConfig, build_claim_data
    from grounded.factcheck.evaluate import evaluate_checker, evaluate_verifier
    from grounded.factcheck.heldout import hide_facts
    from grounded.factcheck.metrics import classification_report, confusion_matrix
    from grounded.factcheck.training import TrainLog, train_checker

_WHERE = {
    "CheckerOptimConfig": "grounded.factcheck.checker",
    "CheckerPrediction": "grounded.factcheck.checker",
    "ClaimData": "grounded.factcheck.data",
    "ClaimDataConfig": "grounded.factcheck.data",
    "FactChecker": "grounded.factcheck.checker",
    "FactCheckerConfig": "grounded.factcheck.checker",
    "TrainLog": "grounded.factcheck.training",
    "alias_notes": "grounded.factcheck.checker",
    "build_claim_data": "grounded.factcheck.data",
    "classification_report": "grounded.factcheck.metrics",
    "confusion_matrix": "grounded.factcheck.metrics",
    "evaluate_checker": "grounded.factcheck.evaluate",
    "evaluate_verifier": "grounded.factcheck.evaluate",
    "hide_facts": "grounded.factcheck.heldout",
    "train_checker": "grounded.factcheck.training",
}

__all__ = [
    "CheckerOptimConfig",
    "CheckerPrediction",
    "ClaimData",
    "ClaimDataConfig",
    "FactChecker",
    "FactCheckerConfig",
    "TrainLog",
    "alias_notes",
    "build_claim_data",
    "classification_report",
    "confusion_matrix",
    "evaluate_checker",
    "evaluate_verifier",
    "hide_facts",
    "train_checker",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
