"""``grounded factcheck``: train, evaluate and run the neural fact-checker.

``train`` learns from a knowledge base, documents (``--documents``) and labelled pairs
(``--pairs``); ``eval`` scores on a knowledge base's held-out subjects; ``score`` judges any
(claim, evidence) pairs, no knowledge base needed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from grounded.cli.main import UsageError, register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml
from kg.io import OVERWRITE_NOTE


@register_command("factcheck")
def register(sub: argparse._SubParsersAction) -> None:
    from grounded.factcheck.config import FactCheckerConfig
    from grounded.factcheck.data import ClaimDataConfig

    fc = sub.add_parser(
        "factcheck",
        help="train and evaluate the neural fact-checker",
        description="A cross-encoder over (claim, evidence) → supported / refuted / not enough "
        "info, trained on claims from any knowledge base, transformations of real sentences and "
        "labelled pairs; it scores any (claim, evidence) pairs.",
    )
    fc.set_defaults(parser=fc)
    fsub = fc.add_subparsers(dest="factcheck_command", metavar="FACTCHECK_COMMAND")

    train = fsub.add_parser(
        "train",
        help="train a checker on a KB's claims, documents and labelled pairs; score it",
        description="Build training pairs: claims (supported, refuted, not enough info) with "
        "retrieved evidence from KB, split by subject; FactCC-style transformations of the "
        "sentences of the KB's passages and of --documents; labelled --pairs. Balance them per "
        "label, hold out a dev split, fine-tune the checker with the Hugging Face Trainer, fit "
        "per-label calibration biases on the dev split (stored with the checker), score it "
        "alone and combined with the graph on the KB's held-out subjects, and save it.",
        epilog="examples:\n"
        "  grounded factcheck train runs/countries/kb --out runs/countries/checker\n"
        "  grounded factcheck train runs/cities/kb --out runs/cities/checker "
        "--max-train-claims 3000\n"
        "  grounded factcheck train KB --documents notes/ --pairs labelled.jsonl --out CHECKER\n"
        "  grounded factcheck train --documents notes/ --out CHECKER   # no knowledge base\n"
        "  grounded factcheck train KB --out CHECKER --config factcheck.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "kb", nargs="?", help="knowledge base folder (from `grounded kb build`); optional"
    )
    train.add_argument(
        "--documents",
        help="a text/Markdown/JSONL file or a folder of them: their sentences are transformed "
        "into training pairs (paragraphs are passages)",
    )
    train.add_argument(
        "--pairs",
        help="JSONL of labelled pairs: claim, evidence (string or list), label (supported / "
        "refuted / not_enough_info, or SUPPORTS / REFUTES / NOT ENOUGH INFO, entailment / "
        "contradiction / neutral)",
    )
    train.add_argument("--out", required=True, help="folder to write the checker to")
    train.add_argument(
        "--calibration-pairs",
        help="JSONL file of labelled pairs unlike the training data (another domain, "
        "human-labelled, with on-topic not-enough-info pairs): the calibration biases and the "
        "decision rule are tuned on them, never trained on (default: the dev split)",
    )
    train.add_argument("--config", help="YAML file with any of the settings below")
    train.add_argument(
        "--overwrite", action="store_true", help=f"replace an existing --out. {OVERWRITE_NOTE}"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_arguments(train, ClaimDataConfig, "claims")
    add_dataclass_arguments(train, FactCheckerConfig, "checker")
    train.set_defaults(func=_train)

    ev = fsub.add_parser(
        "eval",
        help="score a checker on a knowledge base's held-out subjects",
        description="Rebuild the test claims (held-out subjects; the claim settings stored in "
        "the checker unless overridden) and report accuracy, macro-F1, per-class F1 and the "
        "confusion matrix for the neural checker alone and combined with the graph.",
        epilog="examples:\n"
        "  grounded factcheck eval runs/countries/kb runs/countries/checker\n"
        "  grounded factcheck eval runs/cities/kb runs/cities/checker --out runs/cities/eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("kb", help="knowledge base folder")
    ev.set_defaults(func=_eval)

    score = fsub.add_parser(
        "score",
        help="judge (claim, evidence) pairs from a JSONL file; no knowledge base needed",
        description="Read PAIRS (JSONL: `claim`, `evidence` as a string or a list of strings; "
        "other fields are kept) and write one line per pair with `label` (the checker's "
        "decision rule: calibration biases, then not enough info unless the top label is "
        "confident and clearly ahead), `top` (the most probable label), `why` (the rule's "
        "reason) and `probabilities` (supported, refuted, not_enough_info, calibrated). "
        "Evidence longer than the checker's window is read in overlapping chunks; the best "
        "chunk decides. With --split-claims each sentence "
        "of a claim is judged and the least supported one speaks for the claim. When the file "
        "has a `label` field, accuracy and per-label recall are printed.",
        epilog="examples:\n"
        "  grounded factcheck score runs/countries/checker --pairs pairs.jsonl\n"
        "  grounded factcheck score CHECKER --pairs pairs.jsonl --out scored.jsonl\n"
        "  grounded factcheck score CHECKER --pairs summaries.jsonl --split-claims",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("checker", help="checker folder (from `grounded factcheck train`)")
    score.add_argument("--pairs", required=True, help="JSONL file of (claim, evidence) pairs")
    score.add_argument("--out", help="JSONL file to write (default: print to the terminal)")
    score.add_argument(
        "--split-claims", action="store_true", help="judge each sentence of a claim separately"
    )
    score.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.set_defaults(func=_score_pairs)
    ev.add_argument("checker", help="checker folder (from `grounded factcheck train`)")
    ev.add_argument("--out", help="folder to write eval.json and eval.md to")
    ev.add_argument("--config", help="YAML file with claim settings")
    ev.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_arguments(ev, ClaimDataConfig, "claims")
    ev.set_defaults(func=_eval)


def _print_scores(scores: dict[str, Any]) -> None:
    from grounded.factcheck.metrics import format_report

    titles = {
        "neural": "neural checker alone",
        "combined": "combined (graph first, then the checker)",
        "graph": "graph alone (undecided → not enough info)",
    }
    for key, title in titles.items():
        print()
        print(format_report(scores[key], title))
        if "decided_by" in scores[key]:
            paths = ", ".join(
                f"{k} {v['n']} (accuracy {v['accuracy']:.3f})"
                for k, v in scores[key]["decided_by"].items()
            )
            print(f"decided by: {paths}")


def _train(args: argparse.Namespace) -> int:
    from grounded.factcheck.config import FactCheckerConfig
    from grounded.factcheck.data import ClaimDataConfig
    from grounded.factcheck.training import train_factchecker
    from grounded.kb import KnowledgeBase

    if not (args.kb or args.documents or args.pairs):
        raise UsageError(
            "nothing to train on: give a knowledge base folder, `--documents` or `--pairs`"
        )
    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [ClaimDataConfig, FactCheckerConfig], origin)
    data_config = build_config(ClaimDataConfig, args, yaml_values, origin=origin)
    checker_config = build_config(FactCheckerConfig, args, yaml_values, origin=origin)
    out = Path(args.out)
    from grounded.factcheck.checker import CHECKER_KIND
    from kg.manifest import check_destination

    inputs = {"knowledge base": args.kb, "documents": args.documents, "pairs": args.pairs}
    inputs["base model"] = checker_config.base_model
    check_destination(out, CHECKER_KIND, overwrite=args.overwrite, inputs=inputs)
    show = not args.quiet
    t0 = time.perf_counter()
    kb = KnowledgeBase.load(args.kb) if args.kb else None
    run = train_factchecker(
        kb,
        documents=args.documents,
        pairs=args.pairs,
        data_config=data_config,
        checker_config=checker_config,
        show_progress=show,
        calibration_pairs=args.calibration_pairs,
    )
    checker, log, scores = run.checker, run.log, run.scores or None
    stats = run.data.stats()
    if show:
        tr, dev = stats["train"], stats["dev"]
        print(f"pairs: train {tr['pairs']} {tr['labels']} from {tr['sources']}")
        print(f"  dev {dev['pairs']} {dev['labels']}")
        cal = checker.metadata.get("calibration")
        if cal:
            print(
                f"  calibration biases {cal['biases']}, decision rule {cal.get('rule')} tuned "
                f"on {cal.get('tuned_on')}; balanced accuracy "
                f"{cal['balanced_accuracy_before']:.3f} → {cal['balanced_accuracy_after']:.3f}"
            )
    checker.save_pretrained(out, overwrite=True)  # allowed by check_destination above
    if scores is not None:
        _print_scores(scores)
    print(
        f"\ntrained on {log.examples} pairs in {log.steps} steps ({log.seconds:.0f} s; loss "
        f"{log.losses[0] if log.losses else float('nan'):.3f} → "
        f"{log.losses[-1] if log.losses else float('nan'):.3f}); total "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print(f"wrote {out}/ (model.safetensors, tokenizer, config.json, factcheck.json)")
    return 0


def _score_pairs(args: argparse.Namespace) -> int:
    from grounded.factcheck.checker import FactChecker
    from grounded.factcheck.metrics import classification_report
    from grounded.factcheck.pairs import read_pairs
    from grounded.types import LABELS
    from kg.io import atomic_write_text

    if args.batch_size < 1:
        raise UsageError(f"`--batch-size` must be >= 1, got {args.batch_size}")
    records = read_pairs(args.pairs)
    checker = FactChecker.from_pretrained(args.checker)
    t0 = time.perf_counter()
    preds = checker.predict(
        [(r.claim, r.evidence) for r in records],
        batch_size=args.batch_size,
        split_claims=args.split_claims,
        show_progress=None if not args.quiet else False,
    )
    seconds = time.perf_counter() - t0
    lines = []
    for r, label, top, why, row, chunks in zip(
        records,
        preds.labels,
        preds.top_labels,
        preds.reasons,
        preds.probabilities,
        preds.chunks,
        strict=True,
    ):
        out = {
            **r.extra,
            "line": r.line,
            "claim": r.claim,
            "label": label,
            "top": top,
            "why": why,
            "probabilities": {k: round(float(v), 6) for k, v in zip(LABELS, row, strict=True)},
            "chunks": chunks,
        }
        if r.label is not None:
            out["gold"] = r.label
        lines.append(json.dumps(out, ensure_ascii=False, sort_keys=True))
    if args.out:
        atomic_write_text(args.out, "\n".join(lines) + ("\n" if lines else ""))
    else:
        for line in lines:
            print(line)
    counts = {lab: preds.labels.count(lab) for lab in LABELS}
    summary = (
        f"scored {len(records)} pair(s) in {seconds:.1f} s: {counts}; decision rule "
        f"{preds.rule.to_dict()} on calibrated probabilities (biases "
        f"{dict(zip(LABELS, checker.biases.round(3).tolist(), strict=True))})"
    )
    gold = [r.label for r in records]
    if records and all(g is not None for g in gold):
        report = classification_report(gold, preds.labels)
        recall = {k: round(v["recall"], 3) for k, v in report["per_class"].items()}
        summary += f"; accuracy {report['accuracy']:.3f}, recall {recall}"
    if args.out:
        print(summary)
        print(f"wrote {args.out}")
    else:
        import sys

        print(summary, file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from grounded.config import config_from_dict
    from grounded.factcheck.checker import FactChecker
    from grounded.factcheck.data import ClaimDataConfig, build_claim_data
    from grounded.factcheck.evaluate import score_checker
    from grounded.factcheck.training import summary
    from grounded.kb import KnowledgeBase
    from kg.io import atomic_write_json, atomic_write_text

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [ClaimDataConfig], origin)
    checker = FactChecker.from_pretrained(args.checker)
    stored = checker.metadata.get("data", {})
    if stored and "alias_notes" not in stored:
        stored = {**stored, "alias_notes": False}  # trained before alias notes existed
    base = config_from_dict(
        ClaimDataConfig, stored, origin=f"{args.checker} (`data`)", unknown="warn"
    )
    data_config = build_config(ClaimDataConfig, args, yaml_values, origin=origin, base=base)
    kb = KnowledgeBase.load(args.kb)
    trained_on = checker.metadata.get("kb", {})
    show = not args.quiet and not args.json
    if trained_on and trained_on.get("checksum") != kb.checksum and show:
        print(
            f"note: the checker was trained on knowledge base {trained_on.get('name')!r} "
            f"({trained_on.get('path')}); scoring on {kb.name!r} ({kb.path})"
        )
    data = build_claim_data(kb, data_config, splits=("test",), show_progress=show)
    if not len(data.dataset["test"]):
        raise UsageError(f"no test claims could be built from {args.kb}")
    scores = score_checker(data, checker, data_config, show_progress=show)
    if args.out:
        from grounded.factcheck.metrics import format_report

        folder = Path(args.out)
        payload = {
            "kb": {"name": kb.name, "checksum": kb.checksum, "path": str(kb.path)},
            "checker": str(args.checker),
            "data": data.stats(),
            "scores": scores,
        }
        atomic_write_json(folder / "eval.json", payload)
        md = [f"# Fact-checker on {kb.name}: held-out subjects\n"]
        md += [format_report(scores[k], k) for k in ("neural", "combined", "graph")]
        atomic_write_text(folder / "eval.md", "\n".join(md))
    if args.json:
        print(json.dumps({k: summary(v) for k, v in scores.items()}, indent=2))
    else:
        _print_scores(scores)
    if args.out:
        print(f"\nwrote {args.out}/eval.json and eval.md")
    return 0
