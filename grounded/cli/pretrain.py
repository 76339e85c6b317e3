"""``grounded pretrain``: train the embedded default base model on a knowledge base."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from grounded.cli.main import register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

if TYPE_CHECKING:
    from grounded.pretrain import PretrainConfig, PretrainResult

EPILOG = """\
examples:
  grounded pretrain runs/countries/kb --out runs/countries/base
  grounded pretrain runs/countries/kb --out runs/countries/base --resume   # after an interruption
  grounded pretrain runs/countries/kb --out /tmp/base --preset quick       # a tiny model in ~1 min
  grounded pretrain runs/countries/kb --out base --config pretrain.yaml --known-fraction 0.6

Settings come from defaults < --preset < --config YAML < flags. The run writes resumable
checkpoints to OUT.checkpoints/ and moves the finished model to OUT/ in one step: config.json,
model.safetensors, the tokenizer and grounded_pretrain.json (the known/unknown split).
"""


@register_command("pretrain")
def register(sub: argparse._SubParsersAction) -> None:
    from grounded.pretrain.config import PRESETS, PretrainConfig

    parser = sub.add_parser(
        "pretrain",
        help="train the small default base model on a knowledge base",
        description="Train a byte-level BPE tokenizer and a small Llama from scratch on the "
        "facts of a seeded 'known' part of the knowledge base's subjects; the other subjects "
        "stay unknown to the model. Saved as a Hugging Face checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kb", help="knowledge base folder (from `grounded kb build`)")
    parser.add_argument("--out", required=True, help="folder to write the base model to")
    parser.add_argument("--config", help="YAML file with any of the settings below")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="named bundle of settings under the YAML file and flags (quick: a tiny model)",
    )
    add_dataclass_arguments(parser, PretrainConfig, "pretraining")
    parser.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    # Before torch loads OpenMP: threads that spin while they wait make training several
    # times slower when other work shares the cores (measured 8x on 2 busy cores), and
    # cost little when it does not. A value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from grounded.pretrain import PRESETS, PretrainConfig, checkpoints_dir, pretrain

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    yaml_preset = yaml_values.pop("preset", None)
    preset = args.preset or yaml_preset
    check_yaml_keys(yaml_values, [PretrainConfig], origin)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {preset!r}")
    base = PretrainConfig.from_preset(preset or "default")
    config = build_config(PretrainConfig, args, yaml_values, origin=origin, base=base)
    try:
        result = pretrain(args.kb, args.out, config)
    except KeyboardInterrupt:
        ckpt = checkpoints_dir(args.out)
        if ckpt.is_dir() and any(ckpt.glob("checkpoint-*")):
            print(f"\ncheckpoints are in {ckpt}/: continue with --resume", file=sys.stderr)
        raise
    _print_summary(result, config)
    return 0


def _print_summary(result: PretrainResult, config: PretrainConfig) -> None:
    split, t = result.split, result.train
    print(f"\npretrained a base model for {split.kb_name} in {_duration(result.seconds)}")
    print(
        f"  subjects: {len(split.known_subjects):,} known, {len(split.unknown_subjects):,} "
        f"unknown (seed {split.seed})"
    )
    print(
        f"  corpus: {t['corpus_documents']:,} documents, {t['corpus_tokens']:,} tokens in "
        f"{t['blocks']:,} blocks of {config.block_size}; vocabulary {t['vocab_size']:,}"
    )
    print(
        f"  model: Llama, {t['num_parameters'] / 1e6:.2f}M parameters (hidden "
        f"{config.hidden_size}, {config.num_layers} layers, {config.num_heads} heads)"
    )
    resumed = f", resumed at step {t['resumed_from_step']}" if t.get("resumed_from_step") else ""
    loss = (
        f"loss {t['first_loss']:.3f} -> {t['final_loss']:.3f}"
        if t.get("first_loss") is not None
        else f"mean loss {t['mean_loss']:.3f}"
    )
    print(
        f"  training: {t['steps']:,} steps ({t['epochs']:.1f} epochs{resumed}) in "
        f"{_duration(t['seconds'])}, {t['tokens_per_second']:,.0f} tokens/s on {t['device']}; "
        f"{loss}"
    )
    files = sorted(p.name for p in Path(result.path).iterdir())
    print(f"wrote {result.path}/ ({', '.join(files)})")
    if result.checkpoints is not None:
        print(f"kept checkpoints in {result.checkpoints}/")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
