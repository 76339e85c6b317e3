"""Training the fact-checker: :func:`train_checker` fine-tunes a
:class:`~grounded.factcheck.checker.FactChecker` with the Hugging Face Trainer on (claim,
evidence, label) rows; :func:`train_factchecker` does the whole job from a knowledge base
(claims, training, held-out scores, the folder's contract in its metadata)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grounded.config import to_dict
from grounded.factcheck.checker import FactChecker, FactCheckerConfig, _quiet_transformers
from grounded.types import LABELS

if TYPE_CHECKING:
    from datasets import Dataset

    from grounded.factcheck.data import ClaimDataConfig
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


def train_checker(
    train: Dataset,
    config: FactCheckerConfig | None = None,
    *,
    checker: FactChecker | None = None,
    callbacks: Sequence[Any] | None = None,
    show_progress: bool = True,
) -> tuple[FactChecker, TrainLog]:
    """Fine-tune a checker on (claim, evidence, label) rows with :class:`transformers.Trainer`.

    Args:
        train: a ``datasets.Dataset`` with string columns ``claim`` and ``evidence`` and a
            ``label`` column (ids in :data:`LABELS` order, or the names themselves), as built
            by :func:`grounded.factcheck.build_claim_data`.
        config: settings; defaults if None.
        checker: continue training this checker instead of starting from ``config.base_model``.
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
        enc = tokenizer(
            batch["claim"],
            [e if e.strip() else "(no evidence)" for e in batch["evidence"]],
            truncation="longest_first",
            max_length=checker.max_length,
        )
        enc["labels"] = [
            label_ids[x] if isinstance(x, str) else label_ids[LABELS[int(x)]]
            for x in batch["label"]
        ]
        return enc

    tokenized = train.map(
        encode, batched=True, remove_columns=train.column_names, desc="tokenizing"
    )
    with tempfile.TemporaryDirectory(prefix="grounded-checker-") as tmp:
        args = config.optim.training_arguments(
            tmp,
            seed=config.seed,
            save_strategy="no",
            use_cpu=config.device == "cpu",
            disable_tqdm=not show_progress,
            dataloader_pin_memory=False,
            train_sampling_strategy="group_by_length",
        )
        trainer = Trainer(
            model=checker.model,
            args=args,
            train_dataset=tokenized,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            callbacks=list(callbacks) if callbacks else None,
        )
        t0 = time.perf_counter()
        with _quiet_transformers():
            result = trainer.train()
        seconds = time.perf_counter() - t0
    losses = tuple(float(e["loss"]) for e in trainer.state.log_history if "loss" in e)
    checker.model.eval()
    log = TrainLog(result.global_step, seconds, losses, float(result.training_loss), len(train))
    checker.metadata.update(train=config.to_dict(), train_log=log.to_dict())
    return checker, log


@dataclass(frozen=True)
class FactCheckerRun:
    """What :func:`train_factchecker` returns: the checker, its training log and its scores
    on the held-out subjects (``neural``, ``combined`` and ``graph`` reports)."""

    checker: FactChecker
    log: TrainLog
    scores: dict[str, Any]
    stats: dict[str, Any]


def train_factchecker(
    kb: KnowledgeBase,
    data_config: ClaimDataConfig | None = None,
    checker_config: FactCheckerConfig | None = None,
    *,
    show_progress: bool = True,
) -> FactCheckerRun:
    """Build claims from ``kb``, train a checker on them and score it on held-out subjects.

    The checker's metadata records everything a reader of the folder needs to use it as it
    was trained: the KB (name, checksum, path), the claim settings (``evidence_k``,
    ``alias_notes``: the verifier reads evidence the same way), data statistics and scores.
    The command line (``grounded factcheck train``) is this function plus ``save_pretrained``.

    Example:
        >>> run = train_factchecker(KnowledgeBase.load("runs/kb"))  # doctest: +SKIP
        >>> run.checker.save_pretrained("runs/checker")  # doctest: +SKIP
    """
    from grounded.factcheck.data import ClaimDataConfig, build_claim_data
    from grounded.factcheck.evaluate import score_checker

    data_config = data_config or ClaimDataConfig()
    data = build_claim_data(kb, data_config, show_progress=show_progress)
    stats = data.stats()
    if show_progress:
        tr, te = stats["train"], stats["test"]
        print(
            f"claims: train {tr['claims']} ({tr['subjects']} subjects), test {te['claims']} "
            f"({te['subjects']} held-out subjects); held-out pairs {stats['hidden_pairs']}"
        )
        print(f"  train labels {tr['labels']}")
    checker, log = train_checker(data.dataset["train"], checker_config, show_progress=show_progress)
    scores = score_checker(data, checker, data_config, show_progress=show_progress)
    checker.metadata.update(
        kb={"name": kb.name, "checksum": kb.checksum, "path": str(kb.path)},
        data=to_dict(data_config),
        data_stats=stats,
        metrics={k: summary(v) for k, v in scores.items()},
    )
    return FactCheckerRun(checker, log, scores, stats)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an evaluation report (no per-claim rows)."""
    keep = ("n", "correct", "accuracy", "macro_f1", "per_class", "confusion", "decided_by")
    return {k: report[k] for k in keep if k in report}
