"""``grounded train`` and ``grounded generate``: fine-tune a grounded adapter, then answer."""

from __future__ import annotations

import argparse
import json
import os

from grounded.cli.main import BASE_HELP, UsageError, add_base_arguments, register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

TRAIN_EPILOG = """\
examples:
  grounded train runs/countries/kb --base runs/countries/base --out runs/countries/model
  grounded train KB --base smollm2 --out MODEL               # SmolLM2-135M-Instruct (GGUF)
  grounded train KB --base my-model.Q8_0.gguf --out MODEL --base-cache /data/bases
  grounded train KB --base BASE --out MODEL --config train.yaml --resume
  grounded train KB --base BASE --out sft --injection none --constraint-weight 0 --feedback-every 0
  grounded train KB --base BASE --out raft --injection text --constraint-weight 0 --feedback-every 0
  accelerate launch --num_processes 2 -m grounded train KB --base BASE --out MODEL

writes MODEL/: adapter_config.json + adapter_model.safetensors (PeftModel.from_pretrained),
injection.json + injection.safetensors, grounding.json (base, KB + checksum, every setting),
groups.json (seen / known / unknown / out_of_kb), log_history.json, feedback.jsonl.
"""


@register_command("train")
def register_train(sub: argparse._SubParsersAction) -> None:
    from grounded.training.config import TrainConfig

    p = sub.add_parser(
        "train",
        help="fine-tune a grounded adapter of a base model on a knowledge base",
        description="Fine-tune a PEFT adapter with knowledge injection (evidence as text and "
        "as soft tokens), a knowledge-constraint loss (graph-contradicted answers pushed "
        "down) and fact-checker feedback (the model's refuted answers pushed down).",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kb", help="knowledge base folder (from `grounded kb build`)")
    add_base_arguments(p)
    p.add_argument("--out", required=True, help="folder to write the trained model to")
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument(
        "--checker",
        help="fact-checker folder: feedback rounds judge with the graph, then this checker "
        "(default: the graph alone)",
    )
    add_dataclass_arguments(p, TrainConfig, "training")
    p.set_defaults(func=_train)


@register_command("generate")
def register_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="answer questions with a trained grounded model and show its evidence",
        description="Retrieve evidence, inject it as the model was trained to read it, and "
        "answer greedily.",
        epilog='examples:\n  grounded generate runs/countries/model "What is the capital of '
        'Mongolia?"\n  grounded generate MODEL "What is the capital of Chad?" --guard revise '
        "--checker CHECKER\n\n"
        "--guard verifies each answer against the KB (graph first, then the checker when "
        "given)\nbefore it is shown: abstain turns unsupported answers into the abstention "
        "phrase;\nrevise corrects them from the KB where it can. The model's own words are "
        "printed too.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="trained model folder (from `grounded train`)")
    p.add_argument("question", nargs="+", help="one or more questions")
    p.add_argument("--kb", help="knowledge base folder (default: the one in grounding.json)")
    add_base_arguments(p, required=False, help=f"{BASE_HELP} (default: the one in grounding.json)")
    p.add_argument("--max-new-tokens", type=int, help="tokens generated per answer")
    p.add_argument(
        "--guard",
        choices=["abstain", "revise"],
        help="verify answers against the KB before showing them (see below)",
    )
    p.add_argument("--checker", help="fact-checker folder the guard uses (default: graph only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_generate)


def _train(args: argparse.Namespace) -> int:
    from grounded.training.config import TrainConfig
    from grounded.training.pipeline import train

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [TrainConfig], origin)
    config = build_config(TrainConfig, args, yaml_values, origin=origin)
    result = train(
        args.kb, args.base, args.out, config, checker=args.checker, base_cache=args.base_cache
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = next((e for e in reversed(result.log_history) if "loss_lm" in e), {})
    print(
        f"\ntrained {result.steps} steps in {result.seconds:.1f} s on {result.world_size} "
        f"process(es), {result.tokens_per_second:,.0f} tokens/s per process"
        + (f" (resumed from step {result.resumed_from})" if result.resumed_from else "")
    )
    if last:
        terms = "   ".join(
            f"{k} {last[k]:.4f}" for k in ("loss_lm", "loss_constraint", "loss_feedback")
        )
        print(f"  last logged: {terms}")
    if result.feedback:
        shares = " → ".join(f"{r['refuted_share']:.2f}" for r in result.feedback)
        print(f"  refuted share per feedback round: {shares}")
    if result.groups is not None:
        counts = result.groups.counts()
        print("  entity groups: " + "   ".join(f"{g} {n}" for g, n in counts.items()))
    print(
        f"wrote {result.out}/ (adapter, injection.safetensors, grounding.json, groups.json, "
        "log_history.json, feedback.jsonl)"
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    from grounded.model.generate import GroundedModel

    if args.checker and not args.guard:
        raise UsageError("`--checker` is read by the guard; add `--guard abstain` or `revise`")
    model = GroundedModel.from_pretrained(
        args.model, args.kb, base=args.base, base_cache=args.base_cache
    )
    guard = None
    if args.guard:
        from grounded.verify.guard import Guard, GuardConfig

        if model.kb is None:
            raise UsageError("`--guard` needs a knowledge base: pass `--kb`")
        guard = Guard.from_kb(model.kb, args.checker, GuardConfig(args.guard))
    answers = model.answer(args.question, max_new_tokens=args.max_new_tokens, guard=guard)
    if args.json:
        print(json.dumps([a.to_dict() for a in answers], indent=2, ensure_ascii=False))
        return 0
    modes = "+".join(model.modes) or "none"
    for a in answers:
        print(f"\nQ: {a.question}\nA: {a.text}")
        if a.guard_action is not None:
            print(f"   guard: {a.guard_action} (the model said: {a.original or '(nothing)'})")
        if not a.evidence:
            print(f"   (no evidence: injection {modes})")
            continue
        print(f"   evidence given to the model (injection {modes}):")
        for i, e in enumerate(a.evidence, 1):
            print(f"   {i:>3}  {e.score:6.3f}  {e.source:<6}  {e.text}")
    return 0
