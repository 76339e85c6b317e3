"""``grounded audit``: check model outputs against a knowledge base and write a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from grounded.cli.main import UsageError, register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

if TYPE_CHECKING:
    from grounded.verify.audit import AuditReport


@register_command("audit")
def register(sub: argparse._SubParsersAction) -> None:
    from grounded.verify.audit import READERS, AuditConfig
    from grounded.verify.verifier import VerifierConfig

    audit = sub.add_parser(
        "audit",
        help="audit model outputs (text, JSONL, question/answer) against a knowledge base",
        description="Split outputs into claims, let the graph decide what it can, judge the "
        "rest with the neural checker on retrieved evidence, and report one row per claim "
        "with totals over all claims (refuted / all; refuted + not enough info / all).",
        epilog="examples:\n"
        '  grounded audit runs/countries/kb --text "The capital of Australia is Sydney."\n'
        "  grounded audit runs/countries/kb outputs.jsonl --checker runs/countries/checker "
        "--out runs/audit\n"
        '  grounded audit KB --question "What is the capital of Chad?" --answer "Paris."\n'
        f'\ninput files: {", ".join(sorted(READERS))}; a .jsonl line holds "text", or '
        '"question" and "answer" (field names: --text-field, --question-field, --answer-field).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("kb", help="knowledge base folder")
    audit.add_argument("input", nargs="?", help="file of outputs (.jsonl, .txt, .md)")
    audit.add_argument("--text", action="append", default=[], help="text to audit (repeatable)")
    audit.add_argument("--question", help="a question; --answer is judged in its context")
    audit.add_argument("--answer", help="the answer to --question")
    audit.add_argument("--checker", help="checker folder; without it the graph alone decides")
    audit.add_argument(
        "--quantize",
        action="store_true",
        help="run the checker in int8 on CPU (about 2x faster; probabilities move ~0.01)",
    )
    audit.add_argument("--out", help="folder to write report.json and report.md to")
    audit.add_argument(
        "--overwrite", action="store_true", help="replace a report already in `--out`"
    )
    audit.add_argument("--json", action="store_true", help="print report JSON to stdout")
    audit.add_argument("--config", help="YAML file with any of the settings below")
    audit.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataclass_arguments(audit, AuditConfig, "audit")
    add_dataclass_arguments(audit, VerifierConfig, "verdicts")
    audit.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    from grounded.kb import KnowledgeBase
    from grounded.verify.audit import (
        AUDIT_KIND,
        AuditConfig,
        Auditor,
        Document,
        read_documents,
    )
    from grounded.verify.verifier import VerifierConfig

    if (args.question is None) != (args.answer is None):
        raise UsageError("give `--question` and `--answer` together")
    if not (args.input or args.text or args.question is not None):
        raise UsageError(
            "nothing to audit: give an INPUT file, `--text`, or `--question` and `--answer`"
        )
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"`--out` {out} is a file; give a folder for report.json/report.md")
        if (out / "report.json").exists() and not args.overwrite:
            raise UsageError(
                f"`--out` {out} already holds a report; pass `--overwrite` to replace it, or "
                "give another folder"
            )
        from kg.manifest import artifact_kind, refuse_inputs_inside

        refuse_inputs_inside(
            out, {"knowledge base": args.kb, "input": args.input, "checker": args.checker}
        )
        found = artifact_kind(out)
        if found not in (None, AUDIT_KIND):
            raise UsageError(
                f"`--out` {out} holds a {found!r} artifact, not an audit report; give another "
                "folder (nothing was written)"
            )
    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [AuditConfig, VerifierConfig], origin)
    config = build_config(AuditConfig, args, yaml_values, origin=origin)
    verifier_config = build_config(VerifierConfig, args, yaml_values, origin=origin)
    docs = read_documents(args.input, config) if args.input else []
    docs += [Document(t, None, f"--text {i}") for i, t in enumerate(args.text, 1)]
    if args.question is not None:
        docs.append(Document(args.answer, args.question, "--question/--answer"))
    kb = KnowledgeBase.load(args.kb)
    checker = None
    if args.checker:
        from grounded.factcheck.checker import FactChecker

        checker = FactChecker.from_pretrained(args.checker)
        if args.quantize:
            checker = checker.quantized()
    auditor = Auditor(kb, checker, config, verifier_config)
    report = auditor.audit(docs, show_progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif args.out is None:
        _print(report, config.evidence_shown)
    if args.out:
        j, m = report.save(Path(args.out), evidence_shown=config.evidence_shown)
        if not args.json:
            _print_totals(report)
            print(f"wrote {j} and {m}")
    return 0


def _print(report: AuditReport, evidence_shown: int) -> None:
    for i, (c, v) in enumerate(zip(report.claims, report.verdicts, strict=True), 1):
        claim = f"{c.question} → {c.text}" if c.question else c.text
        print(f"{i:>3}. {claim}")
        print(f"     {v.label} ({v.confidence:.2f}, decided by {v.decided_by}): {v.reason}")
        for e in v.evidence[:evidence_shown]:
            print(f"       · {e.text}")
    _print_totals(report)


def _print_totals(report: AuditReport) -> None:
    t = report.totals()
    r, u = t["refuted"], t["refuted_or_not_enough_info"]

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    print(
        f"\nrefuted: {r['numerator']} / {r['denominator']} claims ({pct(r['rate'])}); "
        f"refuted or not enough info: {u['numerator']} / {u['denominator']} ({pct(u['rate'])})"
    )
    total = report.timings.get("total", 0.0)
    rate = f"{len(report.claims) / total:.0f} claims/s" if total else ""
    print("decided by: " + ", ".join(f"{k} {v}" for k, v in t["decided_by"].items()) + f"; {rate}")
