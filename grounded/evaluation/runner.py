"""`evaluate`: every variant answers the same questions; answers are scored; a report is written.

The protocol is ../shared/DESIGN.md's: the questions come from the entity groups the trained
models share (``groups.json``), decoding is greedy for all, evidence comes from the real
retriever (never the gold fact handed over), and answers are scored against the graph
(:func:`~grounded.answers.score_answer`). The fact-checker is consulted only
for free-text answers the exact check cannot read: a sentence the checker finds
``supported`` counts as correct. With a checker, the report also scores the checker as an
auditor of the answers (its hallucination-detection rate against the exact check).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.answers import score_answer
from grounded.data.groups import GROUPS, EntityGroups
from grounded.evaluation.counterfactual import counterfactual_graph, with_counterfactual_evidence
from grounded.evaluation.groups import baseline_groups
from grounded.evaluation.metrics import bootstrap_rate
from grounded.evaluation.questions import EvalQuestion, build_questions
from grounded.evaluation.report import (
    BASELINES,
    GUARD_SEPARATOR,
    KB_COVERED,
    ablation_findings,
    ordered,
    summarize,
    variant_settings,
    write_report,
)
from grounded.evaluation.targets import check_targets, load_targets
from grounded.types import AnswerItem
from grounded.verify.guard import GUARD_MODES
from kg.io import atomic_write_text

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.model.bases import ResolvedBase
    from grounded.types import AnswerJudge
    from kg import KnowledgeGraph

GROUPS_FILE = "groups.json"
ANSWERS_FILE = "answers.jsonl"


@dataclass
class EvaluateConfig:
    """Settings of ``grounded evaluate`` and :func:`evaluate`."""

    per_group: int = field(
        default=200,
        metadata={"help": "Questions per entity group (a seeded sample; 0: every pair)."},
    )
    baselines: list[str] = field(
        default_factory=lambda: list(BASELINES),
        metadata={
            "help": "Untrained variants of the base model: base (zero-shot) and rag (retrieved "
            "facts in the prompt); empty for none."
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Questions generated per batch."})
    max_new_tokens: int = field(default=24, metadata={"help": "Tokens generated per answer."})
    free_text_words: int = field(
        default=6,
        metadata={
            "help": "Answers the exact check cannot match with at least this many words are "
            "free text and go to the fact-checker (when one is given)."
        },
    )
    targets: str = field(
        default="",
        metadata={
            "help": "YAML or JSON file of acceptance targets to check against the rates "
            "(grounded.evaluation.targets; the project's own: bench/targets.yaml); empty: "
            "the report states the rates only."
        },
    )
    guard: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Variants also scored behind the guard (grounded.verify.guard): each "
            "stated answer verified against the KB (and the checker, when given) from its "
            "question alone, then kept, revised or abstained; reported as VARIANT+MODE."
        },
    )
    guard_modes: list[str] = field(
        default_factory=lambda: ["abstain", "revise"],
        metadata={"help": "Guard modes scored for each `guard` variant: abstain, revise."},
    )
    probe_pairs: int = field(
        default=300,
        metadata={
            "help": "Without trained models (whose groups.json decides the groups) and for a "
            "base not made by `grounded pretrain`: pairs probed closed-book to decide the "
            "known and unknown groups (as `grounded train` does); 0: every pair unknown."
        },
    )
    counterfactual: int = field(
        default=100,
        metadata={
            "help": "Without trained models: pairs in the counterfactual group (their "
            "evidence states another object; the right answer follows it)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the question sample and bootstrap."})
    n_boot: int = field(default=1000, metadata={"help": "Bootstrap resamples per interval."})
    plots: bool = field(default=True, metadata={"help": "Write the PNG plots."})

    def __post_init__(self) -> None:
        self.baselines = list(self.baselines)
        bad = [b for b in self.baselines if b not in BASELINES]
        if bad:
            raise ValueError(f"`baselines` must be among {list(BASELINES)}, got {bad}")
        self.guard, self.guard_modes = list(self.guard), list(self.guard_modes)
        bad = [m for m in self.guard_modes if m not in GUARD_MODES]
        if bad or (self.guard and not self.guard_modes):
            raise ValueError(
                f"`guard_modes` must be among {list(GUARD_MODES)} (at least one when `guard` "
                f"names variants), got {self.guard_modes}"
            )
        if self.per_group < 0:
            raise ValueError(f"`per_group` must be >= 0 (0: every pair), got {self.per_group}")
        if self.probe_pairs < 0 or self.counterfactual < 0:
            raise ValueError(
                f"`probe_pairs` and `counterfactual` must be >= 0, got {self.probe_pairs} and "
                f"{self.counterfactual}"
            )
        for name in ("batch_size", "max_new_tokens", "free_text_words", "n_boot"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")


@dataclass
class EvalResult:
    """What :func:`evaluate` wrote: the report dict and the files."""

    report: dict[str, Any]
    files: list[Path]
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)


def shared_groups(models: Mapping[str, str | Path]) -> EntityGroups | None:
    """The entity groups every trained model in ``models`` was trained with.

    Raises:
        FileNotFoundError: a model folder lacks ``groups.json``.
        ValueError: two models were trained on different groups (their answers would not be
            comparable: retrain them with the same ``seed``, ``seen_fraction`` and base).
    """
    groups: EntityGroups | None = None
    first = ""
    for name, path in models.items():
        file = Path(path) / GROUPS_FILE
        if not file.is_file():
            raise FileNotFoundError(
                f"model {name!r}: {file} is missing; pass folders written by `grounded train`"
            )
        g = EntityGroups.load(file)
        if groups is None:
            groups, first = g, name
        elif (
            any(g.pairs(x) != groups.pairs(x) for x in GROUPS)
            or g.counterfactual_facts != groups.counterfactual_facts
        ):
            raise ValueError(
                f"models {first!r} and {name!r} were trained on different entity groups, so "
                "their answers are not comparable; train every variant with the same `seed`, "
                "`seen_fraction`, `out_of_kb` and base model"
            )
    return groups


def baseline_prompt(models: Mapping[str, str | Path]) -> tuple[str, str | None]:
    """The prompt format and system prompt the baselines use: those the trained ``models``
    recorded when they all agree (so every variant reads the same prompts), else the
    training defaults (``auto`` and :data:`~grounded.data.prompts.SYSTEM_PROMPT`)."""
    from grounded.data.prompts import SYSTEM_PROMPT
    from grounded.model.artifacts import read_grounding
    from grounded.model.generate import recorded_prompt_format, recorded_system_prompt

    seen = set()
    for path in models.values():
        g = read_grounding(path)
        seen.add((recorded_prompt_format(g), recorded_system_prompt(g)))
    return seen.pop() if len(seen) == 1 else ("auto", SYSTEM_PROMPT)


def _answerer(
    name: str,
    path: str | Path | None,
    base: ResolvedBase,
    kb: KnowledgeBase,
    prompt: tuple[str, str | None],
) -> Any:
    from grounded.model.generate import GroundedModel

    if path is None:
        fmt, system = prompt
        return GroundedModel.from_base(
            base, kb, text_evidence=name == "rag", prompt_format=fmt, system_prompt=system
        )
    return GroundedModel.from_pretrained(path, kb, base=base)


def evaluate(
    kb: KnowledgeBase | str | Path,
    base: str | Path | ResolvedBase,
    models: Mapping[str, str | Path],
    out: str | Path,
    config: EvaluateConfig | None = None,
    *,
    checker: str | Path | None = None,
    judge: AnswerJudge | None = None,
    command: str | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
    base_cache: str | Path | None = None,
) -> EvalResult:
    """Evaluate the baselines and the trained ``models`` on the same questions.

    Args:
        kb: the knowledge base (object or folder) the models were trained against.
        base: the base model (the baselines use it; trained models load on it): a folder,
            a ``.gguf`` file, a name such as ``smollm2``, or a resolved one (see
            :func:`~grounded.model.bases.resolve_base`).
        models: variant name → trained model folder (``sft``, ``raft``, ``grounded``,
            ``no_constraint``, ``no_feedback``, ``no_embedding``, or any name).
        out: the report folder (``report.json``, ``report.md``, ``answers.jsonl``, plots).
        config: settings; defaults if None.
        checker: a fact-checker folder: judges free-text answers and is scored as an auditor.
        judge: an :class:`~grounded.types.AnswerJudge` to use instead of ``checker``'s.
        command: the command line to record in the report.
        show_progress: progress bars.
        log: where progress lines go (default: stderr).
        base_cache: where a GGUF base is converted to (default: ``$GROUNDED_CACHE/bases``,
            else ``~/.cache/grounded/bases``).

    Raises:
        ValueError: no variant to evaluate, a variant named twice, or models trained on
            different groups.
        FileNotFoundError: ``kb``, ``base``, a model folder or ``checker`` is missing.
    """
    from tqdm.auto import tqdm

    from grounded.kb import KnowledgeBase
    from grounded.model.bases import resolve_base

    config = config or EvaluateConfig()
    base = resolve_base(base, cache_dir=base_cache)  # once: every variant loads this folder
    log = log or (lambda s: print(s, file=sys.stderr))
    kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase.load(kb)
    clash = sorted(set(config.baselines) & set(models))
    if clash:
        raise ValueError(f"variant names {clash} are baselines; name the trained models otherwise")
    variants: dict[str, str | Path | None] = dict.fromkeys(config.baselines)
    variants.update(models)
    if not variants:
        raise ValueError("nothing to evaluate: give trained models or keep `baselines`")
    unknown = [v for v in config.guard if v not in variants]
    if unknown:
        raise ValueError(
            f"`guard` names variants not evaluated here: {unknown}; choose among "
            f"{ordered(variants)}"
        )
    groups = shared_groups(models)
    if groups is None:
        groups = baseline_groups(kb, base, config, prompt=baseline_prompt({}))
    if groups.kb_checksum and groups.kb_checksum != kb.checksum:
        log(
            f"warning: the models were trained against another version of this KB (checksum "
            f"{groups.kb_checksum[:12]}… vs {kb.checksum[:12]}…); gold answers are today's"
        )
    questions = build_questions(kb.graph, groups, per_group=config.per_group, seed=config.seed)
    if judge is None and checker is not None:
        from grounded.factcheck import FactChecker
        from grounded.verify import Verifier

        judge = Verifier(kb, FactChecker.from_pretrained(checker))
    guard_verifier = None
    verified: dict[tuple[str, int], Any] = {}  # (variant, question id) → the guard's verdict
    if config.guard:
        from grounded.verify.verifier import Verifier

        # The guard reads answers as `grounded audit` would: the judge's verifier when there
        # is one, else the graph alone (answers it cannot decide are unsupported).
        guard_verifier = judge if isinstance(judge, Verifier) else Verifier(kb)
        if judge is None:
            log("note: no `checker`: the guard decides by the graph alone")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    # Counterfactual questions are scored against the facts their evidence states.
    cf_graph = counterfactual_graph(kb.graph, groups)
    evidence_cache: dict[str, list] = {}
    recorded: dict[str, dict] = {}
    prompt = baseline_prompt(models)
    for name in tqdm(ordered(variants), desc="variants", disable=not show_progress):
        t0 = time.perf_counter()
        model = _answerer(name, variants[name], base, kb, prompt)
        recorded[name] = variant_settings(model.grounding, model.modes)
        texts = [q.question for q in questions]
        key = model.retrieval_key
        if key is not None and key not in evidence_cache:
            # Variants trained with the same retrieval settings read the same evidence:
            # retrieve (encode every question) once, not once per variant.
            evidence_cache[key] = with_counterfactual_evidence(kb, questions, model.retrieve(texts))
        answers = model.answer(
            texts,
            batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens,
            evidence=evidence_cache.get(key) if key is not None else None,
        )
        rows.extend(_score(kb, name, questions, answers, judge, config, cf_graph))
        timings[name] = round(time.perf_counter() - t0, 2)
        log(f"  {name}: {len(questions)} answers in {timings[name]:.1f}s")
        if name in config.guard and guard_verifier is not None:
            t0 = time.perf_counter()
            rows.extend(
                _guarded(
                    kb, name, questions, answers, guard_verifier, judge, config, verified, cf_graph
                )
            )
            timings[f"{name} (guard)"] = round(time.perf_counter() - t0, 2)
        del model, answers
        gc.collect()
    report = _report(kb, base, variants, groups, questions, rows, config, timings, command)
    report["variant_settings"] = recorded
    if judge is not None:
        # Guarded answers were verified already: the audit scores the models' own answers.
        own = [r for r in rows if GUARD_SEPARATOR not in r["variant"]]
        # The guard's verdicts are the judge's own when it used the judge: not asked twice.
        known = verified if guard_verifier is judge else {}
        report["checker_audit"] = _audit_answers(own, judge, checker, config, known)
    lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    atomic_write_text(out / ANSWERS_FILE, "".join(lines))
    report["files"] = [ANSWERS_FILE]
    files = write_report(report, out, plots=config.plots)
    return EvalResult(report, files, rows)


def _score(
    kb: KnowledgeBase,
    variant: str,
    questions: list[EvalQuestion],
    answers: list[Any],
    judge: AnswerJudge | None,
    config: EvaluateConfig,
    counterfactual: KnowledgeGraph | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for q, a in zip(questions, answers, strict=True):
        subject = q.subject if q.group != "out_of_kb" else None
        graph = counterfactual if q.group == "counterfactual" and counterfactual else kb.graph
        scored = score_answer(graph, subject, q.relation, a.text)
        rows.append(
            {
                "variant": variant,
                "id": q.id,
                "group": q.group,
                "subject": q.subject,
                "relation": q.relation,
                "question": q.question,
                "phrasing": q.phrasing,
                "gold": list(q.gold),
                "answer": a.text,
                "outcome": scored.outcome,
                "read_as": scored.read_as,
                "decided_by": "exact",
                "gold_in_evidence": (
                    any(
                        e.triple is not None
                        and e.triple.subject == q.subject
                        and e.triple.relation == q.relation
                        for e in a.evidence
                    )
                    if a.evidence and q.gold
                    else None
                ),
            }
        )
    free = [
        r
        for r in rows
        if r["outcome"] == "hallucination"
        and r["read_as"] == "object"
        and r["gold"]
        and r["group"] != "counterfactual"  # the checker reads the KB, not this evidence
        and len(r["answer"].split()) >= config.free_text_words
    ]
    if judge is not None and free:
        # Free text no template reads ("Estonia is a Baltic country bordering Russia."): the
        # checker reads it in the context of its question. A sentence a template read (about
        # this pair or another) was decided by the graph and stays so.
        labels = judge.judge_answers([AnswerItem(r["question"], r["answer"]) for r in free])
        for r, label in zip(free, labels, strict=True):
            r["decided_by"] = "checker"
            if label == "supported":
                r["outcome"] = "correct"
    return rows


def _guarded(
    kb: KnowledgeBase,
    variant: str,
    questions: list[EvalQuestion],
    answers: list[Any],
    verifier: Any,
    judge: AnswerJudge | None,
    config: EvaluateConfig,
    labels: dict[tuple[str, int], Any],
    counterfactual: KnowledgeGraph | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``variant``'s answers behind the guard, one variant per mode; the
    verification (questions only, no pair handed over) runs once for every mode, and its
    verdicts go into ``labels`` (keyed by variant and question id) for the checker audit."""
    from grounded.verify.guard import Guard, GuardConfig

    texts = [q.question for q in questions]
    said = [a.text for a in answers]
    verdicts = Guard(verifier).verdicts(texts, said)
    for q, v in zip(questions, verdicts, strict=True):
        if v is not None:
            labels[(variant, q.id)] = v
    rows = []
    for mode in config.guard_modes:
        guarded = Guard(verifier, GuardConfig(mode)).apply(texts, said, verdicts)
        shown = [
            dataclasses.replace(a, text=g.text, original=g.original, guard_action=g.action)
            for g, a in zip(guarded, answers, strict=True)
        ]
        name = f"{variant}{GUARD_SEPARATOR}{mode}"
        scored = _score(kb, name, questions, shown, judge, config, counterfactual)
        for row, g in zip(scored, guarded, strict=True):
            row["original"], row["guard_action"] = g.original, g.action
        rows.extend(scored)
    return rows


def _report(
    kb: KnowledgeBase,
    base: ResolvedBase,
    variants: Mapping[str, str | Path | None],
    groups: EntityGroups,
    questions: list[EvalQuestion],
    rows: list[dict[str, Any]],
    config: EvaluateConfig,
    timings: dict[str, float],
    command: str | None,
) -> dict[str, Any]:
    summary = summarize(rows, seed=config.seed, n_boot=config.n_boot)
    recall: dict[str, dict] = {}
    for v in ordered(variants):
        per_group = {}
        for g in KB_COVERED:
            hits = [
                r["gold_in_evidence"]
                for r in rows
                if r["variant"] == v and r["group"] == g and r["gold_in_evidence"] is not None
            ]
            if hits:
                per_group[g] = bootstrap_rate(
                    hits, seed=config.seed, n_boot=config.n_boot
                ).to_dict()
        if per_group:
            recall[v] = per_group
    return {
        "format_version": 1,
        "kind": "grounded-evaluation",
        "command": command or _command_line(sys.argv),
        "kb": {"path": str(kb.path), "name": kb.name, "checksum": kb.checksum},
        "base_model": base.spec,
        "base": base.record(),
        "variants": {v: (str(p) if p is not None else "baseline") for v, p in variants.items()},
        "settings": dataclasses.asdict(config),
        "groups": {
            "counts": groups.counts(),
            "split_source": groups.split_source,
            "seed": groups.seed,
            # the closed-book probe that decided known/unknown (its answers: groups.json)
            "probe": _probe_summary(groups.probe),
            "unprobed": groups.unprobed,
        },
        "n_questions": len(questions),
        "questions_per_group": {g: sum(q.group == g for q in questions) for g in GROUPS},
        "metrics": summary,
        "targets": check_targets(summary, load_targets(config.targets)) if config.targets else [],
        "ablations": ablation_findings(summary),
        "retrieval_recall": recall,
        "free_text_judged": sum(r["decided_by"] == "checker" for r in rows),
        "seconds_per_variant": timings,
    }


def _probe_summary(probe: dict[str, Any]) -> dict[str, Any]:
    """The probe without its answers (in groups.json) and its time (so a report of the
    same seed is the same)."""
    out = {k: v for k, v in probe.items() if k not in ("answers", "known")}
    if "settings" in out:
        out["settings"] = {k: v for k, v in out["settings"].items() if k != "seconds"}
    return out


@dataclasses.dataclass(frozen=True)
class _LabelOnly:
    """A judge's label when it does not say which path decided."""

    label: str
    decided_by: str = "unknown"


def _audit_answers(
    rows: list[dict[str, Any]],
    judge: AnswerJudge,
    checker: str | Path | None,
    config: EvaluateConfig,
    known: dict[tuple[str, int], Any] | None = None,
) -> dict[str, Any]:
    """The checker as an auditor: its verdicts on stated answers against the exact check.

    Each stated (not abstained) answer is judged in the context of its question only, with
    no (subject, relation) handed over, as ``grounded audit`` would. Detection: an exact-
    check hallucination the checker labels refuted or not enough info. False alarm: a
    correct answer it does not label supported. ``by_path`` splits both by the path that
    decided (graph, checker, none; ``unknown`` for a judge that gives labels only).
    Counterfactual rows are left out: their exact check scores against the substitute fact
    the evidence states, which the KB (the auditor's truth) contradicts by design.
    """
    from grounded.verify.audit import detection_rates

    known = known or {}
    stated = [r for r in rows if r["outcome"] != "abstain" and r["group"] != "counterfactual"]
    todo = [r for r in stated if (r["variant"], r["id"]) not in known]
    items = [AnswerItem(r["question"], r["answer"]) for r in todo]
    if hasattr(judge, "judge"):  # a Verifier: verdicts say which path decided
        judged = list(judge.judge(items))
    else:
        judged = [_LabelOnly(lab) for lab in judge.judge_answers(items)]
    fresh = {(r["variant"], r["id"]): v for r, v in zip(todo, judged, strict=True)}
    verdicts = [
        known.get((r["variant"], r["id"])) or fresh[(r["variant"], r["id"])] for r in stated
    ]
    labels = [v.label for v in verdicts]
    halluc = [lab != "supported" for r, lab in zip(stated, labels, strict=True)
              if r["outcome"] == "hallucination"]  # fmt: skip
    alarms = [lab != "supported" for r, lab in zip(stated, labels, strict=True)
              if r["outcome"] == "correct"]  # fmt: skip
    kw = {"seed": config.seed, "n_boot": config.n_boot}
    split = detection_rates(
        [lab != "supported" for lab in labels],
        [r["outcome"] == "hallucination" for r in stated],
        [v.decided_by for v in verdicts],
        **kw,
    )
    return {
        "checker": str(checker) if checker is not None else type(judge).__name__,
        "answers_judged": len(stated),
        "detection_rate": bootstrap_rate(halluc, **kw).to_dict(),
        "by_path": split["by_path"],
        "false_alarm_rate": bootstrap_rate(alarms, **kw).to_dict(),
    }


def _command_line(argv: list[str]) -> str:
    """The command as a user would type it: ``python -m grounded`` (argv[0] is then the path
    of ``grounded/__main__.py``) and the console script both read ``grounded ...``.

    Example:
        >>> _command_line(["/x/grounded/__main__.py", "evaluate", "my kb"])
        "grounded evaluate 'my kb'"
    """
    head = argv[:1]
    if head and Path(head[0]).name in ("__main__.py", "grounded"):
        head = ["grounded"]
    return " ".join(shlex.quote(a) for a in head + list(argv[1:]))
