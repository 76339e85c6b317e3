"""Pretraining benchmark (issue 4, part 1): `grounded pretrain` with defaults on the countries KB.

Measures, in one run:

1. the wall time of the command line ``grounded pretrain KB --out BASE`` (a subprocess, so
   imports, tokenizer training, training and saving all count), its tokens/s and peak memory;
2. how much the base model memorized: greedy answers to ``Question: ...\\nAnswer:`` for
   (subject, relation) pairs of known subjects (read in pretraining; should be high) and of
   unknown subjects (never read; should be low), scored by exact match, per relation.

The machine's load average is recorded beside the timings: other work on a shared machine
slows training down roughly in proportion.

    grounded kb build --preset countries --out /tmp/kb-countries
    python bench/bench_pretrain.py --kb /tmp/kb-countries --out bench/results/pretrain.json
    python bench/bench_pretrain.py --kb /tmp/kb-countries --base /tmp/base   # keep the model
    python bench/bench_pretrain.py --kb /tmp/kb-countries --base /tmp/base   # again: probe only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grounded.pretrain import load_pretrain_split, probe_exact_match
from kg import KnowledgeGraph


def run_cli(kb: Path, base: Path, extra: list[str]) -> dict:
    """Run ``grounded pretrain`` as a subprocess and time it."""
    cmd = [sys.executable, "-m", "grounded", "pretrain", str(kb), "--out", str(base), *extra]
    print("$", " ".join(cmd), flush=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "command": " ".join(cmd[1:]),
        "wall_seconds": round(wall, 1),
        "peak_rss_mib": round(peak, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }


def probe(kb: Path, base: Path, max_pairs: int | None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    graph = KnowledgeGraph.load(kb / "graph.json")
    split = load_pretrain_split(base)
    if split is None:
        raise SystemExit(f"{base} has no grounded_pretrain.json: not made by `grounded pretrain`")
    model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    out = {}
    for group, subjects in (("known", split.known_subjects), ("unknown", split.unknown_subjects)):
        t0 = time.perf_counter()
        result = probe_exact_match(model, tokenizer, graph, subjects, max_pairs=max_pairs)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        out[group] = result
        rels = sorted(result["per_relation"].items())
        per = ", ".join(f"{rel} {v['correct']}/{v['total']}" for rel, v in rels)
        print(
            f"  {group:<8} exact match {result['accuracy']:.3f} "
            f"({result['correct']}/{result['total']})   {per}"
        )
    return {"train": split.train, "settings": split.settings, "exact_match": out}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kb", type=Path, required=True, help="the countries KB folder")
    parser.add_argument(
        "--base",
        type=Path,
        help="write the base model here and keep it; if it exists, only probe it (no training)",
    )
    parser.add_argument(
        "--max-pairs", type=int, default=None, help="pairs per group to probe (default: all)"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("extra", nargs="*", help="extra flags for `grounded pretrain` (after --)")
    args = parser.parse_args()

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.base or Path(tmp) / "base"
        if not base.exists():
            results["cli"] = run_cli(args.kb, base, args.extra)
        results.update(probe(args.kb, base, args.max_pairs))
    t = results["train"]
    if "cli" in results:
        print(f"  wall time      {results['cli']['wall_seconds']:8.1f} s (whole command)")
    print(f"  training       {t['seconds']:8.1f} s, {t['steps']} steps, {t['epochs']} epochs")
    print(f"  tokens/s       {t['tokens_per_second']:8.0f}")
    print(f"  final loss     {t['final_loss']:8.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
