"""`grounded serve` under load (issue 18), on loopback only, bounded in count and time.

Each server runs as its own process (``python -m grounded serve``) on a free 127.0.0.1 port,
so its memory is measured apart from the clients'. One run measures, side by side:

1. Equivalence: the questions of ``grounded evaluate`` (its ``per_group`` sample, greedy,
   the same ``max_new_tokens``) through the server give the answers evaluate wrote.
2. Throughput and latency: requests per second, p50 and p99 latency at 1, 4 and 16
   concurrent clients, guard off and guard on (``--guard-mode``), batched; and the same
   levels one request at a time (``--max-batch-size 1``). Target: batched >= 3x unbatched at
   16 clients.
3. Soak: ``--soak`` mixed requests (chat, stream, audit; 10% malformed) from 16 clients.
   Targets: every well-formed request answered (200), every malformed one a 4xx, no 5xx,
   the server's memory (RSS) grows <= 5% from request 500 to the last.

    python bench/bench_serve.py --kb runs/demo/kb --model runs/demo/models/grounded \\
        --checker runs/demo/checker --out bench/results/serve.json
    python bench/bench_serve.py --kb KB --model MODEL --quick      # a smoke run, ~1 minute

Timings depend on the machine and on what else runs on it: rerun the baseline in the same
run before comparing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent

MALFORMED: list[bytes] = [
    b'{"messages": [',
    b"[1, 2, 3]",
    json.dumps({"model": "grounded"}).encode(),  # no messages
    json.dumps({"messages": [{"role": "robot", "content": "hi"}]}).encode(),
    json.dumps({"messages": [{"role": "user", "content": "hi"}], "n": 4}).encode(),
    json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}).encode(),
    json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}).encode(),
    json.dumps({"text": 5}).encode(),  # to /v1/audit
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


class Server:
    """``grounded serve`` in a subprocess on a free loopback port."""

    def __init__(self, args: argparse.Namespace, *, guard: str, max_batch_size: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "grounded",
            "serve",
            args.kb,
            "--model",
            args.model,
            "--port",
            str(self.port),
            "--guard",
            guard,
            "--model-name",
            "grounded",
            "--max-batch-size",
            str(max_batch_size),
            "--batch-window-ms",
            str(args.batch_window_ms),
            "--generation",
            args.generation,
            "--log-level",
            "warning",
        ]
        if args.checker:
            cmd += ["--checker", args.checker]
        env = {**os.environ, "GROUNDED_API_KEY": "", "HF_HUB_OFFLINE": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.communicate()[1] if self.proc.poll() is not None else ""
                raise RuntimeError(f"the server did not start: {err[-3000:]}")
            time.sleep(0.3)

    def rss_mib(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/health", timeout=10).json()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def chat_body(question: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "grounded",
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": question}],
    }


# -- 1. equivalence ------------------------------------------------------------------------------
def evaluate_answers(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """``grounded evaluate``'s rows for the model (variant ``grounded``, no baselines)."""
    from grounded.evaluation.runner import EvaluateConfig, evaluate
    from grounded.model.artifacts import read_grounding

    base = args.base or read_grounding(args.model)["base_model"]
    config = EvaluateConfig(
        per_group=args.per_group,
        baselines=[],
        plots=False,
        max_new_tokens=args.max_tokens,
        n_boot=10,
    )
    result = evaluate(
        args.kb,
        base,
        {"grounded": args.model},
        work / "evaluate",
        config,
        show_progress=False,
        log=lambda s: None,
    )
    # Counterfactual questions are left out: evaluate injects the group's substitute fact
    # into their evidence, which a server (real retrieval only) never does.
    return [r for r in result.rows if r["variant"] == "grounded" and r["group"] != "counterfactual"]


def equivalence(server: Server, rows: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    def ask(question: str) -> str:
        r = httpx.post(
            f"{server.url}/v1/chat/completions", json=chat_body(question, max_tokens), timeout=300
        )
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(16) as pool:  # concurrent, so the server batches as in use
        served = list(pool.map(ask, [r["question"] for r in rows]))
    differ = [
        {"question": r["question"], "evaluate": r["answer"], "serve": s}
        for r, s in zip(rows, served, strict=True)
        if r["answer"] != s
    ]
    return {
        "questions": len(rows),
        "identical": len(rows) - len(differ),
        "differences": differ[:10],
        "reached": not differ,
    }


# -- 2. throughput -------------------------------------------------------------------------------
def load(
    server: Server,
    questions: list[str],
    clients: int,
    requests: int,
    max_tokens: int,
    time_limit: float,
) -> dict[str, Any]:
    """``requests`` chat requests from ``clients`` threads (each its own connection)."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    stop_at = time.monotonic() + time_limit

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                q = questions[i % len(questions)]
                t0 = time.perf_counter()
                r = http.post(f"{server.url}/v1/chat/completions", json=chat_body(q, max_tokens))
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    statuses.append(r.status_code)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": len(latencies),
        "ok": statuses.count(200),
        "seconds": round(wall, 3),
        "rps": round(len(latencies) / wall, 3) if wall else None,
        "p50_ms": round(1000 * percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
    }


def throughput(
    server: Server, args: argparse.Namespace, questions: list[str], label: str
) -> list[dict[str, Any]]:
    rows = []
    before_sizes = server.health().get("batch_sizes", {})
    for clients in args.clients:
        before = server.health()["served"]
        n = max(args.requests_per_client * clients, args.min_requests)
        row = load(server, questions, clients, n, args.max_tokens, args.level_time_limit_s)
        after = server.health()["served"]
        batches = after.get("batches", 0) - before.get("batches", 0)
        jobs = after.get("batched_jobs", 0) - before.get("batched_jobs", 0)
        row["mean_batch_size"] = round(jobs / batches, 2) if batches else None
        sizes = server.health().get("batch_sizes", {})
        row["batch_sizes"] = {
            k: v - before_sizes.get(k, 0) for k, v in sizes.items() if v - before_sizes.get(k, 0)
        }
        before_sizes = sizes
        rows.append({"setting": label, **row})
        print(
            f"  {label:<26} {clients:>2} clients: {row['rps']:>7} req/s, p50 "
            f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms ({row['ok']}/{row['requests']} ok, "
            f"mean batch {row['mean_batch_size']})",
            flush=True,
        )
    return rows


# -- 3. soak -------------------------------------------------------------------------------------
def soak(server: Server, args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    questions = [r["question"] for r in rows]
    said = {r["question"]: r["answer"] for r in rows}
    rng = random.Random(0)
    kinds = []
    for _ in range(args.soak):
        x = rng.random()
        kinds.append(
            "malformed" if x < 0.1 else "chat" if x < 0.6 else "stream" if x < 0.8 else "audit"
        )
    plan = [(k, rng.choice(questions), rng.choice(MALFORMED)) for k in kinds]
    lock = threading.Lock()
    counter = iter(range(len(plan)))
    done = {"n": 0}
    results: list[tuple[str, int, bool]] = []
    rss: dict[str, float] = {"start": server.rss_mib()}
    mark = min(500, len(plan))
    stop_at = time.monotonic() + args.soak_time_limit_s

    def one(http: httpx.Client, kind: str, question: str, bad: bytes) -> tuple[int, bool]:
        url = server.url
        if kind == "malformed":
            path = "/v1/audit" if bad.startswith(b'{"text"') else "/v1/chat/completions"
            r = http.post(url + path, content=bad, headers={"Content-Type": "application/json"})
            return r.status_code, "error" in r.json()
        if kind == "audit":
            r = http.post(f"{url}/v1/audit", json={"question": question, "text": said[question]})
            return r.status_code, r.status_code == 200 and "rows" in r.json()
        if kind == "stream":
            with http.stream(
                "POST",
                f"{url}/v1/chat/completions",
                json=chat_body(question, args.max_tokens, True),
            ) as r:
                body = r.read().decode()
            return r.status_code, body.rstrip().endswith("data: [DONE]")
        r = http.post(f"{url}/v1/chat/completions", json=chat_body(question, args.max_tokens))
        return r.status_code, r.status_code == 200 and bool(r.json().get("choices"))

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                kind, question, bad = plan[i]
                try:
                    status, well = one(http, kind, question, bad)
                except (httpx.HTTPError, ValueError):
                    status, well = 0, False
                with lock:
                    results.append((kind, status, well))
                    done["n"] += 1
                    if done["n"] == mark:
                        rss["at_500"] = server.rss_mib()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rss["end"] = server.rss_mib()
    wall = time.perf_counter() - t0
    health = server.health()
    malformed = [r for r in results if r[0] == "malformed"]
    formed = [r for r in results if r[0] != "malformed"]
    growth = (rss["end"] - rss["at_500"]) / rss["at_500"] if "at_500" in rss else None
    out = {
        "planned": len(plan),
        "sent": len(results),
        "seconds": round(wall, 1),
        "by_kind": {
            k: sum(r[0] == k for r in results) for k in ("chat", "stream", "audit", "malformed")
        },
        "well_formed_answered": sum(r[1] == 200 and r[2] for r in formed),
        "well_formed": len(formed),
        "malformed_4xx": sum(400 <= r[1] < 500 and r[2] for r in malformed),
        "malformed": len(malformed),
        "status_5xx": sum(r[1] >= 500 for r in results),
        "transport_errors": sum(r[1] == 0 for r in results),
        "rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "rss_growth_500_to_end": round(growth, 4) if growth is not None else None,
        "served": health.get("served"),
        "batch_sizes": health.get("batch_sizes"),
    }
    out["targets"] = {
        "every_well_formed_answered": out["well_formed_answered"] == out["well_formed"],
        "every_malformed_4xx": out["malformed_4xx"] == out["malformed"],
        "no_5xx": out["status_5xx"] == 0 and out["transport_errors"] == 0,
        "memory_growth_le_5pct": growth is not None and growth <= 0.05,
        "all_sent": len(results) == len(plan),
    }
    return out


# -- main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--kb", required=True, help="knowledge base folder")
    p.add_argument("--model", required=True, help="trained model folder")
    p.add_argument("--checker", help="fact-checker folder (the guard and audits use it)")
    p.add_argument("--base", help="base model folder for evaluate (default: grounding.json's)")
    p.add_argument("--out", help="write the results JSON here")
    p.add_argument("--guard-mode", default="abstain", choices=["abstain", "revise"])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--requests-per-client", type=int, default=8)
    p.add_argument("--min-requests", type=int, default=32)
    p.add_argument("--level-time-limit-s", type=float, default=120.0)
    p.add_argument("--max-tokens", type=int, default=24, help="as evaluate's max_new_tokens")
    p.add_argument("--per-group", type=int, default=20, help="evaluate's questions per group")
    p.add_argument("--batch-window-ms", type=float, default=10.0)
    p.add_argument(
        "--generation",
        default="packed",
        choices=["packed", "padded"],
        help="the servers' generation (ServeConfig.generation)",
    )
    p.add_argument("--soak", type=int, default=2000, help="soak requests (0: no soak)")
    p.add_argument("--soak-time-limit-s", type=float, default=1200.0)
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of the servers")
    p.add_argument(
        "--parts",
        nargs="+",
        default=["equivalence", "throughput", "soak"],
        choices=["equivalence", "throughput", "soak"],
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 requests per client, per_group 3, soak 600",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.requests_per_client, args.min_requests, args.per_group = 2, 8, 3
        args.soak = min(args.soak, 600)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        rows = evaluate_answers(args, Path(tmp))
    questions = [r["question"] for r in rows]
    print(f"{len(questions)} questions from evaluate", flush=True)
    server = Server(args, guard="off", max_batch_size=32)
    try:
        results["model"] = server.health()["model"]
        if "equivalence" in args.parts:
            results["equivalence"] = eq = equivalence(server, rows, args.max_tokens)
            print(f"equivalence: {eq['identical']}/{eq['questions']} identical", flush=True)
        if "throughput" in args.parts:
            results["throughput"] = throughput(server, args, questions, "batched, guard off")
    finally:
        server.stop()
    if "throughput" in args.parts:
        for label, guard, size in (
            (f"batched, guard {args.guard_mode}", args.guard_mode, 32),
            ("one at a time, guard off", "off", 1),
        ):
            server = Server(args, guard=guard, max_batch_size=size)
            try:
                results["throughput"] += throughput(server, args, questions, label)
            finally:
                server.stop()
        by = {(r["setting"], r["clients"]): r for r in results["throughput"]}
        top = max(args.clients)
        batched, alone = by[("batched, guard off", top)], by[("one at a time, guard off", top)]
        ratio = batched["rps"] / alone["rps"] if alone["rps"] else None
        results["batching_speedup"] = {
            "clients": top,
            "ratio": round(ratio, 2) if ratio else None,
            "target": 3.0,
            "reached": bool(ratio and ratio >= 3),
        }
        print(f"batched / one at a time at {top} clients: {ratio:.2f}x (target >= 3)")
    if "soak" in args.parts and args.soak:
        server = Server(args, guard=args.guard_mode, max_batch_size=32)
        try:
            results["soak"] = s = soak(server, args, rows)
        finally:
            results["soak_exit_status"] = server.stop()
        print(
            f"soak: {s['sent']}/{s['planned']} sent, well-formed answered "
            f"{s['well_formed_answered']}/{s['well_formed']}, malformed 4xx "
            f"{s['malformed_4xx']}/{s['malformed']}, 5xx {s['status_5xx']}, RSS "
            f"{s['rss_mib']} (growth {s['rss_growth_500_to_end']})",
            flush=True,
        )
        print("soak targets: " + ", ".join(f"{k} {v}" for k, v in s["targets"].items()))
    if args.out:
        from kg.io import atomic_write_json

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(args.out), results)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
