"""The evaluation report: rates per variant, group and relation; targets; ablations; files.

:func:`summarize` turns scored answers (one row per variant and question) into every
number of the report, each a :class:`~grounded.evaluation.metrics.Rate` with its
denominator and a seeded 95% bootstrap interval. :func:`write_report` writes
``report.json`` (every number), ``report.md`` (the tables a person reads) and the plots.
No torch here: a report can be rebuilt from ``answers.jsonl`` anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from grounded.data.groups import GROUPS
from grounded.evaluation.metrics import intervals_overlap, outcome_rates
from grounded.evaluation.targets import rate_of
from kg.io import atomic_write_json, atomic_write_text

KB_COVERED: tuple[str, ...] = ("seen", "known", "unknown")
"""Groups whose questions the KB answers (out_of_kb ones it does not)."""

METRICS: tuple[str, ...] = (
    "accuracy",
    "hallucination_rate",
    "hallucination_rate_answered",
    "abstention_rate",
)
BASELINES: tuple[str, ...] = ("base", "rag")
ABLATIONS: dict[str, str] = {
    "no_constraint": "the knowledge-constraint loss",
    "no_feedback": "the fact-checker feedback",
    "no_embedding": "the embedding injection",
}
"""Ablation variant → the component it removes from ``grounded``."""

VARIANT_ORDER: tuple[str, ...] = (
    "base", "rag", "sft", "raft", "grounded", "no_constraint", "no_feedback", "no_embedding",
)  # fmt: skip
VARIANT_HELP: dict[str, str] = {
    "base": "base model, zero-shot",
    "rag": "base model, retrieved facts in the prompt (nothing trained)",
    "sft": "ungrounded LoRA SFT on question-answer pairs",
    "raft": "RAFT-style LoRA SFT: retrieved context with distractors, no constraint/feedback",
    "grounded": "grounded: text + embedding injection, constraint loss, checker feedback",
    "no_constraint": "grounded without the constraint loss",
    "no_feedback": "grounded without fact-checker feedback",
    "no_embedding": "grounded without embedding injection (text injection only)",
}


GUARD_SEPARATOR = "+"
"""A guarded variant is named ``{variant}+{mode}`` (``grounded+revise``)."""
GUARD_HELP: dict[str, str] = {
    "abstain": "its answers the KB and checker do not support become abstentions",
    "revise": "its unsupported answers corrected from the KB where it can, else abstentions",
}


def ordered(variants: Iterable[str]) -> list[str]:
    """``variants`` in the report's order: known names first, each followed by its guarded
    forms; the rest sorted."""

    def key(name: str) -> tuple[int, str, str]:
        base, _, mode = name.partition(GUARD_SEPARATOR)
        rank = VARIANT_ORDER.index(base) if base in VARIANT_ORDER else len(VARIANT_ORDER)
        return rank, base, mode

    return sorted(set(variants), key=key)


def variant_help(name: str, settings: dict[str, dict] | None = None) -> str:
    """One line describing variant ``name`` (a guarded one included): from its recorded
    ``settings`` (variant → :func:`variant_settings`) when given, else from its name."""
    base, _, mode = name.partition(GUARD_SEPARATOR)
    if settings and base in settings:
        text = describe_settings(settings[base])
    else:
        text = VARIANT_HELP.get(base, "trained model " + base)
    if mode:
        text += f"; behind the guard ({mode}): {GUARD_HELP.get(mode, mode)}"
    return text


_EVIDENCE_WORDS = {
    "text": "retrieved facts as text",
    "embedding": "their index vectors as soft tokens",
}


def variant_settings(grounding: dict[str, Any], modes: Sequence[str]) -> dict[str, Any]:
    """What a variant is, from its recorded settings (its ``grounding.json``), for the report.

    Args:
        grounding: the model's ``grounding.json`` record (a baseline's in-memory one).
        modes: the injection modes it reads evidence with.

    Returns:
        ``trained``, ``adapter``, ``injection`` (modes), ``constraint`` (name and weight, or
        None when off), ``feedback`` (every, weight and judge, or None when off) and
        ``prompt_format``.
    """
    trained = "adapter" in grounding
    constraint = feedback = None
    if trained:
        from grounded.training.config import TrainConfig

        # nested settings, or the flat ones older versions wrote: one reading of both
        c = TrainConfig.from_dict(grounding.get("settings") or {}, origin="grounding.json")
        if c.constraint.weight > 0:
            constraint = {"name": c.constraint.name, "weight": c.constraint.weight}
        if c.feedback.every > 0 and c.feedback.weight > 0:
            feedback = {
                "every": c.feedback.every,
                "weight": c.feedback.weight,
                "judge": (grounding.get("train") or {}).get("feedback_judge"),
            }
    return {
        "trained": trained,
        "adapter": (grounding.get("adapter") or {}).get("name"),
        "injection": list(modes),
        "constraint": constraint,
        "feedback": feedback,
        "prompt_format": (grounding.get("prompt_format") or {}).get("format", "plain"),
    }


def describe_settings(settings: dict[str, Any]) -> str:
    """One line saying what a variant is, from :func:`variant_settings`' record.

    Example:
        >>> describe_settings({"trained": True, "adapter": "lora", "injection": ["text"],
        ...     "constraint": None, "feedback": None, "prompt_format": "plain"})
        'lora adapter; evidence: retrieved facts as text; no constraint loss; no feedback'
    """
    modes = settings.get("injection") or []
    evidence = " + ".join(_EVIDENCE_WORDS.get(m, m) for m in modes)
    fmt = settings.get("prompt_format", "plain")
    prompt = "; prompt in the chat template" if fmt == "chat" else ""
    if not settings.get("trained"):
        what = "retrieved facts in the prompt" if modes else "zero-shot"
        return f"base model, nothing trained: {what}{prompt}"
    parts = [f"{settings.get('adapter') or 'PEFT'} adapter", f"evidence: {evidence or 'none'}"]
    c = settings.get("constraint")
    parts.append(
        f"{c['name']} constraint loss (λ_c {c['weight']:g})" if c else "no constraint loss"
    )
    f = settings.get("feedback")
    if f:
        judge = f" judged by the {f['judge']}" if f.get("judge") else ""
        parts.append(f"feedback every {f['every']} steps{judge} (λ_f {f['weight']:g})")
    else:
        parts.append("no feedback")
    return "; ".join(parts) + prompt


def _rates(outcomes: Sequence[str], seed: int, n_boot: int) -> dict[str, dict]:
    return {k: r.to_dict() for k, r in outcome_rates(outcomes, seed=seed, n_boot=n_boot).items()}


def summarize(rows: Sequence[dict[str, Any]], *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Every rate of the report from scored answers.

    Args:
        rows: one per (variant, question) with ``variant``, ``group``, ``relation`` and
            ``outcome`` (``correct`` / ``abstain`` / ``hallucination``).
        seed, n_boot: the bootstrap's seed and resamples.

    Returns:
        ``{variant: {"all": rates, "kb_covered": rates, "groups": {group: rates},
        "relations": {relation: rates over KB-covered questions}}}``, where ``rates`` maps
        each of :data:`METRICS` to a :class:`Rate` as a dict.

    Example:
        >>> rows = [{"variant": "sft", "group": "unknown", "relation": "capital",
        ...          "outcome": o} for o in ("correct", "hallucination", "abstain")]
        >>> s = summarize(rows)["sft"]["groups"]["unknown"]
        >>> s["hallucination_rate"]["value"], s["hallucination_rate_answered"]["value"]
        (0.3333333333333333, 0.5)
    """
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_variant[row["variant"]].append(row)
    out: dict[str, dict] = {}
    for variant in ordered(by_variant):
        vrows = by_variant[variant]
        covered = [r for r in vrows if r["group"] in KB_COVERED]
        relations: dict[str, list[str]] = defaultdict(list)
        for r in covered:
            relations[r["relation"]].append(r["outcome"])
        out[variant] = {
            "all": _rates([r["outcome"] for r in vrows], seed, n_boot),
            "kb_covered": _rates([r["outcome"] for r in covered], seed, n_boot),
            "groups": {
                g: _rates([r["outcome"] for r in vrows if r["group"] == g], seed, n_boot)
                for g in GROUPS
                if any(r["group"] == g for r in vrows)
            },
            "relations": {rel: _rates(o, seed, n_boot) for rel, o in sorted(relations.items())},
            # KB-covered questions by phrasing: held-out templates were never trained on
            "phrasings": {
                p: _rates([r["outcome"] for r in covered if r.get("phrasing") == p], seed, n_boot)
                for p in ("train", "heldout")
                if any(r.get("phrasing") == p for r in covered)
            },
        }
    return out


def ablation_findings(summary: dict) -> list[dict[str, Any]]:
    """For each ablation present: does removing its component change the hallucination rate?

    The verdict is ``helps`` when removing the component raises the hallucination rate over
    all questions with non-overlapping intervals, ``hurts`` when it lowers it so, and
    ``no clear effect`` otherwise: the report says so rather than claiming a gain.
    """
    full = rate_of(summary, "grounded", "all", "hallucination_rate")
    out = []
    for name, component in ABLATIONS.items():
        ablated = rate_of(summary, name, "all", "hallucination_rate")
        if full is None or ablated is None or full.value is None or ablated.value is None:
            continue
        if intervals_overlap(full, ablated):
            verdict = "no clear effect"
        else:
            verdict = "helps" if ablated.value > full.value else "hurts"
        acc_full = rate_of(summary, "grounded", "kb_covered", "accuracy")
        acc_abl = rate_of(summary, name, "kb_covered", "accuracy")
        out.append(
            {
                "ablation": name,
                "component": component,
                "verdict": verdict,
                "hallucination_rate_grounded": full.to_dict(),
                "hallucination_rate_ablated": ablated.to_dict(),
                "accuracy_kb_covered_grounded": acc_full.to_dict() if acc_full else None,
                "accuracy_kb_covered_ablated": acc_abl.to_dict() if acc_abl else None,
            }
        )
    return out


# -- writing -----------------------------------------------------------------------------------
def _pct(d: dict | None) -> str:
    if not d or d.get("value") is None:
        return "n/a"
    return (
        f"{100 * d['value']:.1f} [{100 * d['low']:.1f}, {100 * d['high']:.1f}] "
        f"({d['numerator']}/{d['denominator']})"
    )


def groups_help(groups: dict) -> str:
    """How the known and unknown groups were decided, in a sentence of ``report.md``.

    Example:
        >>> groups_help({"split_source": "closed_book_probe", "unprobed": 5,
        ...     "probe": {"n_probed": 300, "n_known": 120, "n_pairs": 305}})[:61]
        'Groups: known = the 120 of 300 probed pairs the base answered'
    """
    source = groups.get("split_source")
    tail = "counterfactual: the evidence states another object, the right answer follows it."
    if source == "closed_book_probe":
        probe = groups.get("probe") or {}
        n, k = probe.get("n_probed", 0), probe.get("n_known", 0)
        return (
            f"Groups: known = the {k} of {n} probed pairs the base answered right closed-book "
            f"before training (unknown: the other {n - k}; {groups.get('unprobed', 0)} pairs "
            f"left unprobed); {tail}"
        )
    if source == "pretrain_split":
        return f"Groups: known = subjects of the base's pretraining (its split); {tail}"
    return f"Groups: no pretrain split nor probe, every KB pair outside seen is unknown; {tail}"


def render_markdown(report: dict) -> str:
    """``report.md``: the tables a person reads (every figure also in ``report.json``)."""
    summary = report["metrics"]
    variants = ordered(summary)
    groups = [g for g in GROUPS if any(g in summary[v]["groups"] for v in variants)]
    lines = [
        "# Grounded versus ungrounded: hallucination report",
        "",
        f"Knowledge base `{report['kb']['name']}` (checksum `{report['kb']['checksum'][:12]}`), "
        f"base model `{report['base_model']}`. {report['n_questions']} questions per variant, "
        "the same for every variant, greedy decoding. Each cell: percent, 95% bootstrap "
        "interval, and (numerator/denominator).",
        "",
        "Variants:",
        "",
    ]
    recorded = report.get("variant_settings")
    lines += [f"- `{v}`: {variant_help(v, recorded)}" for v in variants]
    lines += ["", groups_help(report.get("groups") or {})]
    for metric, title in (
        ("hallucination_rate", "Hallucination rate (hallucinations / all questions)"),
        ("accuracy", "Accuracy (correct / all questions)"),
        ("abstention_rate", "Abstention rate (abstentions / all questions)"),
        (
            "hallucination_rate_answered",
            "Hallucination rate over answered questions (hallucinations / answered)",
        ),
    ):
        lines += ["", f"## {title}", "", "| variant | " + " | ".join(groups) + " | KB-covered |"]
        lines.append("| --- |" + " ---: |" * (len(groups) + 1))
        for v in variants:
            cells = [_pct(summary[v]["groups"].get(g, {}).get(metric)) for g in groups]
            cells.append(_pct(summary[v]["kb_covered"].get(metric)))
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if any(summary[v].get("phrasings", {}).get("heldout") for v in variants):
        lines += [
            "",
            "## Trained versus held-out phrasings (KB-covered questions)",
            "",
            "Held-out question templates were never used in training: a score that holds on "
            "them measures reading, not template matching.",
            "",
            "| variant | accuracy, trained phrasings | accuracy, held-out phrasings "
            "| hallucination, trained | hallucination, held-out |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for v in variants:
            ph = summary[v].get("phrasings", {})
            cells = [
                _pct(ph.get(p, {}).get(m))
                for m in ("accuracy", "hallucination_rate")
                for p in ("train", "heldout")
            ]
            lines.append(f"| {v} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    if report["targets"]:
        lines += ["", "## Targets", ""]
    for t in report["targets"]:
        mark = {True: "reached", False: "**not reached**", None: "not measured"}[t["reached"]]
        lines.append(f"- {t['target']}: {mark}. {t['detail']}")
    if report["ablations"]:
        lines += ["", "## Ablations (hallucination rate over all questions)", ""]
        for a in report["ablations"]:
            text = {
                "helps": "helps: removing it raises the hallucination rate (intervals apart)",
                "hurts": "does not help: removing it lowers the hallucination rate",
                "no clear effect": "no clear effect in this run (intervals overlap)",
            }[a["verdict"]]
            lines.append(
                f"- `{a['ablation']}` ({a['component']}): {text}; grounded "
                f"{_pct(a['hallucination_rate_grounded'])} vs ablated "
                f"{_pct(a['hallucination_rate_ablated'])}."
            )
    retrieval = report.get("retrieval_recall") or {}
    if retrieval:
        lines += ["", "## Retrieval: gold fact among the evidence (evidence-reading variants)", ""]
        lines += ["| variant | " + " | ".join(KB_COVERED) + " |", "| --- |" + " ---: |" * 3]
        for v, per_group in retrieval.items():
            lines.append(
                f"| {v} | " + " | ".join(_pct(per_group.get(g)) for g in KB_COVERED) + " |"
            )
    relations = sorted({r for v in variants for r in summary[v]["relations"]})
    if relations:
        lines += ["", "## Hallucination rate by relation (KB-covered questions)", ""]
        lines += ["| relation | " + " | ".join(variants) + " |"]
        lines.append("| --- |" + " ---: |" * len(variants))
        for rel in relations:
            cells = []
            for v in variants:
                d = summary[v]["relations"].get(rel, {}).get("hallucination_rate")
                cells.append(
                    f"{100 * d['value']:.1f} ({d['numerator']}/{d['denominator']})"
                    if d and d["value"] is not None
                    else "n/a"
                )
            lines.append(f"| {rel} | " + " | ".join(cells) + " |")
    audit = report.get("checker_audit")
    if audit:
        lines += [
            "",
            "## Fact-checker auditing the answers (against the exact KB check)",
            "",
            f"Checker `{audit['checker']}` reading each stated answer in the context of its "
            "question, with no (subject, relation) given.",
            "",
            f"- hallucinations detected (refuted or not enough info): "
            f"{_pct(audit['detection_rate'])}",
            f"- correct answers flagged (false alarms): {_pct(audit['false_alarm_rate'])}",
        ]
        for path, r in audit.get("by_path", {}).items():
            det, fa = r["detection"], r["false_alarm"]
            lines.append(
                f"- decided by {path}: detected {det['numerator']}/{det['denominator']}, "
                f"false alarms {fa['numerator']}/{fa['denominator']}"
            )
    lines += ["", "## Files", ""]
    lines += [f"- `{name}`" for name in report["files"]]
    lines += ["", f"Command: `{report['command']}`" if report.get("command") else ""]
    return "\n".join(lines).rstrip() + "\n"


def write_plots(summary: dict, out: Path) -> list[str]:
    """``hallucination_by_group.png`` and ``accuracy_vs_abstention.png``; the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    variants = ordered(summary)
    groups = [g for g in GROUPS if any(g in summary[v]["groups"] for v in variants)]
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 0.45 * len(variants) * len(groups))), 4.5))
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(groups))
    for i, v in enumerate(variants):
        vals, lo, hi = [], [], []
        for g in groups:
            d = summary[v]["groups"].get(g, {}).get("hallucination_rate") or {}
            val = d.get("value")
            vals.append(100 * val if val is not None else 0.0)
            lo.append(100 * (val - d["low"]) if val is not None else 0.0)
            hi.append(100 * (d["high"] - val) if val is not None else 0.0)
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, vals, width, yerr=[lo, hi],
               label=v, capsize=2)  # fmt: skip
    ax.set_xticks(x, groups)
    ax.set_ylabel("hallucination rate (% of questions)")
    ax.set_title("Hallucination rate by variant and entity group (95% bootstrap intervals)")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    names = ["hallucination_by_group.png"]
    fig.savefig(out / names[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for v in variants:
        acc = summary[v]["kb_covered"]["accuracy"]
        abst = summary[v]["kb_covered"]["abstention_rate"]
        if acc["value"] is None:
            continue
        ax.scatter(100 * abst["value"], 100 * acc["value"], s=40)
        ax.annotate(v, (100 * abst["value"], 100 * acc["value"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("abstention rate, KB-covered questions (%)")
    ax.set_ylabel("accuracy, KB-covered questions (%)")
    ax.set_title("Accuracy against abstention")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    names.append("accuracy_vs_abstention.png")
    fig.savefig(out / names[1], dpi=110)
    plt.close(fig)
    return names


def write_report(report: dict, out: str | Path, *, plots: bool = True) -> list[Path]:
    """Write ``report.json``, ``report.md`` and (with ``plots``) the PNGs into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = write_plots(report["metrics"], out) if plots else []
    report["files"] = sorted({*report.get("files", []), "report.json", "report.md", *names})
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))
    return [out / n for n in report["files"]]


def render_summary(report: dict) -> str:
    """The one-screen summary printed at the end of ``grounded evaluate`` and ``demo``."""
    summary = report["metrics"]

    def cell(v: str, scope: str, metric: str) -> str:
        r = rate_of(summary, v, scope, metric)
        return f"{100 * r.value:5.1f}%" if r is not None and r.value is not None else "   n/a"

    head = (
        f"{'variant':<17} {'halluc. all':>11} {'halluc. unknown':>15} {'acc. KB-covered':>15} "
        f"{'abstain out-of-KB':>17} {'abstain KB-covered':>18}"
    )
    lines = [head, "-" * len(head)]
    for v in ordered(summary):
        lines.append(
            f"{v:<17} {cell(v, 'all', 'hallucination_rate'):>11} "
            f"{cell(v, 'unknown', 'hallucination_rate'):>15} "
            f"{cell(v, 'kb_covered', 'accuracy'):>15} "
            f"{cell(v, 'out_of_kb', 'abstention_rate'):>17} "
            f"{cell(v, 'kb_covered', 'abstention_rate'):>18}"
        )
    lines.append("")
    for t in report["targets"]:
        mark = {True: "reached", False: "NOT reached", None: "not measured"}[t["reached"]]
        lines.append(f"[{mark}] {t['target']}: {t['detail']}")
    for a in report.get("ablations", []):
        lines.append(f"ablation {a['ablation']} ({a['component']}): {a['verdict']}")
    return "\n".join(lines)
