"""Reading probe (issue 10): does a base model answer from its evidence?

Greedy answers in the grounded prompt format (``Evidence:`` / ``Question:`` / ``Answer:``) to
200 fresh items about made-up entities, whose relations and phrasings come from held-out pools
that reader training never draws from (:func:`grounded.pretrain.reader.reading_probe_sets`):

- ``1_line``: one evidence line, the answer in it;
- ``5_lines``: the answer line among four distractors (the same relation of other subjects,
  other relations of the same subject, unrelated facts), at a random position;
- ``unanswerable``: 1 to 5 lines that lack the subject asked (half) or the relation asked
  (half); the right answer is the abstention phrase.

Scored by exact match against the answer as the evidence gives it (``Answer.`` or
``I don't know.``). The training cost comes from the model's own manifest: ``reader.json``
(``grounded pretrain-reader``: CPU minutes) or ``grounded_pretrain.json`` (``grounded
pretrain``: training seconds).

    python bench/bench_reading.py grounded/pretrain/reader
    python bench/bench_reading.py runs/demo/base --out bench/results/reading_base.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from grounded.pretrain.probe import probe_reading
from grounded.pretrain.reader import READER_FILE, reading_probe_sets
from kg.io import atomic_write_json


def training_cost(model_dir: Path) -> dict:
    """CPU minutes (or wall seconds) of training, read from the model folder's manifest."""
    reader = model_dir / READER_FILE
    if reader.is_file():
        m = json.loads(reader.read_text(encoding="utf-8"))
        t = m["train"]
        return {
            "route": "pretrain-reader",
            "cpu_minutes": t.get("cpu_minutes"),
            "tokens": t.get("tokens"),
            "steps": t.get("steps"),
            "num_parameters": t.get("num_parameters"),
            "command": m.get("command"),
            "settings": m.get("settings"),
        }
    split = model_dir / "grounded_pretrain.json"
    if split.is_file():
        m = json.loads(split.read_text(encoding="utf-8"))
        t = m.get("train", {})
        return {
            "route": "pretrain",
            "cpu_minutes": t.get("cpu_minutes"),
            "train_wall_minutes": round(t["seconds"] / 60, 2) if "seconds" in t else None,
            "tokens": t.get("tokens"),
            "steps": t.get("steps"),
            "num_parameters": t.get("num_parameters"),
            "settings": m.get("settings"),
        }
    return {"route": "unknown (no manifest)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a causal-LM folder (reader or base model)")
    parser.add_argument("--items", type=int, default=200, help="items per set (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the probe items")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/reading.json"), help="JSON to write"
    )
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=False)
    results: dict = {
        "model": str(args.model),
        "items_per_set": args.items,
        "probe_seed": args.seed,
        "training": training_cost(args.model),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sets": {},
    }
    t0 = time.perf_counter()
    for name, items in reading_probe_sets(args.items, seed=args.seed).items():
        r = probe_reading(model, tokenizer, items)
        results["sets"][name] = r
        print(f"  {name:<13} exact match {r['accuracy']:.3f} ({r['correct']}/{r['total']})")
    results["probe_seconds"] = round(time.perf_counter() - t0, 1)
    cost = results["training"]
    print(f"  training: {cost.get('route')}, {cost.get('cpu_minutes')} CPU minutes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
