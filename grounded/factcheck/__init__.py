"""The neural fact-checker: a cross-encoder scoring any (claim, evidence) pairs.

- :mod:`~grounded.factcheck.checker`: the model, :class:`FactChecker` (load, save, score
  pairs with no knowledge base; :mod:`~grounded.factcheck.chunking`: long evidence);
- :mod:`~grounded.factcheck.data`: training claims with retrieved evidence from any KB,
  split by subject (:mod:`~grounded.factcheck.forms`: surface forms;
  :mod:`~grounded.factcheck.heldout`: the KB with facts held out), and the pair data that
  mixes them with FactCC-style transformations (:mod:`~grounded.factcheck.transforms`) and
  labelled pair files (:mod:`~grounded.factcheck.pairs`);
- :mod:`~grounded.factcheck.training`: :func:`train_checker`, calibration, and
  :func:`train_factchecker` (the whole job, writing the folder's contract);
- :mod:`~grounded.factcheck.metrics` and :mod:`~grounded.factcheck.evaluate`: scores.

Reading claims lives in :mod:`kg.claims`; verdicts that combine the graph and this checker,
the guard and the audit live in :mod:`grounded.verify`. Importing this package is cheap:
names load from their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

if TYPE_CHECKING:
    from grounded.factcheck.checker import FactChecker, alias_notes
    from grounded.factcheck.config import CheckerOptimConfig, FactCheckerConfig
    from grounded.factcheck.data import ClaimData, ClaimDataConfig, build_claim_data
    from grounded.factcheck.decision import Decision, DecisionRule, decision_rule
    from grounded.factcheck.evaluate import evaluate_checker, evaluate_verifier
    from grounded.factcheck.heldout import hide_facts
    from grounded.factcheck.labels import CheckerPrediction, Predictions
    from grounded.factcheck.metrics import classification_report, confusion_matrix
    from grounded.factcheck.mixture import PairData, build_pair_data
    from grounded.factcheck.pairs import PairRecord, read_pairs
    from grounded.factcheck.training import (
        FactCheckerRun,
        TrainLog,
        calibrate,
        train_checker,
        train_factchecker,
    )
    from grounded.factcheck.transforms import Corpus, transform_pairs

_WHERE = {
    "CheckerOptimConfig": "grounded.factcheck.config",
    "CheckerPrediction": "grounded.factcheck.labels",
    "ClaimData": "grounded.factcheck.data",
    "ClaimDataConfig": "grounded.factcheck.data",
    "Corpus": "grounded.factcheck.transforms",
    "Decision": "grounded.factcheck.decision",
    "DecisionRule": "grounded.factcheck.decision",
    "FactChecker": "grounded.factcheck.checker",
    "FactCheckerConfig": "grounded.factcheck.config",
    "FactCheckerRun": "grounded.factcheck.training",
    "PairData": "grounded.factcheck.mixture",
    "PairRecord": "grounded.factcheck.pairs",
    "Predictions": "grounded.factcheck.labels",
    "TrainLog": "grounded.factcheck.training",
    "alias_notes": "grounded.factcheck.checker",
    "build_claim_data": "grounded.factcheck.data",
    "build_pair_data": "grounded.factcheck.mixture",
    "calibrate": "grounded.factcheck.training",
    "classification_report": "grounded.factcheck.metrics",
    "confusion_matrix": "grounded.factcheck.metrics",
    "decision_rule": "grounded.factcheck.decision",
    "evaluate_checker": "grounded.factcheck.evaluate",
    "evaluate_verifier": "grounded.factcheck.evaluate",
    "hide_facts": "grounded.factcheck.heldout",
    "read_pairs": "grounded.factcheck.pairs",
    "train_checker": "grounded.factcheck.training",
    "train_factchecker": "grounded.factcheck.training",
    "transform_pairs": "grounded.factcheck.transforms",
}

__all__ = [
    "CheckerOptimConfig",
    "CheckerPrediction",
    "ClaimData",
    "ClaimDataConfig",
    "Corpus",
    "Decision",
    "DecisionRule",
    "FactChecker",
    "FactCheckerConfig",
    "FactCheckerRun",
    "PairData",
    "PairRecord",
    "Predictions",
    "TrainLog",
    "alias_notes",
    "build_claim_data",
    "build_pair_data",
    "calibrate",
    "classification_report",
    "confusion_matrix",
    "decision_rule",
    "evaluate_checker",
    "evaluate_verifier",
    "hide_facts",
    "read_pairs",
    "train_checker",
    "train_factchecker",
    "transform_pairs",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
