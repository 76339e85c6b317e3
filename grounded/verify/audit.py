"""Auditing model outputs against a knowledge base: text → claims → verdicts → a report.

Inputs are documents: free text, or an answer with the question it answers (the answer is
judged in the context of its question). Each document is split into sentence claims (very
long sentences are cut into chunks, never refused), claims are verified in batches by
:class:`~grounded.verify.verifier.Verifier`, and :class:`AuditReport` holds one row per
claim and totals with their denominators written out.

Files are read by suffix (:data:`READERS`): ``.jsonl`` (one object per line with ``text``,
or ``question`` and ``answer``; field names are settings) and plain ``.txt``/``.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.types import LABELS
from grounded.verify.verdict import DECIDED_BY, Verdict
from grounded.verify.verifier import Verifier, VerifierConfig
from kg import SourceFileError
from kg.clauses import join_enumeration
from kg.io import atomic_write_json, atomic_write_text
from kg.loaders import decoded_lines, jsonl_objects
from kg.text import list_pieces, split_sentences

if TYPE_CHECKING:
    from grounded.factcheck.checker import FactChecker
    from grounded.kb import KnowledgeBase


@dataclass(frozen=True)
class Document:
    """One model output to audit.

    Attributes:
        text: the output (the answer, when ``question`` is set).
        question: the question it answers, if any.
        source: where it came from, for the report (``outputs.jsonl:3``, ``text``).
    """

    text: str
    question: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Claim:
    """One sentence of a document, with the document's question, source and position
    (``document``: its index among the audited documents)."""

    text: str
    question: str | None = None
    source: str = ""
    document: int = 0


@dataclass
class AuditConfig:
    """Settings of :class:`Auditor` and of reading its input files."""

    max_claim_chars: int = field(
        default=500,
        metadata={"help": "Longest claim; longer sentences are cut into chunks of this size."},
    )
    claims_per_batch: int = field(default=512, metadata={"help": "Claims verified per batch."})
    text_field: str = field(default="text", metadata={"help": "JSONL field with free text."})
    question_field: str = field(
        default="question", metadata={"help": "JSONL field with the question."}
    )
    answer_field: str = field(
        default="answer", metadata={"help": "JSONL field with the answer to the question."}
    )
    id_field: str = field(default="id", metadata={"help": "JSONL field naming the record."})
    evidence_shown: int = field(
        default=2, metadata={"help": "Evidence items shown per claim in report.md."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap intervals."})
    n_boot: int = field(default=1000, metadata={"help": "Bootstrap resamples per interval."})

    def __post_init__(self) -> None:
        if self.max_claim_chars < 20:
            raise ValueError(f"`max_claim_chars` must be >= 20, got {self.max_claim_chars}")
        if self.claims_per_batch < 1:
            raise ValueError(f"`claims_per_batch` must be >= 1, got {self.claims_per_batch}")
        if self.evidence_shown < 0:
            raise ValueError(f"`evidence_shown` must be >= 0, got {self.evidence_shown}")
        if self.n_boot < 1:
            raise ValueError(f"`n_boot` must be >= 1, got {self.n_boot}")


AUDIT_KIND = "grounded-audit"
"""The ``kind`` of an audit's ``report.json`` (so ``--out`` never replaces another artifact)."""

# -- reading input files -------------------------------------------------------------------------
Reader = Callable[[Path, AuditConfig], list[Document]]
READERS: dict[str, Reader] = {}
"""File suffix → function reading documents from such a file."""


def register_reader(*suffixes: str) -> Callable[[Reader], Reader]:
    """Decorator: read files ending in ``suffixes`` (".jsonl") with the decorated function."""

    def deco(fn: Reader) -> Reader:
        for s in suffixes:
            READERS[s.lower()] = fn
        return fn

    return deco


def _lines(path: Path) -> list[tuple[int, str]]:
    """``(line_number, text)`` of a UTF-8 file, read as the knowledge-source loaders read.

    Raises:
        kg.SourceFileError: lines that are not UTF-8, each named by file and line.
    """
    errors: list[tuple[str, int, str]] = []
    lines = list(decoded_lines(path, errors))
    if errors:
        raise SourceFileError(errors)
    return lines


@register_reader(".txt", ".md", ".text")
def read_text(path: Path, config: AuditConfig) -> list[Document]:
    """The whole file as one document.

    Raises:
        kg.SourceFileError: the file is not UTF-8 (each bad line named).
    """
    return [Document("\n".join(text for _, text in _lines(path)), None, str(path))]


@register_reader(".jsonl", ".ndjson")
def read_jsonl(path: Path, config: AuditConfig) -> list[Document]:
    """One document per line: ``text``, or ``question`` + ``answer`` (names from ``config``).

    Raises:
        kg.SourceFileError: bad lines (invalid JSON, missing fields, not UTF-8), each named
            by file and line (all reported at once).
    """
    docs, errors = [], []
    tf, qf, af = config.text_field, config.question_field, config.answer_field
    for n, obj in jsonl_objects(path, errors):
        source = f"{path.name}:{n}" + (
            f" ({obj[config.id_field]})" if config.id_field in obj else ""
        )
        if isinstance(obj.get(af), str) and isinstance(obj.get(qf), str):
            docs.append(Document(obj[af], obj[qf], source))
        elif isinstance(obj.get(tf), str):
            docs.append(
                Document(obj[tf], obj.get(qf) if isinstance(obj.get(qf), str) else None, source)
            )
        else:
            has = sorted(obj)
            errors.append(
                (
                    str(path),
                    n,
                    f"missing field `{tf}` (or `{qf}` and `{af}`) as a string; the line has "
                    f"{has}; set `--text-field`/`--question-field`/`--answer-field` to match",
                )
            )
    if errors:
        raise SourceFileError(errors)
    return docs


def read_documents(path: str | Path, config: AuditConfig | None = None) -> list[Document]:
    """Documents from a file, read by its suffix (see :data:`READERS`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        ValueError: unknown suffix.
        kg.SourceFileError: lines that are not UTF-8, bad JSONL lines (file and line); a
            ``ValueError``.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in READERS)[:3]
        raise IsADirectoryError(
            f"input {path} is a folder; give one file to audit ({', '.join(sorted(READERS))})"
            + (f", e.g. {path / found[0]}" if found else "")
        )
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{path}: unknown input type {path.suffix!r}; use one of {sorted(READERS)}"
        )
    return reader(path, config or AuditConfig())


# -- the report ----------------------------------------------------------------------------------
def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "numerator": numerator,
        "denominator": denominator,
        "rate": numerator / denominator if denominator else None,
    }


def _interval(hits: Sequence[bool], seed: int, n_boot: int) -> dict[str, Any]:
    """``_rate`` of ``hits`` with a seeded 95% percentile-bootstrap interval (``low``,
    ``high``; None when there is nothing to resample)."""
    from grounded.evaluation.metrics import bootstrap_rate

    r = bootstrap_rate(list(hits), seed=seed, n_boot=n_boot)
    return {**_rate(r.numerator, r.denominator), "low": r.low, "high": r.high}


def document_paths(
    documents: int, claims: Sequence[Claim], verdicts: Sequence[Verdict]
) -> tuple[list[bool], list[str]]:
    """Per document: does it have a claim that is not supported, and which path decided it.

    The path is that of its first unsupported claim (the verdict that flags the document),
    else of its first claim (the verdicts that cleared it); ``"no claim"`` when the
    document has none.
    """
    flagged = [False] * documents
    path = ["no claim"] * documents
    for c, v in zip(claims, verdicts, strict=True):
        d = c.document
        if v.label != "supported" and not flagged[d]:
            flagged[d], path[d] = True, v.decided_by
        elif path[d] == "no claim":
            path[d] = v.decided_by
    return flagged, path


def detection_rates(
    flagged: Sequence[bool],
    hallucinated: Sequence[bool],
    paths: Sequence[str],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """How well an audit finds hallucinated answers, overall and per deciding path.

    Args:
        flagged: per answer, the audit found an unsupported claim.
        hallucinated: per answer, the reference (an exact check) says it is wrong.
        paths: per answer, the path that decided it (:func:`document_paths`).
        seed, n_boot: bootstrap settings.

    Returns:
        ``detection`` (flagged among hallucinated) and ``false_alarm`` (flagged among
        correct), each with a 95% interval and its denominator, and ``by_path``: the same
        two per path (``graph``, ``checker``, ``none``...).

    Raises:
        ValueError: the three sequences differ in length.

    Example:
        >>> r = detection_rates([True, False, True, False], [True, True, False, False],
        ...                     ["graph", "checker", "checker", "graph"], n_boot=10)
        >>> r["detection"]["rate"], r["by_path"]["graph"]["detection"]["rate"]
        (0.5, 1.0)
    """
    if not len(flagged) == len(hallucinated) == len(paths):
        raise ValueError(
            f"`flagged` ({len(flagged)}), `hallucinated` ({len(hallucinated)}) and `paths` "
            f"({len(paths)}) must have one entry per answer"
        )

    def rates(idx: list[int]) -> dict[str, Any]:
        return {
            "detection": _interval([flagged[i] for i in idx if hallucinated[i]], seed, n_boot),
            "false_alarm": _interval(
                [flagged[i] for i in idx if not hallucinated[i]], seed, n_boot
            ),
        }

    everything = list(range(len(flagged)))
    out = rates(everything)
    out["by_path"] = {
        p: rates([i for i in everything if paths[i] == p]) for p in sorted(set(paths))
    }
    return out


@dataclass
class AuditReport:
    """One row per claim and totals with denominators.

    Attributes:
        claims: the claims, in document order.
        verdicts: one verdict per claim.
        documents: how many documents were audited.
        info: knowledge base, checker and settings, as recorded in ``report.json``.
        timings: seconds per stage (``splitting``, ``linking``, ``relations``, ``retrieval``,
            ``checker``) and ``total``.
        seed, n_boot: settings of the bootstrap intervals.
    """

    claims: list[Claim]
    verdicts: list[Verdict]
    documents: int
    info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    n_boot: int = 1000

    def totals(self) -> dict[str, Any]:
        """Counts per label and path; refuted / all claims; refuted + not enough info / all;
        and per document (answer): the share with a refuted claim, and the share with an
        unsupported claim (refuted or not enough info), the hallucination rate of the set of
        outputs, with a seeded 95% bootstrap interval over documents. A document without a
        claim counts in the denominator as clean (``documents_without_claims`` says how many).
        """
        n = len(self.verdicts)
        labels = {lab: sum(v.label == lab for v in self.verdicts) for lab in LABELS}
        refuted_docs = {
            c.document
            for c, v in zip(self.claims, self.verdicts, strict=True)
            if v.label == "refuted"
        }
        flagged, paths = document_paths(self.documents, self.claims, self.verdicts)
        return {
            "claims": n,
            "documents": self.documents,
            "documents_without_claims": sum(p == "no claim" for p in paths),
            "labels": labels,
            "decided_by": {p: sum(v.decided_by == p for v in self.verdicts) for p in DECIDED_BY},
            "refuted": _rate(labels["refuted"], n),
            "refuted_or_not_enough_info": _rate(labels["refuted"] + labels["not_enough_info"], n),
            "documents_with_refuted_claim": _rate(len(refuted_docs), self.documents),
            "documents_with_unsupported_claim": _interval(flagged, self.seed, self.n_boot),
        }

    def detection(self, hallucinated: Sequence[bool]) -> dict[str, Any]:
        """The audit's detection and false-alarm rates against a reference, per deciding path.

        Args:
            hallucinated: one flag per audited document (answer), from a reference such as
                the knowledge base's exact check.

        Returns:
            See :func:`detection_rates`.

        Raises:
            ValueError: ``hallucinated`` does not have one entry per document.
        """
        if len(hallucinated) != self.documents:
            raise ValueError(
                f"`hallucinated` has {len(hallucinated)} entries; the audit had "
                f"{self.documents} document(s)"
            )
        flagged, paths = document_paths(self.documents, self.claims, self.verdicts)
        return detection_rates(flagged, hallucinated, paths, seed=self.seed, n_boot=self.n_boot)

    def to_dict(self) -> dict[str, Any]:
        total = self.timings.get("total", 0.0)
        return {
            "kind": AUDIT_KIND,
            **self.info,
            "totals": self.totals(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "claims_per_second": round(len(self.claims) / total, 2) if total else None,
            "rows": [
                {"id": i, "source": c.source, "document": c.document, **v.to_dict()}
                for i, (c, v) in enumerate(zip(self.claims, self.verdicts, strict=True), 1)
            ],
        }

    def to_markdown(self, evidence_shown: int = 2) -> str:
        """The report as Markdown: totals with denominators, then one table row per claim."""
        t = self.totals()
        kb = self.info.get("kb", {})
        checker = self.info.get("checker") or {}
        lines = [
            "# Audit report",
            "",
            f"Knowledge base: {kb.get('name', '?')} (checksum {str(kb.get('checksum', ''))[:12]}) "
            f"· checker: {checker.get('path', 'none (graph only)')} "
            f"· {t['documents']} document(s), {t['claims']} claim(s)",
            "",
            "## Totals",
            "",
            "| measure | count / claims | rate |",
            "|---|---:|---:|",
        ]
        for name, key in (
            ("refuted", "refuted"),
            ("refuted or not enough info", "refuted_or_not_enough_info"),
        ):
            r = t[key]
            lines.append(f"| {name} | {r['numerator']} / {r['denominator']} | {_pct(r['rate'])} |")
        for lab in LABELS:
            count = t["labels"][lab]
            rate = _pct(_div(count, t["claims"]))
            lines.append(f"| {lab} | {count} / {t['claims']} | {rate} |")
        d = t["documents_with_refuted_claim"]
        u = t["documents_with_unsupported_claim"]
        interval = (
            f", 95% interval {_pct(u['low'])}–{_pct(u['high'])}" if u["low"] is not None else ""
        )
        lines += [
            "",
            f"Documents (answers) with an unsupported claim: {u['numerator']} / "
            f"{u['denominator']} ({_pct(u['rate'])}{interval}; documents without a claim: "
            f"{t['documents_without_claims']}).",
            "",
            f"Documents with a refuted claim: {d['numerator']} / {d['denominator']} "
            f"({_pct(d['rate'])}). Decided by: "
            + ", ".join(f"{k} {v}" for k, v in t["decided_by"].items())
            + ".",
            "",
            "## Claims",
            "",
            "| # | source | claim | verdict | confidence | decided by | evidence |",
            "|---:|---|---|---|---:|---|---|",
        ]
        for i, (c, v) in enumerate(zip(self.claims, self.verdicts, strict=True), 1):
            claim = f"{c.question} → {c.text}" if c.question else c.text
            ev = (
                " / ".join(
                    e.text + (f" (supported by: {e.provenance})" if e.provenance else "")
                    for e in v.evidence[:evidence_shown]
                )
                or "—"
            )
            lines.append(
                f"| {i} | {_cell(c.source)} | {_cell(claim)} | {v.label} | {v.confidence:.3f} "
                f"| {v.decided_by} | {_cell(ev)} |"
            )
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path, *, evidence_shown: int = 2) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``out_dir``; returns both paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        j = atomic_write_json(out / "report.json", self.to_dict())
        m = atomic_write_text(out / "report.md", self.to_markdown(evidence_shown))
        return j, m


def _div(a: int, b: int) -> float | None:
    return a / b if b else None


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}%"


def _cell(text: str, limit: int = 300) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the auditor ---------------------------------------------------------------------------------
class Auditor:
    """Audits documents against a knowledge base (graph first, then the neural checker).

    Args:
        kb: the knowledge base.
        checker: the neural checker, or None for graph-only verdicts.
        config: audit settings.
        verifier_config: settings of the underlying :class:`Verifier`.

    Example:
        >>> report = Auditor(kb).audit_text("The capital of Australia is Sydney.")  # doctest: +SKIP
        >>> report.totals()["refuted"]  # doctest: +SKIP
        {'numerator': 1, 'denominator': 1, 'rate': 1.0}
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        checker: FactChecker | None = None,
        config: AuditConfig | None = None,
        verifier_config: VerifierConfig | None = None,
    ) -> None:
        self.kb = kb
        self.checker = checker
        self.config = config or AuditConfig()
        self.verifier = Verifier(kb, checker, verifier_config)

    def claims(self, docs: Iterable[Document]) -> list[Claim]:
        """Sentence claims of each document; an answer's sentences keep its question.

        An answer (a document with a question) keeps sentences without a letter ("2006.",
        "1,234"): a number answers the question. So does a text with no letter at all. In
        other text such sentences ("1." of a numbered list) are dropped; punctuation alone
        always is.

        A sentence longer than ``max_claim_chars`` that lists names ("Mongolia borders A, B,
        ..., Z.") is cut between its items, and each piece repeats the sentence's lead
        ("Mongolia borders ..."), so every item is judged with its subject and relation, not
        only those of the first piece (:func:`list_pieces`). Other long sentences are cut at
        whitespace.
        """
        out = []
        linker = self.kb.graph.linker
        limit = self.config.max_claim_chars
        for d, doc in enumerate(docs):
            # "1. China 2. Russia" is one listing, not the sentences "1." and "China 2.".
            text = join_enumeration(doc.text)
            mentions = linker.link(text)
            protect = [(m.start, m.end) for m in mentions]
            keep_numbers = doc.question is not None or not any(ch.isalpha() for ch in text)
            for a, b in split_sentences(
                text, protect=protect, max_chars=max(limit, len(text)),
                keep_numbers=keep_numbers,
            ):  # fmt: skip
                sentence = text[a:b]
                if len(sentence) <= limit:
                    out.append(Claim(sentence, doc.question, doc.source, d))
                    continue
                spans = [(m.start - a, m.end - a) for m in mentions if a <= m.start < b]
                pieces = list_pieces(sentence, limit, spans) or [
                    sentence[x:y]
                    for x, y in split_sentences(sentence, max_chars=limit, keep_numbers=True)
                ]
                out.extend(Claim(p, doc.question, doc.source, d) for p in pieces)
        return out

    def audit(self, docs: Sequence[Document], *, show_progress: bool = False) -> AuditReport:
        """Verify every claim of ``docs`` in batches and build the report."""
        return self.audit_many([docs], show_progress=show_progress)[0]

    def audit_many(
        self, batches: Sequence[Sequence[Document]], *, show_progress: bool = False
    ) -> list[AuditReport]:
        """One report per list of documents, all their claims verified in shared batches.

        The reports equal those of :meth:`audit` on each list alone, except ``timings``:
        each report carries the timings of the whole call (a server answering several audit
        requests at once fills the checker's batches across them).
        """
        from tqdm.auto import tqdm

        before = dict(self.verifier.timings)
        t0 = time.perf_counter()
        claims = [self.claims(docs) for docs in batches]
        splitting = time.perf_counter() - t0
        flat = [c for cs in claims for c in cs]
        verdicts: list[Verdict] = []
        size = self.config.claims_per_batch
        with tqdm(total=len(flat), desc="auditing", unit="claim", disable=not show_progress) as bar:
            for i in range(0, len(flat), size):
                chunk = flat[i : i + size]
                verdicts += self.verifier.verify(
                    [c.text for c in chunk], [c.question for c in chunk]
                )
                bar.update(len(chunk))
        timings = {"splitting": splitting}
        timings.update({k: v - before.get(k, 0.0) for k, v in self.verifier.timings.items()})
        timings["total"] = time.perf_counter() - t0
        info, reports, start = self._info(), [], 0
        for docs, cs in zip(batches, claims, strict=True):
            mine = verdicts[start : start + len(cs)]
            start += len(cs)
            reports.append(
                AuditReport(
                    cs, mine, len(docs), info, dict(timings), self.config.seed, self.config.n_boot
                )
            )
        return reports

    def audit_text(self, text: str, *, source: str = "text") -> AuditReport:
        """Audit one free text."""
        return self.audit([Document(text, None, source)])

    def audit_pairs(self, pairs: Iterable[tuple[str, str]]) -> AuditReport:
        """Audit (question, answer) pairs; each answer is judged in its question's context."""
        return self.audit([Document(a, q, f"pair {i}") for i, (q, a) in enumerate(pairs, 1)])

    def audit_file(self, path: str | Path, *, show_progress: bool = False) -> AuditReport:
        """Audit a ``.jsonl`` or text file (see :func:`read_documents`)."""
        return self.audit(read_documents(path, self.config), show_progress=show_progress)

    def _info(self) -> dict[str, Any]:
        checker = None
        if self.checker is not None:
            meta = self.checker.metadata
            checker = {
                "path": str(self.checker.path) if self.checker.path else None,
                "kb": meta.get("kb"),
                "base_model": meta.get("base_model"),
            }
        return {
            "kb": {
                "name": self.kb.name,
                "checksum": self.kb.checksum,
                "path": str(self.kb.path) if self.kb.path else None,
            },
            "checker": checker,
            "settings": {
                "evidence_k": self.verifier.evidence_k,
                "alias_notes": self.verifier.alias_notes,
                "decision_rule": self.verifier.rule.to_dict(),
                "silence_is_nei": self.verifier.config.silence_is_nei,
                "max_claim_chars": self.config.max_claim_chars,
                "claims_per_batch": self.config.claims_per_batch,
            },
        }
