"""``grounded evaluate``: grounded versus ungrounded hallucination rates on the same questions."""

from __future__ import annotations

import argparse
from pathlib import Path

from grounded.cli.main import UsageError, add_base_arguments, register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

EPILOG = """\
examples:
  grounded evaluate runs/demo/kb --base runs/demo/base --out runs/demo/report \\
      --model sft=runs/demo/models/sft --model raft=runs/demo/models/raft \\
      --model grounded=runs/demo/models/grounded --checker runs/demo/checker
  grounded evaluate KB --base BASE --out REPORT --model grounded=MODEL --per-group 0
  grounded evaluate KB --base smollm2 --out REPORT --model grounded=MODEL
  grounded evaluate KB --base BASE --out REPORT --baselines      # trained models only
  grounded evaluate KB --base BASE --out REPORT --model grounded=MODEL --checker CHECKER \
      --guard rag grounded          # also score rag and grounded behind the guard

The guard (--guard, --guard-modes) verifies each stated answer against the KB from its
question alone, as `grounded audit` would, then keeps it (supported), corrects it from the
KB (mode revise) or turns it into an abstention (mode abstain); rows VARIANT+MODE show
what a guarded deployment would say, beside what the model said.

--targets FILE checks acceptance targets (a YAML list, see grounded.evaluation.targets;
bench/targets.yaml holds the project's own) and lists each as reached or not. Variants
named grounded, no_constraint, no_feedback and no_embedding get ablation findings; any
other name is evaluated and tabled too.

writes REPORT/: report.json (every number with its denominator and 95% bootstrap interval),
report.md (tables), answers.jsonl (every answer and its outcome),
hallucination_by_group.png, accuracy_vs_abstention.png.
"""


@register_command("evaluate")
def register_evaluate(sub: argparse._SubParsersAction) -> None:
    from grounded.evaluation.runner import EvaluateConfig

    p = sub.add_parser(
        "evaluate",
        help="compare hallucination rates of grounded, ungrounded and baseline variants",
        description="Every variant answers the same questions (per entity group: seen, known, "
        "unknown, out-of-KB) with greedy decoding and the real retriever; answers are scored "
        "against the graph. Reports accuracy, hallucination rate (over all and over answered "
        "questions) and abstention rate, each with its denominator and a 95% bootstrap "
        "interval, per variant, group and relation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kb", help="knowledge base folder the models were trained against")
    add_base_arguments(p)
    p.add_argument("--out", required=True, help="report folder to write")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a trained model folder (from `grounded train`) and its variant name; repeat",
    )
    p.add_argument("--checker", help="fact-checker folder: judges free-text answers and is "
                   "scored as an auditor of the answers")  # fmt: skip
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_arguments(p, EvaluateConfig, "evaluation")
    p.set_defaults(func=_evaluate)


def parse_models(values: list[str]) -> dict[str, str]:
    """``["sft=runs/sft", ...]`` → ``{"sft": "runs/sft"}``.

    Raises:
        UsageError: a value lacks ``=``, or a name repeats.
    """
    models: dict[str, str] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise UsageError(
                f"`--model` takes NAME=FOLDER (e.g. grounded=runs/model), got {value!r}"
            )
        if name in models:
            raise UsageError(f"`--model` names {name!r} twice")
        models[name] = folder
    return models


def _evaluate(args: argparse.Namespace) -> int:
    from grounded.evaluation.report import render_summary
    from grounded.evaluation.runner import EvaluateConfig, evaluate

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [EvaluateConfig], origin, extra={"model"})
    models = parse_models(list(yaml_values.pop("model", [])) + args.model)
    config = build_config(EvaluateConfig, args, yaml_values, origin=origin)
    result = evaluate(
        args.kb, args.base, models, args.out, config, checker=args.checker,
        show_progress=not args.quiet, base_cache=args.base_cache,
    )  # fmt: skip
    print(render_summary(result.report))
    print(f"\nwrote {Path(args.out)}/: " + ", ".join(p.name for p in result.files))
    return 0
