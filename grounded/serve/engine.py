"""The serving engine: the model, KB and checker loaded once, and one worker thread that owns
them and answers queued requests in batches.

The HTTP layer (:mod:`grounded.serve.app`) never touches the model: it submits a job and
awaits its future, so the event loop stays free while the worker generates. The worker takes
the first waiting job, waits ``batch_window_ms`` for more (each arrival extends the wait,
up to :data:`MAX_WINDOWS` windows; at most ``max_batch_size`` jobs),
then answers the chat jobs with one :meth:`GroundedModel.answer` call (``generation``
``packed``: prompts prefilled in groups of similar length, each row leaving the batch when
its answer ends; ``padded``: one left-padded call per ``max_tokens`` value), verifies all
their answers in one guard pass (the checker's batches shared across requests), and audits
all audit jobs in one :meth:`Auditor.audit_many` call.

Answers are :meth:`GroundedModel.answer`'s: the retrieval, prompt format and injection the
model was trained with (its ``grounding.json``), greedy decoding, so they equal those of
``grounded evaluate`` for the same questions.

Example:
    >>> engine = Engine.load("runs/demo/kb", "runs/demo/models/grounded")  # doctest: +SKIP
    >>> engine.start()  # doctest: +SKIP
    >>> engine.submit_chat("What is the capital of Mongolia?", 24).result().answer.text
    ... # doctest: +SKIP
    'Ulaanbaatar.'
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.serve.config import ServeConfig

if TYPE_CHECKING:
    from grounded.model.generate import Answer, GroundedModel
    from grounded.verify.audit import Auditor, AuditReport, Document
    from grounded.verify.guard import Guard, GuardedAnswer
    from grounded.verify.verdict import Verdict


MAX_WINDOWS = 4
"""The longest a batch waits to fill, in batch windows (``batch_window_ms``)."""


@dataclass
class ChatResult:
    """One answered question: the answer (after the guard, when one is set), the verdict on
    what the model said (None: no guard, or the model abstained) and the guard's record."""

    answer: Answer
    verdict: Verdict | None = None
    guarded: GuardedAnswer | None = None


@dataclass
class _Job:
    kind: str  # "chat" or "audit"
    future: Future
    question: str = ""
    max_new_tokens: int = 0
    documents: list[Document] = field(default_factory=list)


class Engine:
    """Owns the loaded artifacts and the worker thread (see the module).

    Args:
        model: the grounded model.
        auditor: answers audit requests (its KB and checker).
        guard: verifies answers before they are sent; None: answers go out as generated.
        config: batching settings.
        info: what ``/health`` reports about the artifacts (folders, checksums).
    """

    def __init__(
        self,
        model: GroundedModel,
        auditor: Auditor,
        guard: Guard | None = None,
        config: ServeConfig | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.auditor = auditor
        self.guard = guard
        self.config = config or ServeConfig()
        self.info = info or {}
        # Request handlers count prompt tokens in their own threads; the worker encodes with
        # the model's tokenizer. A fast tokenizer is not safe to share across threads.
        self._tokenizer = copy.deepcopy(model.tokenizer)
        self._tok_lock = threading.Lock()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Every key exists from the start: /health copies the counter while the worker counts.
        self.stats: Counter[str] = Counter(
            dict.fromkeys(("batches", "batched_jobs", "chat", "audit", "failed_batches"), 0)
        )
        # jobs per batch -> batches of that size (what the window actually formed)
        self.batch_sizes: Counter[int] = Counter()
        self.started = time.time()

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        kb: str | Path,
        model_dir: str | Path,
        checker: str | Path | None = None,
        config: ServeConfig | None = None,
    ) -> Engine:
        """Load and verify the KB, the model folder and the checker (each by its manifest).

        Raises:
            FileNotFoundError: a folder or a file its manifest lists is missing.
            ValueError: a file differs from its checksum, a JSON file is damaged, a weight
                is not finite (the messages of ``grounded evaluate`` and ``grounded audit``).
        """
        from grounded.kb import KnowledgeBase
        from grounded.model.generate import GroundedModel
        from grounded.verify.audit import Auditor
        from grounded.verify.guard import Guard, GuardConfig
        from grounded.verify.verifier import Verifier

        config = config or ServeConfig()
        knowledge = KnowledgeBase.load(kb)
        model = GroundedModel.from_pretrained(model_dir, knowledge, device=config.device or None)
        fact_checker = None
        if checker is not None:
            from grounded.factcheck.checker import FactChecker

            fact_checker = FactChecker.from_pretrained(checker)
        guard = None
        if config.guard != "off":
            guard = Guard(Verifier(knowledge, fact_checker), GuardConfig(config.guard))
        info = {
            "model": {
                "name": config.model_name or Path(model_dir).resolve().name,
                "folder": str(Path(model_dir).resolve()),
                "base_model": model.grounding.get("base_model"),
                "adapter": model.grounding.get("adapter"),
                "injection": list(model.modes),
                "prompt_format": (model.grounding.get("prompt_format") or {}).get("format"),
            },
            "kb": {
                "name": knowledge.name,
                "checksum": knowledge.checksum,
                "folder": str(Path(kb).resolve()),
            },
            "checker": str(Path(checker).resolve()) if checker is not None else None,
            "guard": config.guard,
        }
        return cls(model, Auditor(knowledge, fact_checker), guard, config, info)

    # -- limits ------------------------------------------------------------------------------
    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt the model was trained to read (``max_prompt_tokens``)."""
        return int(self.model.batcher.max_prompt_tokens)

    @property
    def context_positions(self) -> int | None:
        """The base model's positions (``max_position_embeddings``), when its config says."""
        config = getattr(self.model.model.lm, "config", None)
        value = getattr(config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) else None

    def prompt_limit(self, max_new_tokens: int) -> int:
        """Most tokens the question's prompt may have when ``max_new_tokens`` follow it."""
        limit = self.max_prompt_tokens
        if self.context_positions is not None:
            limit = min(limit, self.context_positions - max_new_tokens)
        return limit

    def prompt_tokens(self, question: str) -> int:
        """Tokens of ``question`` in the model's prompt format, before any evidence."""
        from grounded.data.prompts import format_prompt

        batcher = self.model.batcher
        text = batcher.prompt_text({"prompt": format_prompt(question)})
        with self._tok_lock:
            ids = self._tokenizer(text, add_special_tokens=batcher.frame is None)["input_ids"]
        return len(ids)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (for ``usage``)."""
        with self._tok_lock:
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- the worker --------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Jobs waiting for the worker."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="grounded-serve", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let the worker finish the jobs already queued, then end it."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit_chat(self, question: str, max_new_tokens: int) -> Future:
        """Queue a question; the future gives a :class:`ChatResult`."""
        job = _Job("chat", Future(), question=question, max_new_tokens=max_new_tokens)
        self._queue.put(job)
        return job.future

    def submit_audit(self, documents: Sequence[Document]) -> Future:
        """Queue documents to audit; the future gives their :class:`AuditReport`."""
        job = _Job("audit", Future(), documents=list(documents))
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        window = self.config.batch_window_ms / 1000
        size = self.config.max_batch_size
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = [first], False
            # Each arrival extends the wait by a window (a burst of clients answered by the
            # last batch comes back over a few ms), never beyond MAX_WINDOWS windows in all.
            start = time.monotonic()
            deadline = start + window
            while len(jobs) < size:
                left = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
                deadline = min(time.monotonic() + window, start + MAX_WINDOWS * window)
            self._process(jobs)
            if stop:
                return

    def _process(self, jobs: list[_Job]) -> None:
        live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        self.stats["batches"] += 1
        self.stats["batched_jobs"] += len(live)
        self.batch_sizes[len(live)] += 1
        chats = [j for j in live if j.kind == "chat"]
        audits = [j for j in live if j.kind == "audit"]
        if chats:
            self._guarded(self._answer, chats)
        if audits:
            self._guarded(self._audit, audits)

    def _guarded(self, fn: Any, jobs: list[_Job]) -> None:
        """Run ``fn(jobs)``; a failure fails those jobs' futures, never the worker."""
        try:
            fn(jobs)
        except Exception as e:  # the request gets a 500 naming it; the server keeps serving
            self.stats["failed_batches"] += 1
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(e)

    def _answer(self, jobs: list[_Job]) -> None:
        answers: dict[int, Answer] = {}
        if self.config.generation == "packed":
            # one batch whatever each request's max_tokens: a row leaves when it reaches its own
            groups = [jobs]
        else:
            by_length: dict[int, list[_Job]] = {}
            for j in jobs:
                by_length.setdefault(j.max_new_tokens, []).append(j)
            groups = list(by_length.values())
        packed = self.config.prefill_max_padding if self.config.generation == "packed" else None
        for group in groups:
            got = self.model.answer(
                [j.question for j in group],
                max_new_tokens=[j.max_new_tokens for j in group],
                batch_size=self.config.max_batch_size,
                packed=packed,
            )
            answers.update({id(j): a for j, a in zip(group, got, strict=True)})
        results = [ChatResult(answers[id(j)]) for j in jobs]
        if self.guard is not None:
            questions = [r.answer.question for r in results]
            said = [r.answer.text for r in results]
            verdicts = self.guard.verdicts(questions, said)  # one pass over every request
            guarded = self.guard.apply(questions, said, verdicts)
            for r, v, g in zip(results, verdicts, guarded, strict=True):
                r.verdict, r.guarded = v, g
                r.answer.original, r.answer.text, r.answer.guard_action = (
                    g.original,
                    g.text,
                    g.action,
                )
        for j, r in zip(jobs, results, strict=True):
            self.stats["chat"] += 1
            j.future.set_result(r)

    def _audit(self, jobs: list[_Job]) -> None:
        reports: list[AuditReport] = self.auditor.audit_many([j.documents for j in jobs])
        for j, r in zip(jobs, reports, strict=True):
            self.stats["audit"] += 1
            j.future.set_result(r)
