"""The guard: a model's answers are checked against the knowledge base before anyone reads them.

Training lowers how often a model states what the graph contradicts; it cannot make a model
that reads its evidence poorly (a small base, an out-of-domain question) safe. The guard
applies the audit (job 3) at answer time, as RARR ("research and revise") and Self-RAG's
critique-then-filter do: each stated answer is read in the context of its question, with no
(subject, relation) handed over, and the :class:`~grounded.verify.verifier.Verifier`
gives a verdict (graph first, then the neural checker). Then, by ``mode``:

- ``abstain``: a ``supported`` answer is kept; any other becomes the abstention phrase. The
  model's correct answers stay; its hallucinations become abstentions it did not make.
- ``revise``: as ``abstain``, except that an answer the knowledge base can correct is
  corrected: when the question names a (subject, relation) the graph holds facts for, the
  answer becomes those objects (never the objects of a pair the answer names: the guard
  answers the question that was asked).

An answer that states nothing (empty, or punctuation only) becomes the abstention phrase.
The model's own abstentions are kept in both modes: the guard never makes a model state
more than it did. Every guarded answer records what the model said, the verdict and the
action (``kept``, ``abstained``, ``revised``), so nothing is hidden from an auditor.

Example:
    >>> config = GuardConfig("revise")
    >>> guard = Guard.from_kb(kb, checker="runs/checker", config=config)  # doctest: +SKIP
    >>> guard.apply(["What is the capital of Australia?"], ["Sydney."])[0].text  # doctest: +SKIP
    'Canberra.'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from grounded.answers import (
    ABSTAIN,
    UNANSWERED,
    AnswerReading,
    answer_text,
    format_answer,
    is_abstention,
    read_answer,
)
from kg.normalize import normalize

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.verify.verdict import Verdict
    from grounded.verify.verifier import Verifier

GuardMode = Literal["abstain", "revise"]
GUARD_MODES: tuple[GuardMode, ...] = ("abstain", "revise")
GuardAction = Literal["kept", "abstained", "revised"]


@dataclass
class GuardConfig:
    """Settings of :class:`Guard`."""

    mode: str = field(
        default="abstain",
        metadata={
            "help": "abstain: unsupported answers become the abstention phrase; revise: "
            "answers the KB can correct are corrected, the rest abstain."
        },
    )

    def __post_init__(self) -> None:
        if self.mode not in GUARD_MODES:
            raise ValueError(f"`mode` must be one of {list(GUARD_MODES)}, got {self.mode!r}")


@dataclass(frozen=True)
class GuardedAnswer:
    """One answer after the guard.

    Attributes:
        question: the question.
        text: the answer shown: the model's, the abstention phrase, or the correction.
        original: what the model said.
        action: ``kept``, ``abstained`` or ``revised``.
        label: the verdict on the model's answer (None when the model abstained).
        reason: why, in one sentence.
    """

    question: str
    text: str
    original: str
    action: GuardAction
    label: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "original": self.original,
            "action": self.action,
            "label": self.label,
            "reason": self.reason,
        }


class Guard:
    """Verify answers against a knowledge base; keep, revise or abstain (see the module).

    Args:
        verifier: gives the verdicts (its KB supplies the corrections).
        config: settings; defaults (``abstain``) if None.
    """

    def __init__(self, verifier: Verifier, config: GuardConfig | None = None) -> None:
        self.verifier = verifier
        self.config = config or GuardConfig()

    @classmethod
    def from_kb(
        cls,
        kb: KnowledgeBase,
        checker: str | Path | None = None,
        config: GuardConfig | None = None,
    ) -> Guard:
        """A guard over ``kb``, with the fact-checker folder ``checker`` (None: graph only,
        so every answer the graph cannot decide is unsupported)."""
        from grounded.verify.verifier import Verifier

        model = None
        if checker is not None:
            from grounded.factcheck.checker import FactChecker

            model = FactChecker.from_pretrained(checker)
        return cls(Verifier(kb, model), config)

    def verdicts(self, questions: Sequence[str], answers: Sequence[str]) -> list[Verdict | None]:
        """The verifier's verdict on each stated answer (None where the model abstained).

        Raises:
            ValueError: ``questions`` and ``answers`` differ in length.
        """
        if len(questions) != len(answers):
            raise ValueError(
                f"`questions` ({len(questions)}) and `answers` ({len(answers)}) must pair up"
            )
        stated = [i for i, a in enumerate(answers) if a.strip() and not is_abstention(a)]
        asked = [questions[i] for i in stated]
        claims = [self.claim(questions[i], answers[i]) for i in stated]
        found = self.verifier.verify(claims, asked)
        # The pair's claim is what the answer states about the question; every other clause
        # of the answer is judged too (issue 20: a false clause anywhere is never kept).
        whole = self.verifier.verify([answers[i] for i in stated], asked)
        out: list[Verdict | None] = [None] * len(answers)
        for i, v, w in zip(stated, found, whole, strict=True):
            out[i] = _with_other_clauses(answers[i], v, w)
        return out

    def reading(self, question: str, answer: str) -> tuple[str, str, AnswerReading] | None:
        """(subject, relation, reading) of ``answer`` for the pair ``question`` asks about, as
        :func:`grounded.answers.read_answer` reads it (the evaluator's and the feedback
        judge's reading); None when the question names no pair of the graph."""
        pair = self.verifier.asked_pair(question)
        if pair is None:
            return None
        return *pair, read_answer(self.verifier.kb.graph, *pair, answer)

    def claim(self, question: str, answer: str) -> str:
        """What the verifier checks of ``answer``: the objects it states about the question's
        own (subject, relation) (so the guard, the evaluator and the feedback judge read an
        answer alike: "The countries that border X are A and B." is the claim "A and B.";
        "Y1, part of Y2" the level the KB holds); the answer as written when it states none
        of that pair (:meth:`apply` turns it away), or when the question cannot be read."""
        found = self.reading(question, answer)
        if found is None:
            return answer
        return self.verifier.pair_claim(found[0], found[1], answer)[1]

    def apply(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        verdicts: Sequence[Verdict | None] | None = None,
    ) -> list[GuardedAnswer]:
        """The guarded answers, in order.

        Args:
            questions: the questions.
            answers: the model's answers to them.
            verdicts: from :meth:`verdicts` on the same answers (computed here if None), so
                several modes can share one verification pass.

        Raises:
            ValueError: the lengths differ.
        """
        if verdicts is None:
            verdicts = self.verdicts(questions, answers)
        if not len(questions) == len(answers) == len(verdicts):
            raise ValueError(
                f"`questions`, `answers` and `verdicts` must pair up, got {len(questions)}, "
                f"{len(answers)} and {len(verdicts)}"
            )
        return [self._one(q, a, v) for q, a, v in zip(questions, answers, verdicts, strict=True)]

    def _one(self, question: str, answer: str, verdict: Verdict | None) -> GuardedAnswer:
        if not answer_text(answer):
            return GuardedAnswer(question, ABSTAIN, answer, "abstained", None, "no answer given")
        if verdict is None:
            return GuardedAnswer(question, answer, answer, "kept", None, "the model abstained")
        off_topic = self._answers_another_question(question, verdict)
        found = self.reading(question, answer)
        if found is not None and found[2].read_as in UNANSWERED:
            off_topic = off_topic or f"the answer states nothing about it ({found[2].read_as})"
        if verdict.label == "supported" and not off_topic:
            return GuardedAnswer(question, answer, answer, "kept", "supported", verdict.reason)
        why = f"{verdict.label} ({verdict.decided_by}): {verdict.reason}"
        if off_topic:
            why = f"it does not answer the question: {off_topic}; {why}"
        if self.config.mode == "revise":
            objects = self._correction(question, verdict)
            if objects:
                text = format_answer(objects)
                return GuardedAnswer(question, text, answer, "revised", verdict.label, why)
        return GuardedAnswer(question, ABSTAIN, answer, "abstained", verdict.label, why)

    def _answers_another_question(self, question: str, verdict: Verdict) -> str:
        """Why the verdict is about another (subject, relation) than the question asks
        ("The capital of China is Beijing." to "What is the capital of Mongolia?"), or ""."""
        if not (verdict.subject and verdict.relation):
            return ""
        graph = self.verifier.kb.graph
        asked = self.verifier.reader.read_question(question)
        if not asked:
            unnamed = self.verifier.reader.unnamed_subject("", question)
            if unnamed and normalize(unnamed) != normalize(verdict.subject):
                # "What is the currency of Banav?" answered with India's currency
                return f"the answer is about {verdict.relation!r} of {verdict.subject!r}"
            return ""  # the question cannot be read: nothing to compare with
        subjects = set(graph.resolve(verdict.subject)) | {verdict.subject}
        if any(r.relation == verdict.relation and subjects & set(r.subjects) for r in asked):
            return ""
        return f"the answer is about {verdict.relation!r} of {verdict.subject!r}"

    def _correction(self, question: str, verdict: Verdict) -> list[str]:
        """The KB's objects for the (subject, relation) the question itself asks about.

        Never the pair the answer names: an answer about another entity ("By whom was
        Thallium discovered?" answered with Seaborgium's discoverer) must not turn the
        correction into an answer to another question.
        """
        graph = self.verifier.kb.graph
        pairs = [(r.subjects, r.relation) for r in self.verifier.reader.read_question(question)]
        for subjects, relation in pairs:
            # A name shared by several entities ("Monaco", the country and the city) names
            # the one that has facts of the relation; still ambiguous: no correction is
            # safer than a guess.
            holders = [s for s in subjects if graph.objects(s, relation)]
            if len(holders) != 1:
                continue
            (subject,) = holders
            from_evidence = [
                e.triple.object
                for e in verdict.evidence
                if e.triple is not None
                and e.triple.subject == subject
                and e.triple.relation == relation
            ]
            objects = from_evidence or graph.objects(subject, relation)
            if objects:
                return list(dict.fromkeys(objects))
        return []


def _with_other_clauses(answer: str, pair: Verdict, whole: Verdict) -> Verdict:
    """``pair`` (the verdict on what the answer states about the question's pair) combined
    with the verdicts on the answer's other clauses (``whole``, the answer read clause by
    clause): the worst one decides (:func:`~grounded.verify.verdict.worst_of`)."""
    from grounded.verify.verdict import worst_of

    if not whole.clauses:
        return pair
    others = list(whole.clauses[1:])
    counted = [True] + [c.claim not in whole.unread for c in others]
    unread = [u for u in whole.unread if all(u != c.claim for c in others)]
    return worst_of(answer, pair.question, [pair, *others], counted, unread)
