"""Fact-checker negative feedback: the model's own refuted answers become negatives.

Every ``every`` steps the model greedily answers a sample of training prompts; a judge
(the graph alone: :class:`GraphJudge`, or graph first then the neural checker:
``grounded.verify.Verifier``) labels the answers; each refuted answer goes into a bank
as a negative of its prompt, and the trainer's feedback term pushes it below the gold answer
in the following steps (the same pure loss as the knowledge constraint). Each round is
logged to ``feedback.jsonl`` (generations, refuted, refuted share) and, optionally, the
refuted/gold pairs to ``dpo_pairs.jsonl`` as preference pairs for a DPO trainer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.answers import is_abstention, judge_answer, parse_generation
from grounded.types import AnswerItem, AnswerJudge, Label

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase


class GraphJudge:
    """Judge answers by the graph alone: the symbolic check of each stated object.

    The verdict is :func:`grounded.answers.judge_answer`, the one reading of an answer that
    the evaluator and the guard share: an abstention (any accepted phrasing) is never refuted.

    Example:
        >>> item = AnswerItem("?", "Beijing.", "Mongolia", "capital")
        >>> GraphJudge(kb).judge_answers([item])  # doctest: +SKIP
        ['refuted']
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.graph = kb.graph

    def judge_answers(self, items: Sequence[AnswerItem]) -> list[Label]:
        return [
            judge_answer(self.graph, item.subject, item.relation, item.answer) for item in items
        ]


def make_judge(kb: KnowledgeBase, checker: str | Path | None = None) -> AnswerJudge:
    """The judge of feedback rounds: the graph alone, or with ``checker`` (a fact-checker
    folder) the fact-checker's ``Verifier``: graph first, then the neural checker.

    Raises:
        ImportError: ``checker`` is given but ``grounded.factcheck`` is not available.
    """
    if checker is None:
        return GraphJudge(kb)
    try:
        from grounded.factcheck.checker import FactChecker
        from grounded.verify.verifier import Verifier
    except ImportError as e:
        raise ImportError(
            f"`checker` {str(checker)!r} needs grounded.factcheck ({e}); leave `--checker` "
            "out to judge by the graph alone"
        ) from None
    return Verifier(kb, FactChecker.from_pretrained(checker))


@dataclass
class FeedbackRound:
    """One feedback round's outcome."""

    round: int
    step: int
    n_generations: int
    n_refuted: int
    n_supported: int
    n_abstained: int
    generations: list[dict[str, Any]] = field(default_factory=list)
    refuted: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def refuted_share(self) -> float:
        return self.n_refuted / self.n_generations if self.n_generations else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts and share, without the generations."""
        return {
            "round": self.round,
            "step": self.step,
            "n_generations": self.n_generations,
            "n_refuted": self.n_refuted,
            "n_supported": self.n_supported,
            "n_abstained": self.n_abstained,
            "refuted_share": round(self.refuted_share, 6),
        }


Generator = Callable[[Sequence[dict]], list[str]]
"""Answers (generated text) for a list of examples."""


class FeedbackLoop:
    """Feedback rounds and the bank of refuted answers the feedback term draws from.

    Args:
        examples: the training examples (dicts with prompt, answer, question, subject,
            relation, evidence_ids, ...).
        judge: labels the generated answers.
        every: steps between rounds (> 0).
        samples: examples answered per round.
        batch_size: bank entries added to each training step.
        seed: seed of the samples drawn each round and from the bank.
        log_dir: folder for ``feedback.jsonl`` and ``dpo_pairs.jsonl`` (None: no files).
        dpo_export: write the refuted/gold preference pairs.
        render_prompt: the text the model reads for an example (e.g.
            :meth:`grounded.model.batch.Batcher.prompt_text`: the chat template's prompt for a
            model trained in the ``chat`` format); None: the plain ``prompt`` field. The DPO
            pairs carry this text, so a DPO trainer sees the prompt the model was trained on.
        answer_prefix: text before an answer in the DPO pairs: a space after the plain
            format's ``Answer:``, nothing in the chat format (the assistant's turn).
        rank: this process's rank (seeds differ per process; only rank 0 writes files).
        first_round: number of the first round (rounds already logged before a resume).
    """

    def __init__(
        self,
        examples: Sequence[dict],
        judge: AnswerJudge,
        *,
        every: int,
        samples: int,
        batch_size: int,
        seed: int = 0,
        log_dir: str | Path | None = None,
        dpo_export: bool = True,
        render_prompt: Callable[[dict], str] | None = None,
        answer_prefix: str = " ",
        rank: int = 0,
        first_round: int = 0,
    ) -> None:
        if every < 1:
            raise ValueError(f"`every` must be >= 1 for a feedback loop, got {every}")
        self.examples = list(examples)
        self.judge = judge
        self.every = every
        self.samples = min(samples, len(self.examples))
        self.batch_size = batch_size
        self.seed = seed
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.dpo_export = dpo_export
        self.render_prompt = render_prompt or (lambda ex: ex["prompt"])
        self.answer_prefix = answer_prefix
        self.rank = rank
        self.bank: list[dict] = []
        self.rounds: list[FeedbackRound] = []
        self.first_round = first_round
        self.last_step = -1
        self._rng = random.Random(f"grounded-feedback-bank-{seed}-{rank}")

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue bit for bit: the bank, the bank's random
        state, the last round's step (JSON-ready: a checkpoint holds no pickle)."""
        version, internal, gauss = self._rng.getstate()
        return {
            "format_version": 1,
            "bank": self.bank,
            "rng": [version, list(internal), gauss],
            "last_step": self.last_step,
            "seed": self.seed,
            "rank": self.rank,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (a resumed run continues the same draws).

        Raises:
            ValueError: the state belongs to another seed or rank, or is not a state dict.
        """
        if not isinstance(state, dict) or state.get("format_version") != 1:
            raise ValueError("not a feedback state (expected format_version 1)")
        if (state.get("seed"), state.get("rank")) != (self.seed, self.rank):
            raise ValueError(
                f"the feedback state was saved with seed {state.get('seed')} on rank "
                f"{state.get('rank')}; this run has seed {self.seed} on rank {self.rank}"
            )
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self.bank = list(state["bank"])
        self.last_step = int(state["last_step"])

    def due(self, step: int) -> bool:
        """A round is due at step 0 and every ``every`` steps (once per step)."""
        return step % self.every == 0 and step != self.last_step

    def run_round(
        self, step: int, generate: Generator, *, update_bank: bool = True
    ) -> FeedbackRound:
        """Answer a fresh sample of prompts, judge, refill the bank with the refuted ones.

        The bank holds only the latest round's refuted answers: "the next steps".
        """
        self.last_step = step
        n = self.first_round + len(self.rounds)
        rng = random.Random(f"grounded-feedback-{self.seed}-{self.rank}-{n}")
        sample = rng.sample(self.examples, self.samples)
        answers = [parse_generation(t) for t in generate(sample)]
        labels = self.judge.judge_answers(
            [
                AnswerItem(ex["question"], a, ex["subject"], ex["relation"])
                for ex, a in zip(sample, answers, strict=True)
            ]
        )
        generations, refuted = [], []
        for ex, answer, label in zip(sample, answers, labels, strict=True):
            generations.append(
                {"question": ex["question"], "answer": answer, "gold": ex["answer"], "label": label}
            )
            if label == "refuted":
                refuted.append({**ex, "negatives": [answer], "feedback": True})
        result = FeedbackRound(
            round=n,
            step=step,
            n_generations=len(sample),
            n_refuted=len(refuted),
            n_supported=labels.count("supported"),
            n_abstained=sum(is_abstention(a) for a in answers),
            generations=generations,
            refuted=refuted,
        )
        if update_bank:
            self.bank = refuted
        self.rounds.append(result)
        return result

    def draw(self) -> list[dict]:
        """Up to ``batch_size`` refuted examples from the bank for the next step."""
        if not self.bank or self.batch_size == 0:
            return []
        return self._rng.sample(self.bank, min(self.batch_size, len(self.bank)))

    def write(self, result: FeedbackRound, totals: dict[str, int] | None = None) -> None:
        """Append the round (with ``totals`` over every process) to the log files."""
        if self.log_dir is None or self.rank != 0:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        record = {**result.summary(), "generations": result.generations}
        if totals:
            record.update(totals)
            record["refuted_share"] = round(
                totals["n_refuted"] / max(totals["n_generations"], 1), 6
            )
        with open(self.log_dir / "feedback.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        if self.dpo_export:
            with open(self.log_dir / "dpo_pairs.jsonl", "a", encoding="utf-8") as fh:
                for ex in result.refuted:
                    pair = {
                        "prompt": self.render_prompt(ex),
                        "chosen": self.answer_prefix + ex["answer"],
                        "rejected": self.answer_prefix + ex["negatives"][0],
                        "step": result.step,
                    }
                    fh.write(json.dumps(pair, ensure_ascii=False, sort_keys=True) + "\n")
