"""Batched settings of ``grounded serve`` side by side at one concurrency, interleaved.

Every setting gets its own server (all started first, so they share the machine's state);
the load levels then run in turn, ``--rounds`` times (A B C D A B C D ...), so a drift of the
machine (a shared one) falls on every setting alike. Reports requests per second per
setting and round, and each ratio to one-at-a-time.

    python bench/ab_serve.py --kb KB --model MODEL --answers REPORT/answers.jsonl \\
        --clients 16 --requests 48 --rounds 2 --threads 1 --out /tmp/ab.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import Server, load

SETTINGS = {
    "packed": {"generation": "packed", "max_batch_size": 32},
    "padded (before)": {"generation": "padded", "max_batch_size": 32},
    "one at a time": {"generation": "padded", "max_batch_size": 1},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kb", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--checker")
    p.add_argument("--answers", required=True, help="evaluate's answers.jsonl (the questions)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=48)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--batch-window-ms", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--time-limit-s", type=float, default=300.0)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--out")
    args = p.parse_args(argv)
    rows = [json.loads(x) for x in Path(args.answers).read_text().splitlines() if x.strip()]
    questions = [
        r["question"] for r in rows if r["variant"] == "grounded" and r["group"] != "counterfactual"
    ]
    servers = {}
    try:
        for name in args.settings:
            s = SETTINGS[name]
            ns = argparse.Namespace(
                **vars(args), **{k: v for k, v in s.items() if k != "max_batch_size"}
            )
            servers[name] = Server(ns, guard="off", max_batch_size=s["max_batch_size"])
        results: dict[str, list[dict]] = {name: [] for name in servers}
        for r in range(args.rounds):
            for name, server in servers.items():
                before = server.health().get("batch_sizes", {})
                row = load(
                    server, questions, args.clients, args.requests, args.max_tokens,
                    args.time_limit_s,
                )  # fmt: skip
                after = server.health().get("batch_sizes", {})
                row["batch_sizes"] = {
                    k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)
                }
                row["round"] = r
                results[name].append(row)
                print(f"round {r} {name:<26} {row['rps']} req/s  batches {row['batch_sizes']}",
                      flush=True)  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
    summary = {
        name: round(statistics.fmean(x["rps"] for x in rs), 3) for name, rs in results.items()
    }
    out = {"settings": vars(args), "runs": results, "mean_rps": summary}
    if "one at a time" in summary:
        base = summary["one at a time"]
        out["ratio_to_one_at_a_time"] = {k: round(v / base, 2) for k, v in summary.items()}
        # per round, so a drift between rounds shows
        out["ratio_per_round"] = {
            k: [
                round(a["rps"] / b["rps"], 2)
                for a, b in zip(rs, results["one at a time"], strict=True)
            ]
            for k, rs in results.items()
        }
    print(json.dumps({k: out[k] for k in out if k not in ("runs", "settings")}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
