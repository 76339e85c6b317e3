"""Types shared by the fact-checker, the trainer's feedback and the evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["supported", "refuted", "not_enough_info"]
"""A verdict on a claim: the evidence supports it, refutes it, or says nothing about it."""

LABELS: tuple[Label, ...] = ("supported", "refuted", "not_enough_info")


@dataclass(frozen=True)
class AnswerItem:
    """A model's answer to a knowledge-base question, to be judged.

    Attributes:
        question: the question as asked.
        answer: the model's answer text (may be the abstention phrase).
        subject, relation: the (subject, relation) pair the question asks about, when known.
    """

    question: str
    answer: str
    subject: str | None = None
    relation: str | None = None


class AnswerJudge(Protocol):
    """Anything that judges answers: the graph alone, or graph first then a neural checker."""

    def judge_answers(self, items: Sequence[AnswerItem]) -> list[Label]:
        """One label per item, in order."""
        ...
