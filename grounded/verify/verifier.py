"""The combined verdict: the graph decides what it can; the neural checker judges the rest.

For each claim (optionally the answer to a question):

1. read it as (subject, relation, objects) with the schema's templates
   (:class:`~kg.claims.ClaimReader`); where no template matches, link its
   entities and detect the relation from the masked sentence
   (:meth:`grounded.retrieval.HybridRetriever.relation_scores`);
2. the graph decides: ``supported`` or ``contradicted`` (→ refuted) end it, with the graph's
   facts as evidence (``decided_by="graph"``);
3. otherwise the hybrid retriever's top-k evidence is fetched. When the graph read the claim
   fully and is silent on it (no fact of the relation for the subject, or an open relation
   that does not list the object: :attr:`~grounded.verify.graph.GraphDecision.
   silent`), or a template reads a subject the KB does not name at all ("the capital of
   Eljunlor"), and the evidence holds only knowledge-base facts, no passage, the checker could
   learn nothing the graph has not checked: the verdict is not enough info
   (``decided_by="graph"``). Else the neural checker judges the claim on the evidence
   (``decided_by="checker"``), its label given by the checker's decision rule
   (:func:`grounded.factcheck.decision.decide`: not enough info unless the top label is
   confident and clearly ahead; ``min_confidence`` here overrides the rule's).
   Without a checker, or when the claim names no known entity at all, the verdict is not
   enough info (``decided_by="none"``).

Retrieval and the checker run only for the claims that reach step 3, in batches: that is
what keeps auditing fast when most claims are about facts the graph holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from grounded.answers import (
    UNANSWERED,
    AnswerReading,
    format_answer,
    is_abstention,
    read_answer,
    score_answer,
)
from grounded.factcheck.checker import DEFAULT_EVIDENCE_K, alias_notes
from grounded.factcheck.decision import decision_rule
from grounded.factcheck.labels import join_evidence
from grounded.retrieval import Evidence, RetrievalConfig
from grounded.types import AnswerItem, Label
from grounded.verify.config import VerifierConfig
from grounded.verify.graph import GraphDecision, decide
from grounded.verify.verdict import Verdict, worst_of
from kg.claims import ClaimReader, Reading
from kg.clauses import is_filler

if TYPE_CHECKING:
    from grounded.factcheck.checker import FactChecker
    from grounded.kb import KnowledgeBase
    from kg.types import Triple


_CONTENT = re.compile(r"\w")  # a claim of punctuation alone ("." ) states nothing
_NEGATION = re.compile(r"\b(?:not|never|no|nor|neither|cannot)\b|n['’]t\b", re.IGNORECASE)
_GRAPH_LABEL: dict[str, Label] = {"supported": "supported", "contradicted": "refuted"}
_FLIP: dict[str, Any] = {"supported": "contradicted", "contradicted": "supported"}


@dataclass
class _Job:
    claim: str
    question: str | None = None
    given: tuple[str, str] | None = None  # (subject, relation) of an answer item
    verdict: Verdict | None = None
    pending_reason: str = ""
    decision: GraphDecision | None = None
    unnamed: str | None = None  # a subject the templates read that the KB does not name
    readings: list[Reading] | None = None  # cached template readings of ``claim``
    unread: bool = False  # a clause not judged (filler, or text no template reads)


class Verifier:
    """Combined verdicts over a knowledge base: graph first, then the neural checker.

    Args:
        kb: the knowledge base.
        checker: the neural checker; None for graph-only verdicts (undecided claims are
            then not enough info).
        config: settings; defaults if None.

    Attributes:
        timings: cumulative seconds per stage: ``linking`` (reading claims, linking entities,
            the graph check), ``relations`` (relation detection for the fallback),
            ``retrieval``, ``checker``.

    Example:
        >>> v = Verifier(kb)  # doctest: +SKIP
        >>> v.verify(["The capital of Australia is Sydney."])[0].label  # doctest: +SKIP
        'refuted'
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        checker: FactChecker | None = None,
        config: VerifierConfig | None = None,
    ) -> None:
        self.kb = kb
        self.checker = checker
        self.config = config or VerifierConfig()
        k = self.config.evidence_k
        if k is None:
            meta = checker.metadata.get("data", {}) if checker else {}
            k = meta.get("evidence_k", DEFAULT_EVIDENCE_K)
        self.evidence_k = int(k)
        notes = self.config.alias_notes
        if notes is None:
            meta = checker.metadata.get("data", {}) if checker else {}
            notes = bool(meta.get("alias_notes", False))
        self.alias_notes = notes
        self.rule = decision_rule(checker, self.config.min_confidence)
        self.reader = ClaimReader(kb.graph)
        self.retriever = kb.retriever_for(RetrievalConfig(k=self.evidence_k))
        # Every passage names the entities it is about: a subject no passage names has only
        # graph facts to be read about, whatever retrieval would return.
        self._passages_linked = all(p.entities for p in kb.passages)
        self.timings: dict[str, float] = dict.fromkeys(
            ("linking", "relations", "retrieval", "checker"), 0.0
        )

    # -- public API --------------------------------------------------------------------------
    def verify(
        self, claims: Sequence[str], questions: Sequence[str | None] | None = None
    ) -> list[Verdict]:
        """One :class:`Verdict` per claim, in order.

        Args:
            claims: claim sentences, or answers when ``questions`` is given.
            questions: for each claim, the question it answers (None where it answers none).

        Raises:
            ValueError: ``questions`` and ``claims`` differ in length.
        """
        if questions is not None and len(questions) != len(claims):
            raise ValueError(
                f"`questions` ({len(questions)}) must have one entry per claim ({len(claims)})"
            )
        qs = list(questions) if questions is not None else [None] * len(claims)
        return self._run([_Job(c, q or None) for c, q in zip(claims, qs, strict=True)])

    def judge(self, items: Sequence[AnswerItem]) -> list[Verdict]:
        """Verdicts on answers to knowledge-base questions (see :meth:`judge_answers`).

        An item that names its (subject, relation), or whose question the schema's question
        templates read as one (:meth:`asked_pair`), is read by
        :func:`grounded.answers.read_answer`, as the evaluator and the graph judge read it:
        a sentence about another pair, or one that denies an object, states nothing about
        this one (not enough info); a sentence about this pair is checked by its objects.
        """
        jobs = []
        for it in items:
            given = (
                (it.subject, it.relation)
                if it.subject and it.relation and it.relation in self.kb.graph.schema
                else self.asked_pair(it.question)
                if it.question
                else None
            )
            job = _Job(it.answer, it.question or None, given)
            if given is not None:
                reading, claim = self.pair_claim(given[0], given[1], it.answer)
                if reading.read_as in UNANSWERED:
                    job.verdict = Verdict(
                        it.answer,
                        "not_enough_info",
                        1.0,
                        "none",
                        question=job.question,
                        subject=reading.subject or None,
                        relation=reading.relation or None,
                        reason="the answer states nothing about the question's subject and "
                        f"relation ({reading.read_as})",
                    )
                else:
                    job.claim = claim
            jobs.append(job)
        return self._run(jobs)

    def asked_pair(self, question: str) -> tuple[str, str] | None:
        """The (subject, relation) of the graph that ``question`` asks about, read by the
        schema's question templates (the most specific reading; among several entities of
        one name, the one that holds the relation); None when no template reads it."""
        graph = self.kb.graph
        for asked in self.reader.read_question(question):
            holders = [s for s in asked.subjects if graph.objects(s, asked.relation)]
            return (holders[0] if len(holders) == 1 else asked.subject), asked.relation
        return None

    def pair_claim(self, subject: str, relation: str, answer: str) -> tuple[AnswerReading, str]:
        """How ``answer`` reads for the pair (:func:`grounded.answers.read_answer`, the
        evaluator's reading) and the claim checked of it: the objects a statement gives
        for the pair (those the evaluator matched, when it scores the answer correct: "Y1,
        part of Y2" is checked at the level the KB holds); a short answer without lead-ins
        and hedges; else the answer as written."""
        reading = read_answer(self.kb.graph, subject, relation, answer)
        if reading.read_as == "statement":
            scored = score_answer(self.kb.graph, subject, relation, answer)
            objects = scored.matched if scored.outcome == "correct" else reading.objects
            return reading, format_answer(list(objects))
        if reading.read_as == "object" and reading.text:
            return reading, reading.text
        return reading, answer

    def judge_answers(self, items: Sequence[AnswerItem]) -> list[Label]:
        """One label per answer: implements :class:`grounded.types.AnswerJudge`.

        When an item names its (subject, relation), the graph checks the answer's object(s)
        directly; otherwise the answer is read in the context of its question. The
        abstention phrase is never refuted: it is ``not_enough_info``.
        """
        return [v.label for v in self.judge(items)]

    # -- stages ------------------------------------------------------------------------------
    def _run(self, texts: list[_Job]) -> list[Verdict]:
        t0 = time.perf_counter()
        groups = [self._clauses(job) for job in texts]
        jobs = [j for g in groups for j in g if not j.unread]
        fallback: list[tuple[_Job, list]] = []
        for job in jobs:
            if job.verdict is None:
                self._read(job, fallback)
        self.timings["linking"] += time.perf_counter() - t0
        if fallback:
            self._fallback(fallback)
        pending = [j for j in jobs if j.verdict is None]
        if pending:
            self._check(pending)
        if any(j.verdict is None for j in jobs):
            raise RuntimeError("internal error: a claim was left without a verdict")
        return [self._combine(job, g) for job, g in zip(texts, groups, strict=True)]

    def _clauses(self, job: _Job) -> list[_Job]:
        """One job per clause of ``job.claim`` (see :meth:`ClaimReader.clauses`).

        The first clause that states something keeps the question (or the given pair); the
        others are read as statements. Text a reading leaves unread becomes a clause of its
        own. In an answer, a later clause, and in any text a relative clause or a left-over
        tail, is judged only when a template reads it; otherwise it is reported as unread.
        """
        if job.verdict is not None or not _CONTENT.search(job.claim) or is_abstention(job.claim):
            return [job]  # decided already (an answer about another pair), empty or abstaining
        answer = job.question is not None or job.given is not None
        clauses = self.reader.clauses(job.claim, answer=answer)
        out: list[_Job] = []
        main: _Job | None = None
        pending = [(c.text, c.kind) for c in clauses]
        while pending:
            text, kind = pending.pop(0)
            if is_filler(text) or (text != job.claim and is_abstention(text)):
                out.append(_Job(text, unread=True))
                continue
            sub = _Job(text) if main is not None else _Job(text, job.question, job.given)
            sub.readings = self._readings(sub)
            if main is None:
                main = sub
            elif not sub.readings and (answer or kind in ("relative", "rest")):
                sub.unread = self.reader.unnamed_subject(text) is None
            out.append(sub)
            if sub.readings:
                tail = self.reader.unread_tail(text, sub.readings[0])
                if tail:
                    pending.insert(0, (tail, "rest"))
        if main is None:
            return [job]
        return out

    def _combine(self, job: _Job, clauses: list[_Job]) -> Verdict:
        """The worst verdict among the clauses that were read (:func:`worst_of`)."""
        if clauses == [job]:
            return job.verdict  # type: ignore[return-value]
        judged = [c for c in clauses if not c.unread]
        verdicts = [c.verdict for c in judged if c.verdict is not None]
        counted = [
            bool(c.readings) or c.unnamed is not None or v.label != "not_enough_info"
            for c, v in zip(judged, verdicts, strict=True)
        ]
        unread = [c.claim for c in clauses if c.unread]
        return worst_of(job.claim, job.question, verdicts, counted, unread)

    def _read(self, job: _Job, fallback: list[tuple[_Job, list]]) -> None:
        text = f"{job.question} {job.claim}" if job.question else job.claim
        if not _CONTENT.search(job.claim):
            job.verdict = Verdict(
                job.claim,
                "not_enough_info",
                1.0,
                "none",
                question=job.question,
                reason="empty claim",
            )
            return
        if is_abstention(job.claim):
            job.verdict = Verdict(
                job.claim,
                "not_enough_info",
                1.0,
                "none",
                question=job.question,
                reason="the answer abstains",
            )
            return
        mentions = self.kb.graph.linker.link(text)
        if not self.config.use_graph:
            if not mentions and self.config.require_entity:
                job.verdict = _no_entity(job)
            return
        readings = self._readings(job)
        if not readings and self.config.silence_is_nei and job.given is None:
            job.unnamed = self.reader.unnamed_subject(job.claim, job.question)
            if job.unnamed is not None:
                # The template says who the claim is about; linked objects ("Guatemala and
                # Honduras") must not be misread as its subject by the fallback.
                job.pending_reason = f"the knowledge base names no {job.unnamed!r}"
                return
        if not readings:
            if not mentions and self.config.require_entity:
                job.verdict = _no_entity(job)
            elif mentions and self.config.relation_fallback and not _NEGATION.search(text):
                fallback.append((job, mentions))
            else:
                job.pending_reason = "no template reads the claim"
            return
        decision = self._decide(readings)
        if decision.reading.negated and decision.result in _FLIP:
            decision = replace(
                decision,
                result=_FLIP[decision.result],
                reason=f"the claim denies it; {decision.reason}",
            )
        result = decision.result
        negated = _NEGATION.search(_without(text, decision.reading))
        if result != "unknown" and negated and not decision.reading.negated:
            job.decision, job.pending_reason = decision, "the claim is negated"
            return
        if result == "unknown" and any(c.ambiguous for c in decision.checks):
            # A merged name whose entities disagree: neither the graph nor a checker reading
            # retrieved facts of either entity can say which one the claim means.
            job.decision = decision
            job.verdict = replace(self._undecided(job, decision.reason), decided_by="graph")
            return
        if result == "unknown":
            job.decision, job.pending_reason = decision, decision.reason
            return
        job.verdict = self._graph_verdict(job, decision, 1.0)

    def _readings(self, job: _Job) -> list[Reading]:
        if job.readings is not None:
            return job.readings
        if job.given is not None:
            r = self.reader.read_given(job.given[0], job.given[1], job.claim)
            return [r] if r is not None else []
        if job.question:
            return self.reader.read_answer(job.question, job.claim)
        return self.reader.read(job.claim)

    def _decide(self, readings: list[Reading]) -> GraphDecision:
        """The first decisive reading among the most specific ones, else the first."""
        top = readings[0].specificity
        decisions = [decide(self.reader, r) for r in readings if r.specificity == top]
        return next((d for d in decisions if d.result != "unknown"), decisions[0])

    def _fallback(self, items: list[tuple[_Job, list]]) -> None:
        """Relation detection on the masked sentences, then the graph on linked entities."""
        t0 = time.perf_counter()
        masked = []
        for job, mentions in items:
            text = f"{job.question} {job.claim}" if job.question else job.claim
            for m in sorted(mentions, key=lambda m: -m.start):
                text = text[: m.start] + self.retriever.MASK + text[m.end :]
            masked.append(text)
        scores = self.retriever.relation_scores(self.kb.encoder.encode(masked))
        self.timings["relations"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for (job, mentions), probs in zip(items, scores, strict=True):
            relation, p = self._relation_of(probs, mentions)
            decision = None
            if p >= self.config.min_relation_prob:
                decision = self._decide_linked(relation, mentions)
            if decision is None:
                job.pending_reason = (
                    "no template reads the claim; the linked entities do not decide it"
                )
            else:
                job.verdict = self._graph_verdict(job, decision, p)
        self.timings["linking"] += time.perf_counter() - t0

    def _relation_of(self, probs: dict[str, float], mentions: list) -> tuple[str, float]:
        """The detected relation and its probability, among relations that a linked mention
        can be an object of (by type and by the relation's own objects), when any can.

        The masked sentence hides the object's words ("Niobium is a transition metal." reads
        as "[MASK] is a [MASK]."), so the sentence alone may pick a relation whose objects
        look nothing like the mention; the object's type and vocabulary tell them apart.
        """
        fits = {
            r: p
            for r, p in probs.items()
            if any(self.reader.compatible(r, m.surface) for m in mentions)
        }
        pool = fits or probs
        relation, p = max(pool.items(), key=lambda kv: kv[1])
        return relation, p / sum(pool.values())

    def _decide_linked(self, relation: str, mentions: list) -> GraphDecision | None:
        subjects = self.reader.relation_subjects.get(relation, frozenset())
        subj = [m for m in mentions if any(c in subjects for c in m.candidates)]
        obj = [m for m in mentions if self.reader.compatible(relation, m.surface)]
        decisions = []
        for s in subj:
            for o in obj:
                if o is s:
                    continue
                reading = Reading(relation, s.surface, s.candidates, (o.surface,), "linked")
                decisions.append(decide(self.reader, reading))
        supported = [d for d in decisions if d.result == "supported"]
        if supported:
            return supported[0]
        if len(decisions) == 1 and decisions[0].result == "contradicted":
            return decisions[0]
        return None

    def _check(self, jobs: list[_Job]) -> None:
        if self.checker is None:
            for job in jobs:
                job.verdict = self._undecided(
                    job, "no checker: " + (job.pending_reason or "undecided")
                )
            return
        if self.config.silence_is_nei and self._passages_linked:
            # Silent on a subject no passage is about: not enough info without retrieval, as
            # the evidence could hold only the graph's own facts (keeps the graph path fast).
            rest = []
            for job in jobs:
                d = job.decision
                if d is not None and d.silent and not self.kb.passages_by_entity.get(d.subject):
                    facts = self.kb.graph.facts(d.subject)[: self.evidence_k]
                    why = f"no passage of the knowledge base is about {d.subject!r}"
                    job.verdict = self._silent_verdict(job, d, self._as_evidence(facts), why)
                else:
                    rest.append(job)
            jobs = rest
            if not jobs:
                return
        texts = [f"{j.question} {j.claim}" if j.question else j.claim for j in jobs]
        t0 = time.perf_counter()
        evidence = self.retriever.retrieve_batch(texts)
        self.timings["retrieval"] += time.perf_counter() - t0
        checked: list[tuple[_Job, str, list[Evidence]]] = []
        for job, text, ev in zip(jobs, texts, evidence, strict=True):
            d = job.decision
            silent = self.config.silence_is_nei and (
                (d is not None and d.silent) or job.unnamed is not None
            )
            if silent and all(e.kind == "fact" for e in ev):
                job.verdict = self._silent_verdict(job, d, ev)
            else:
                checked.append((job, text, ev))
        if not checked:
            return
        t0 = time.perf_counter()
        preds = self.checker.predict(
            [text for _, text, _ in checked],
            [self._evidence_text(text, ev) for _, text, ev in checked],
            batch_size=self.config.checker_batch_size,
            rule=self.rule,
        )
        self.timings["checker"] += time.perf_counter() - t0
        for (job, _, ev), pred in zip(checked, preds, strict=True):
            d = job.decision
            label, confidence = pred.label, pred.confidence
            reason = f"the checker read {len(ev)} retrieved item(s); {pred.reason}"
            if job.pending_reason:
                reason += f"; graph: {job.pending_reason}"
            job.verdict = Verdict(
                job.claim,
                label,
                confidence,
                "checker",
                tuple(ev),
                job.question,
                d.reading.subject if d else None,
                d.relation if d else None,
                d.reading.objects if d else (),
                pred.probabilities,
                reason,
            )

    def _evidence_text(self, text: str, evidence: list[Evidence]) -> str:
        """What the checker reads: alias notes (when trained with them), then the evidence."""
        notes = alias_notes(self.kb.graph.linker, text) if self.alias_notes else []
        return join_evidence(notes + [e.text for e in evidence])

    # -- verdicts ----------------------------------------------------------------------------
    def _graph_verdict(self, job: _Job, d: GraphDecision, confidence: float) -> Verdict:
        result = d.result
        return Verdict(
            job.claim,
            _GRAPH_LABEL[result],
            confidence,
            "graph",
            tuple(self._fact_evidence(d)),
            job.question,
            d.reading.subject,
            d.relation,
            d.reading.objects,
            None,
            d.reason,
        )

    def _silent_verdict(
        self,
        job: _Job,
        d: GraphDecision | None,
        retrieved: list[Evidence],
        why: str | None = None,
    ) -> Verdict:
        """Not enough info: the graph is silent (or does not name the subject) and the
        evidence holds only its own facts."""
        if d is None:
            return Verdict(
                job.claim,
                "not_enough_info",
                1.0,
                "graph",
                tuple(retrieved),
                job.question,
                job.unnamed,
                reason=f"{job.pending_reason}; the {len(retrieved)} retrieved item(s) are "
                "knowledge-base facts, no passage: none can be about it",
            )
        evidence = {e.key: e for e in self._fact_evidence(d)}
        for e in retrieved:
            evidence.setdefault(e.key, e)
        return Verdict(
            job.claim,
            "not_enough_info",
            1.0,
            "graph",
            tuple(evidence.values()),
            job.question,
            d.reading.subject,
            d.relation,
            d.reading.objects,
            None,
            f"{d.reason}; "
            + (
                why
                or f"the {len(retrieved)} retrieved item(s) are knowledge-base facts, no passage"
            )
            + ": nothing the graph has not checked",
        )

    def _undecided(self, job: _Job, reason: str) -> Verdict:
        d = job.decision
        return Verdict(
            job.claim,
            "not_enough_info",
            1.0,
            "none",
            tuple(self._fact_evidence(d)) if d else (),
            job.question,
            d.reading.subject if d else None,
            d.relation if d else None,
            d.reading.objects if d else (),
            None,
            reason,
        )

    def _fact_evidence(self, d: GraphDecision) -> list[Evidence]:
        return self._as_evidence(d.facts)

    def _as_evidence(self, facts: Sequence[Triple]) -> list[Evidence]:
        out = []
        index = self.kb.index
        for t in facts:
            try:
                rid = index.id_of(t.key)
            except KeyError:
                rid = -1
            text = self.kb.graph.verbalize(t)
            out.append(Evidence(text, 1.0, "graph", "fact", t, rid, t.key, self.kb.provenance(t)))
        return out


def _no_entity(job: _Job) -> Verdict:
    return Verdict(
        job.claim,
        "not_enough_info",
        1.0,
        "none",
        question=job.question,
        reason="the claim names no entity of the knowledge base",
    )


def _without(text: str, reading: Reading) -> str:
    """``text`` with the reading's subject and objects blanked (names may contain "no")."""
    for part in (reading.subject, *reading.objects):
        if part:
            text = text.replace(part, " ")
    return text
