"""Training the checker.

- :func:`train_checker`: fine-tune a :class:`~grounded.factcheck.checker.FactChecker` with the
  Hugging Face Trainer on (claim, evidence, label) rows;
- :func:`fit_biases` / :func:`calibrate`: per-label biases fitted on a dev split so every
  verdict is predicted (stored in the checker folder);
- :func:`train_factchecker`: the whole job from a knowledge base, documents and labelled
  pairs: data, training, calibration, and (optionally) saving.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grounded.config import to_dict
from grounded.factcheck import chunking
from grounded.factcheck.checker import FactChecker, _quiet_transformers
from grounded.factcheck.config import FactCheckerConfig
from grounded.types import LABELS

if TYPE_CHECKING:
    from datasets import Dataset

    from grounded.factcheck.data import ClaimDataConfig
    from grounded.factcheck.decision import DecisionRule
    from grounded.factcheck.mixture import PairData
    from grounded.kb import KnowledgeBase


@dataclass(frozen=True)
class TrainLog:
    """What :func:`train_checker` did.

    Attributes:
        steps: optimizer steps taken.
        seconds: wall time of training.
        losses: training loss at each logging step, in order.
        train_loss: mean training loss over the run.
        examples: training pairs.
    """

    steps: int
    seconds: float
    losses: tuple[float, ...]
    train_loss: float
    examples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "losses": [round(x, 5) for x in self.losses],
            "train_loss": round(self.train_loss, 5),
            "examples": self.examples,
        }


def fit_evidence(tokenizer: Any, claim: str, evidence: str, max_length: int) -> str:
    """The evidence a training pair is read with: whole when it fits beside the claim, else
    its chunk (:func:`~grounded.factcheck.chunking.chunk_evidence`) sharing the most words
    with the claim, rather than its first ``max_length`` tokens."""
    n = len(tokenizer(claim, evidence, truncation=False)["input_ids"])
    if n <= max_length:
        return evidence
    chunks = chunking.chunk_evidence(tokenizer, claim, evidence, max_length)
    return chunks[chunking.most_overlapping(claim, chunks)]


def train_checker(
    train: Dataset,
    config: FactCheckerConfig | None = None,
    *,
    checker: FactChecker | None = None,
    dev: Dataset | None = None,
    callbacks: Sequence[Any] | None = None,
    show_progress: bool = True,
) -> tuple[FactChecker, TrainLog]:
    """Fine-tune a checker on (claim, evidence, label) rows with :class:`transformers.Trainer`.

    With a ``dev`` split and ``config.best_epoch``, the dev pairs are scored after every
    epoch (balanced accuracy of the top label) and the best epoch's weights are kept
    (``load_best_model_at_end``): more epochs cannot make the returned checker worse on dev.

    Args:
        train: a ``datasets.Dataset`` with string columns ``claim`` and ``evidence`` and a
            ``label`` column (ids in :data:`LABELS` order, or the names themselves), as built
            by :func:`grounded.factcheck.build_claim_data`.
        config: settings; defaults if None.
        checker: continue training this checker instead of starting from ``config.base_model``.
        dev: rows like ``train`` to choose the best epoch on (never trained on), or None.
        callbacks: ``transformers.TrainerCallback`` objects (progress, checkpoints, early stop).
        show_progress: show the Trainer's progress bar.

    Returns:
        The trained checker (in eval mode) and a :class:`TrainLog`.

    Raises:
        ValueError: ``train`` is empty or lacks a column.
    """
    from transformers import DataCollatorWithPadding, Trainer

    config = config or FactCheckerConfig()
    missing = {"claim", "evidence", "label"} - set(train.column_names)
    if missing:
        raise ValueError(
            f"`train` lacks column(s) {sorted(missing)}; it has {train.column_names}: build it "
            "with `build_claim_data`"
        )
    if len(train) == 0:
        raise ValueError("`train` is empty: no claims to learn from")
    if checker is None:
        checker = FactChecker.from_base(
            config.base_model, max_length=config.max_length, seed=config.seed, device=config.device
        )
    tokenizer = checker.tokenizer
    label_ids = {lab: checker.columns[i] for i, lab in enumerate(LABELS)}

    def encode(batch: dict[str, list]) -> dict[str, list]:
        evidence = [
            fit_evidence(tokenizer, c, e if e.strip() else "(no evidence)", checker.max_length)
            for c, e in zip(batch["claim"], batch["evidence"], strict=True)
        ]
        enc = tokenizer(
            batch["claim"], evidence, truncation="longest_first", max_length=checker.max_length
        )
        enc["labels"] = [
            label_ids[x] if isinstance(x, str) else label_ids[LABELS[int(x)]]
            for x in batch["label"]
        ]
        return enc

    with _quiet_transformers():
        tokenized = train.map(
            encode, batched=True, remove_columns=train.column_names, desc="tokenizing"
        )
        select = config.best_epoch and dev is not None and len(dev) > 0
        dev_tokenized = (
            dev.map(encode, batched=True, remove_columns=dev.column_names, desc="tokenizing dev")
            if select
            else None
        )
    per_epoch = (
        {
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_only_model": True,
            "save_total_limit": 1,
            "load_best_model_at_end": True,
            "metric_for_best_model": "balanced_accuracy",
            "greater_is_better": True,
            "per_device_eval_batch_size": config.eval_batch_size,
        }
        if select
        else {"save_strategy": "no"}
    )
    with tempfile.TemporaryDirectory(prefix="grounded-checker-") as tmp:
        args = config.optim.training_arguments(
            tmp,
            seed=config.seed,
            use_cpu=config.device == "cpu",
            disable_tqdm=not show_progress,
            dataloader_pin_memory=False,
            train_sampling_strategy="group_by_length",
            **per_epoch,
        )
        trainer = Trainer(
            model=checker.model,
            args=args,
            train_dataset=tokenized,
            eval_dataset=dev_tokenized,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            compute_metrics=_dev_metrics if select else None,
            callbacks=list(callbacks) if callbacks else None,
        )
        t0 = time.perf_counter()
        with _quiet_transformers():
            result = trainer.train()
        seconds = time.perf_counter() - t0
    history = trainer.state.log_history
    losses = tuple(float(e["loss"]) for e in history if "loss" in e)
    checker.model.eval()
    log = TrainLog(result.global_step, seconds, losses, float(result.training_loss), len(train))
    record = log.to_dict()
    dev_scores = [
        {"epoch": round(float(e["epoch"]), 3), "balanced_accuracy": round(e[key], 4)}
        for e in history
        if (key := "eval_balanced_accuracy") in e
    ]
    if dev_scores:
        best = max(dev_scores, key=lambda d: d["balanced_accuracy"])
        record.update(dev_by_epoch=dev_scores, kept_epoch=best["epoch"])
    checker.metadata.update(train=config.to_dict(), train_log=record)
    return checker, log


def _dev_metrics(pred: Any) -> dict[str, float]:
    """Balanced accuracy of the top label on the dev split (Trainer's ``compute_metrics``)."""
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return {"balanced_accuracy": balanced_accuracy(pred.label_ids, np.argmax(logits, axis=-1))}


# -- calibration ---------------------------------------------------------------------------------
def balanced_accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Mean recall over the labels present in ``gold``.

    By hand rather than ``sklearn.metrics.balanced_accuracy_score``: :func:`fit_biases` calls
    it thousands of times in its grid search, where sklearn's checks cost seconds.

    Example:
        >>> balanced_accuracy([0, 0, 0, 1], [0, 0, 1, 1])
        0.8333333333333333
    """
    g, p = np.asarray(gold), np.asarray(pred)
    recalls = [float((p[g == k] == k).mean()) for k in np.unique(g)]
    return float(np.mean(recalls)) if recalls else 0.0


def fit_biases(
    probs: np.ndarray, gold: Sequence[int], *, grid: Sequence[float] | None = None
) -> tuple[np.ndarray, float, float]:
    """Per-label log-space biases that maximize balanced accuracy on a dev split.

    The bias of ``supported`` stays 0 (only differences matter); the others are searched on
    a grid (-4 to 4 by 0.1). A label absent from ``gold`` keeps bias 0. Ties go to the
    smallest total shift, so a well-calibrated checker keeps zero biases.

    Args:
        probs: (n, 3) uncalibrated probabilities in :data:`LABELS` order.
        gold: n label ids.
        grid: candidate biases.

    Returns:
        ``(biases (3,), balanced accuracy before, after)``.

    Raises:
        ValueError: ``probs`` and ``gold`` differ in length, or ``gold`` is empty.

    Example:
        >>> p = np.array([[0.6, 0.1, 0.3], [0.5, 0.1, 0.4], [0.45, 0.1, 0.45]])
        >>> b, before, after = fit_biases(p, [0, 2, 2])
        >>> b.tolist(), before, after
        ([0.0, 0.0, 0.3], 0.5, 1.0)
    """
    p = np.asarray(probs, dtype=np.float64)
    g = np.asarray(gold, dtype=np.int64)
    if len(p) != len(g) or not len(g):
        raise ValueError(f"`probs` ({len(p)}) and `gold` ({len(g)}) must be equal and non-empty")
    grid = np.round(np.arange(-4.0, 4.0001, 0.1), 2) if grid is None else np.asarray(grid)
    logp = np.log(np.clip(p, 1e-12, 1.0))
    present = set(g.tolist())
    before = balanced_accuracy(g, logp.argmax(axis=1))
    options_r = grid if 1 in present else np.array([0.0])
    options_n = grid if 2 in present else np.array([0.0])
    best = (before, 0.0, 0.0, 0.0)
    for br in options_r:
        shifted_r = logp[:, 1] + br
        for bn in options_n:
            pred = np.argmax(np.stack([logp[:, 0], shifted_r, logp[:, 2] + bn], axis=1), axis=1)
            score = balanced_accuracy(g, pred)
            cost = abs(br) + abs(bn)
            if score > best[0] + 1e-12 or (abs(score - best[0]) <= 1e-12 and cost < best[3]):
                best = (score, float(br), float(bn), cost)
    return np.array([0.0, best[1], best[2]]), before, best[0]


def fit_rule(
    probs: np.ndarray, gold: Sequence[int], *, max_refuted_excess: float = 0.05
) -> tuple[DecisionRule, float]:
    """The decision rule (:class:`~grounded.factcheck.decision.DecisionRule`) that maximizes
    balanced accuracy on calibrated ``probs``, among those whose share predicted refuted is
    at most 1.5 × the gold share of refuted + ``max_refuted_excess`` (when any is); ties go
    to the rule that abstains more (larger margins).

    Args:
        probs: (n, 3) calibrated probabilities in :data:`LABELS` order.
        gold: n label ids.

    Returns:
        ``(rule, balanced accuracy)``.

    Example:
        >>> p = np.array([[0.2, 0.45, 0.35], [0.1, 0.8, 0.1], [0.7, 0.1, 0.2]])
        >>> rule, score = fit_rule(p, [2, 1, 0])
        >>> score, rule.refute_margin >= 0.1
        (1.0, True)
    """
    from grounded.factcheck.decision import DecisionRule, decide_ids

    g = np.asarray(gold, dtype=np.int64)
    ref = LABELS.index("refuted")
    cap = 1.5 * float((g == ref).mean()) + max_refuted_excess
    best: tuple[tuple[float, ...], DecisionRule] | None = None
    for mc in (0.0, 0.4, 0.5, 0.6):
        for mm in (0.0, 0.05, 0.1, 0.2):
            for rm in (0.0, 0.1, 0.2, 0.3, 0.4):
                rule = DecisionRule(min_confidence=mc, min_margin=mm, refute_margin=rm)
                pred = decide_ids(probs, rule)
                within = float((pred == ref).mean()) <= cap + 1e-12
                key = (float(within), balanced_accuracy(g, pred), mm + rm + mc)
                if best is None or key > best[0]:
                    best = (key, rule)
    key, rule = best  # type: ignore[misc]  # the grid is not empty
    return rule, key[1]


def calibrate(
    checker: FactChecker,
    dev: Dataset,
    *,
    batch_size: int = 64,
    tuned_on: str = "dev split of the training mixture",
) -> dict[str, Any]:
    """Fit the checker's per-label biases (:func:`fit_biases`), then its decision rule's
    thresholds (:func:`fit_rule`), on ``dev`` and set them (recorded in its metadata with
    ``tuned_on`` and the gold label distribution).

    Tune on pairs unlike the training mixture (another domain, human-labelled, with hard
    not-enough-info pairs), never on the training distribution alone: biases fitted on the
    training mix's own dev split learn its label balance, not the world's.

    Args:
        checker: a trained checker.
        dev: rows with ``claim``, ``evidence``, ``label``.
        tuned_on: what ``dev`` is, in words (recorded).

    Returns:
        What was recorded: ``biases``, ``rule``, ``tuned_on``, ``dev_pairs``, ``dev_labels``,
        ``balanced_accuracy_before`` (argmax, no biases), ``_biases`` (argmax after the
        biases) and ``_after`` (the rule), the dev recall of each label and the predicted
        label distribution after.
    """
    from grounded.factcheck.decision import decide_ids
    from grounded.factcheck.labels import apply_biases

    claims, evidence = list(dev["claim"]), list(dev["evidence"])
    probs = checker.predict_proba(claims, evidence, batch_size=batch_size, calibrated=False)
    gold = [int(x) if not isinstance(x, str) else LABELS.index(x) for x in dev["label"]]
    biases, before, with_biases = fit_biases(probs, gold)
    calibrated = apply_biases(probs, biases)
    rule, after = fit_rule(calibrated, gold)
    pred = decide_ids(calibrated, rule)
    g = np.asarray(gold)
    recall = {
        lab: float((pred[g == k] == k).mean()) for k, lab in enumerate(LABELS) if (g == k).any()
    }
    absent = [lab for k, lab in enumerate(LABELS) if not (g == k).any()]
    if absent:
        warnings.warn(
            f"calibration set ({tuned_on}) has no {absent} pairs: their bias stays 0 and the "
            "rule learns to avoid them; add labelled pairs of every verdict",
            stacklevel=2,
        )
    info = {
        "tuned_on": tuned_on,
        "labels_absent": absent,
        "dev_pairs": len(gold),
        "dev_labels": {lab: int((g == k).sum()) for k, lab in enumerate(LABELS)},
        "predicted_labels": {lab: int((pred == k).sum()) for k, lab in enumerate(LABELS)},
        "balanced_accuracy_before": round(before, 4),
        "balanced_accuracy_biases": round(with_biases, 4),
        "balanced_accuracy_after": round(after, 4),
        "dev_recall": {k: round(v, 4) for k, v in recall.items()},
        "method": "per-label log-space biases maximizing dev balanced accuracy, then the "
        "decision rule's thresholds maximizing it with refuted predicted at most 1.5 x its "
        "gold share + 0.05",
    }
    checker.set_calibration(biases, info, rule)
    return checker.metadata["calibration"]


# -- the whole job -------------------------------------------------------------------------------
def train_factchecker(
    kb: KnowledgeBase | str | Path | None = None,
    *,
    documents: str | Path | Sequence[str] | None = None,
    pairs: str | Path | Sequence[dict[str, Any]] | None = None,
    data_config: ClaimDataConfig | None = None,
    checker_config: FactCheckerConfig | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    calibration_pairs: str | Path | Sequence[dict[str, Any]] | None = None,
) -> FactCheckerRun:
    """Build training pairs, train a checker, calibrate it on the dev split, and save it.

    The pairs (:func:`grounded.factcheck.mixture.build_pair_data`): the knowledge base's claims,
    FactCC-style transformations of its passages and of ``documents``, and labelled
    ``pairs``; balanced per label, with a dev split held out. After training, per-label
    biases are fitted on the dev split (:func:`calibrate`) so every verdict is predicted;
    they are stored in the checker's ``factcheck.json``, and a checker loaded later with
    :meth:`FactChecker.from_pretrained` predicts exactly as this one.

    Args:
        kb: a knowledge base or its folder, or None.
        documents: a text/JSONL file or a folder of them, or the passages as strings.
        pairs: a JSONL pair file (:func:`grounded.factcheck.pairs.read_pairs`, labels
            required) or dicts with ``claim``, ``evidence``, ``label``.
        data_config: data settings; defaults if None.
        checker_config: model and training settings; defaults if None.
        out: folder to save the checker to (None: not saved).
        overwrite: replace an existing ``out``.
        show_progress: progress bars.
        calibration_pairs: labelled pairs (a JSONL file or dicts) unlike the training mix
            (another domain, human-labelled) to tune the calibration biases and the decision
            rule on (:func:`calibrate`); never trained on. None: the dev split.

    The checker's metadata is the folder's contract, written here and not by the command
    line: the KB (name, checksum, path), the data settings (``evidence_k``, ``alias_notes``:
    the verifier reads evidence as the checker was trained), pair statistics, the
    calibration, and the scores on the KB's held-out subjects.

    Returns:
        :class:`FactCheckerRun`.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ValueError: nothing to train on.
        kg.SourceFileError: a bad line in ``documents`` or ``pairs`` (file and line named).

    Example:
        >>> run = train_factchecker(documents="notes/", out="runs/checker")  # doctest: +SKIP
        >>> run.checker.predict([("Ada won.", "Ada won in 2006.")]).labels  # doctest: +SKIP
        ['supported']
    """
    from grounded.factcheck.data import ClaimDataConfig
    from grounded.factcheck.mixture import build_pair_data
    from grounded.factcheck.transforms import read_texts
    from grounded.kb import KnowledgeBase

    if out is not None and Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass `overwrite=True` (`--overwrite`) to replace it")
    data_config = data_config or ClaimDataConfig()
    checker_config = checker_config or FactCheckerConfig()
    if isinstance(kb, (str, Path)):
        kb = KnowledgeBase.load(kb)
    is_path = isinstance(documents, (str, Path))
    texts = read_texts(documents) if is_path else list(documents or [])
    records = _labelled(pairs)
    data = build_pair_data(
        kb, data_config, documents=texts, pairs=records, show_progress=show_progress
    )
    checker, log = train_checker(
        data.train, checker_config, dev=data.dev, show_progress=show_progress
    )
    cal_rows = _labelled(calibration_pairs) if calibration_pairs is not None else []
    if cal_rows:
        from grounded.factcheck.mixture import _pair_dataset

        for r in cal_rows:
            r.setdefault("kind", "calibration")
            r.setdefault("source", "calibration")
            r["label"] = r["label"] if isinstance(r["label"], int) else LABELS.index(r["label"])
        name = calibration_pairs if isinstance(calibration_pairs, (str, Path)) else "given"
        calibrate(
            checker,
            _pair_dataset(cal_rows),
            batch_size=checker_config.eval_batch_size,
            tuned_on=f"calibration pairs ({name}), not trained on",
        )
    elif len(data.dev):
        calibrate(
            checker,
            data.dev,
            batch_size=checker_config.eval_batch_size,
            tuned_on="dev split of the training mixture (hard not-enough-info pairs "
            "included); pass `calibration_pairs` from another domain for a rule that transfers",
        )
    checker.metadata.update(data=to_dict(data_config), pair_stats=data.stats())
    scores: dict[str, Any] = {}
    if kb is not None:
        checker.metadata["kb"] = {"name": kb.name, "checksum": kb.checksum, "path": str(kb.path)}
        if data.claims is not None and len(data.claims.dataset["test"]):
            from grounded.factcheck.evaluate import score_checker

            scores = score_checker(data.claims, checker, data_config, show_progress=show_progress)
            checker.metadata["metrics"] = {k: summary(v) for k, v in scores.items()}
    if out is not None:
        checker.save_pretrained(out, overwrite=overwrite)
    return FactCheckerRun(checker, log, data, scores)


def _labelled(pairs: str | Path | Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Labelled pairs from a JSONL file (labels required) or a list of dicts (copied)."""
    from grounded.factcheck.labels import canonical_label
    from grounded.factcheck.pairs import read_pairs

    if isinstance(pairs, (str, Path)):
        return [
            {"claim": r.claim, "evidence": r.evidence, "label": canonical_label(r.label)}
            for r in read_pairs(pairs, require_label=True)
        ]
    return [dict(p) for p in pairs or []]


@dataclass(frozen=True)
class FactCheckerRun:
    """What :func:`train_factchecker` returns: the calibrated checker, its training log, the
    pairs it was trained and calibrated on, and its scores on the knowledge base's held-out
    subjects (``neural``, ``combined`` and ``graph`` reports; empty without a KB)."""

    checker: FactChecker
    log: TrainLog
    data: PairData
    scores: dict[str, Any]

    def __iter__(self) -> Any:
        """``checker, log, data, scores = run``."""
        return iter((self.checker, self.log, self.data, self.scores))


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an evaluation report (no per-claim rows)."""
    keep = ("n", "correct", "accuracy", "macro_f1", "per_class", "confusion", "decided_by")
    return {k: report[k] for k in keep if k in report}
