"""Grounded fine-tuning benchmark (issue 4, items 2–7).

Two jobs:

``throughput``: tokens/s of one optimizer step of each variant on the same model and data,
each variant in its own process (so peak memory is its own):

- ``plain_lora``: a plain LoRA step, prompt (with the same text evidence) + gold answer in
  one sequence, Hugging Face's own causal-LM loss;
- ``injection``: text + embedding injection (soft tokens), LM loss only;
- ``constraint``: + ``n_negatives`` graph-contradicted negatives per example;
- ``grounded``: + ``feedback_batch_size`` feedback-bank examples (the full grounded step).

Tokens counted are the same for every variant: the real prompt tokens plus the gold answer
tokens of the batch's own examples. The overhead is plain tokens/s ÷ variant tokens/s
(target: grounded ≤ 1.5×). A feedback round (greedy answers to ``feedback_samples``
prompts) runs every ``feedback_every`` steps; its cost is reported per round and amortized.

``curves``: a full ``grounded train`` run (default settings unless overridden) on a KB and
base; writes the loss curve of each term and the refuted share per feedback round (JSON and
PNG), and says whether the refuted share fell.

    grounded kb build --preset countries --out /tmp/kb-countries
    grounded pretrain /tmp/kb-countries --out /tmp/base-countries
    python bench/bench_train.py throughput --kb /tmp/kb-countries --base /tmp/base-countries
    python bench/bench_train.py curves --kb /tmp/kb-countries --base /tmp/base-countries \\
        --out-model /tmp/model-countries
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("plain_lora", "injection", "constraint", "grounded")


# -- throughput ------------------------------------------------------------------------------
def _examples(kb_path: str, n: int, seed: int) -> list[dict]:
    from grounded.data import build_examples, build_groups
    from grounded.kb import KnowledgeBase

    kb = KnowledgeBase.load(kb_path)
    groups = build_groups(kb, None, seed=seed)
    rows = build_examples(kb, groups.seen[: n * 2], questions_per_pair=1, seed=seed)
    return [dict(r) for r in rows][:n]


def _peak_mib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Steps:
    """The step of each variant on the same model weights, data and optimizer settings."""

    def __init__(self, opts: dict, variants: list[str]) -> None:
        import torch

        from grounded.injection import InjectionConfig, get_injection
        from grounded.kb import KnowledgeBase
        from grounded.losses import get_constraint
        from grounded.model.artifacts import load_base
        from grounded.model.batch import Batcher
        from grounded.model.grounding import GroundingModel
        from grounded.training.adapters import AdapterConfig, get_adapter_model

        torch.set_num_threads(opts["threads"])
        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.opts = opts
        self.examples = opts["examples"]
        kb = KnowledgeBase.load(opts["kb"])
        self.models, self.optimizers, self.batchers = {}, {}, {}
        for name in {"plain" if v == "plain_lora" else "grounded" for v in variants}:
            tokenizer, lm = load_base(opts["base"])
            torch.manual_seed(0)
            modes = [] if name == "plain" else ["text", "embedding"]
            config = InjectionConfig(modes=modes, evidence_dim=kb.index.dimension)
            injection = get_injection(config, lm)
            peft_lm = get_adapter_model(lm, AdapterConfig(lora_dropout=0.0))
            model = GroundingModel(peft_lm, injection).to(self.device).train()
            params = [p for p in model.parameters() if p.requires_grad]
            self.models[name] = model
            self.optimizers[name] = torch.optim.AdamW(params, lr=1e-4)
            self.batchers[name] = Batcher(
                tokenizer, kb, reads_vectors=bool(modes), n_negatives=opts["n_negatives"]
            )
        self.tokenizer = tokenizer
        self.constraint = get_constraint("margin")
        f = opts["feedback_batch_size"]
        self.bank = [
            {**ex, "negatives": ex["negatives"][:1] or ["Nowhere."], "feedback": True}
            for ex in self.examples[: max(f, 1) * 8]
        ]

    def chunk(self, i: int) -> list[dict]:
        bs = self.opts["batch_size"]
        return [self.examples[(i * bs + j) % len(self.examples)] for j in range(bs)]

    def plain_batch(self, chunk: list[dict]) -> dict:
        torch, batcher = self.torch, self.batchers["plain"]
        enc = batcher.encode_prompts(chunk)
        rows, labels = [], []
        for i, ex in enumerate(chunk):
            p = enc["prompt_ids"][i][enc["prompt_mask"][i].bool()].tolist()
            a = batcher.answer_ids(ex["answer"])
            rows.append(p + a)
            labels.append([-100] * len(p) + a)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        lab = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, la) in enumerate(zip(rows, labels, strict=True)):
            ids[i, : len(r)] = torch.tensor(r)
            lab[i, : len(r)] = torch.tensor(la)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": lab}

    def run(self, variant: str, i: int) -> int:
        """One optimizer step of ``variant`` on batch ``i``; returns the fresh tokens trained."""
        from grounded.training.trainer import loss_terms

        torch, dev = self.torch, self.device
        chunk = self.chunk(i)
        name = "plain" if variant == "plain_lora" else "grounded"
        model, optimizer = self.models[name], self.optimizers[name]
        if variant == "plain_lora":
            batch = {k: v.to(dev) for k, v in self.plain_batch(chunk).items()}
            tokens = int(batch["attention_mask"].sum())
            loss = model.lm(**batch).loss  # Hugging Face's causal-LM loss over all positions
        else:
            f = self.opts["feedback_batch_size"] if variant == "grounded" else 0
            extra = [self.bank[(i * f + j) % len(self.bank)] for j in range(f)]
            batch = self.batchers[name](chunk + extra, with_negatives=variant != "injection")
            layout = {k: batch.pop(k).to(dev) for k in ("gold_rows", "neg_rows", "is_feedback")}
            batch = {k: v.to(dev) for k, v in batch.items()}
            token_logp = model(**batch)
            terms = loss_terms(
                token_logp, batch["answer_ids"], batch["answer_mask"], **layout,
                constraint=self.constraint,
            )  # fmt: skip
            loss = terms.lm + 0.5 * terms.constraint + 0.5 * terms.feedback
            main = ~layout["is_feedback"]
            # prompt_mask is the text's own mask: soft tokens are added inside the model
            tokens = int(batch["prompt_mask"][main].sum()) + int(
                batch["answer_mask"][layout["gold_rows"][main]].sum()
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return tokens


def _timing(opts: dict, variants: list[str], queue) -> None:
    """Every variant in one process, step by step in turn: load on a shared machine drifts,
    and interleaving spreads it evenly over the variants."""
    import statistics

    steps = _Steps(opts, variants)
    for i in range(opts["warmup"]):
        for v in variants:
            steps.run(v, i)
    times: dict[str, list[float]] = {v: [] for v in variants}
    tokens: dict[str, int] = dict.fromkeys(variants, 0)
    for i in range(opts["warmup"], opts["warmup"] + opts["steps"]):
        for v in variants:
            t0 = time.perf_counter()
            tokens[v] += steps.run(v, i)
            times[v].append(time.perf_counter() - t0)
    out = {}
    for v in variants:
        median = statistics.median(times[v])
        out[v] = {
            "variant": v,
            "tokens": tokens[v],
            "seconds": round(sum(times[v]), 3),
            "median_step_seconds": round(median, 4),
            "tokens_per_second": round(tokens[v] / sum(times[v]), 1),
            "tokens_per_second_median": round(tokens[v] / opts["steps"] / median, 1),
            "device": str(steps.device),
        }
    if "grounded" in variants:
        from grounded.model.generate import generate_texts

        model = steps.models["grounded"].eval()
        t0 = time.perf_counter()
        generate_texts(
            model, steps.batchers["grounded"], steps.examples[: opts["feedback_samples"]],
            max_new_tokens=24,
        )  # fmt: skip
        out["grounded"]["feedback_round_seconds"] = round(time.perf_counter() - t0, 3)
    queue.put(out)


def _memory(opts: dict, variant: str, queue) -> None:
    """Peak memory of one variant alone (its own process)."""
    steps = _Steps(opts, [variant])
    for i in range(opts["warmup"] + 2):
        steps.run(variant, i)
    queue.put(round(_peak_mib(steps.device), 1))


def _in_process(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def throughput(args: argparse.Namespace) -> dict:
    examples = _examples(args.kb, args.batch_size * (args.steps + args.warmup), args.seed)
    opts = {
        "kb": args.kb, "base": args.base, "examples": examples, "batch_size": args.batch_size,
        "steps": args.steps, "warmup": args.warmup, "n_negatives": args.n_negatives,
        "feedback_batch_size": args.feedback_batch_size, "feedback_samples": args.feedback_samples,
        "threads": args.threads,
    }  # fmt: skip
    load_before = os.getloadavg()
    timing = _in_process(_timing, opts, list(args.variants))
    results = []
    for v in args.variants:
        r = timing[v]
        r["peak_memory_mib"] = _in_process(_memory, opts, v)
        results.append(r)
        print(
            f"{v:<12} {r['tokens_per_second']:>9,.0f} tokens/s   "
            f"median step {r['median_step_seconds']:.3f} s   peak {r['peak_memory_mib']:,.0f} MiB",
            flush=True,
        )
    plain = timing.get("plain_lora")
    for r in results:
        if plain is not None:
            r["overhead_vs_plain"] = round(plain["tokens_per_second"] / r["tokens_per_second"], 3)
            r["overhead_vs_plain_median"] = round(
                plain["tokens_per_second_median"] / r["tokens_per_second_median"], 3
            )
    grounded = timing.get("grounded")
    summary = {}
    if grounded is not None and plain is not None:
        per_step = grounded["seconds"] / args.steps
        amortized = per_step + grounded["feedback_round_seconds"] / args.feedback_every
        summary = {
            "grounded_overhead_step": grounded["overhead_vs_plain"],
            "grounded_overhead_step_median": grounded["overhead_vs_plain_median"],
            "grounded_overhead_with_feedback_rounds": round(
                amortized / (plain["seconds"] / args.steps), 3
            ),
            "target": 1.5,
        }
    return {
        "job": "throughput",
        "settings": {k: v for k, v in opts.items() if k != "examples"}
        | {
            "feedback_every": args.feedback_every,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
        },
        "results": results,
        "summary": summary,
    }


# -- loss curves and refuted share ------------------------------------------------------------
def curves(args: argparse.Namespace) -> dict:
    from grounded.training import TrainConfig, train

    settings = json.loads(args.settings) if args.settings else {}
    config = TrainConfig.from_dict({"overwrite": True, **settings}, origin="--settings")
    t0 = time.perf_counter()
    result = train(args.kb, args.base, args.out_model, config, show_progress=not args.quiet)
    wall = time.perf_counter() - t0
    terms = ("loss", "loss_lm", "loss_constraint", "loss_feedback")
    curve = [
        {"step": e["step"], **{k: e[k] for k in terms if k in e}}
        for e in result.log_history
        if "loss_lm" in e
    ]
    rounds = result.feedback
    shares = [r["refuted_share"] for r in rounds]
    out = {
        "job": "curves",
        "settings": config.to_dict(),
        "steps": result.steps,
        "wall_seconds": round(wall, 1),
        "tokens_per_second": result.tokens_per_second,
        "groups": result.groups.counts() if result.groups else {},
        "loss_curve": curve,
        "feedback_rounds": rounds,
        "refuted_share_first": shares[0] if shares else None,
        "refuted_share_last": shares[-1] if shares else None,
        "refuted_share_fell": bool(shares) and shares[-1] < shares[0],
    }
    if args.png:
        _plot(curve, rounds, Path(args.png))
        out["png"] = str(args.png)
    return out


def _plot(curve: list[dict], rounds: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for term in ("loss_lm", "loss_constraint", "loss_feedback"):
        pts = [(e["step"], e[term]) for e in curve if term in e]
        if pts:
            ax1.plot(*zip(*pts, strict=True), label=term)
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax1.set_title("loss terms")
    ax1.legend()
    if rounds:
        ax2.plot([r["step"] for r in rounds], [r["refuted_share"] for r in rounds], marker="o")
    ax2.set_xlabel("step")
    ax2.set_ylabel("refuted share")
    ax2.set_ylim(0, 1)
    ax2.set_title("fact-checker feedback: refuted share per round")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="job", required=True)
    t = sub.add_parser("throughput", help="tokens/s and peak memory per step variant")
    t.add_argument("--kb", required=True)
    t.add_argument("--base", required=True)
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--n-negatives", type=int, default=2)
    t.add_argument("--feedback-batch-size", type=int, default=1)
    t.add_argument("--feedback-samples", type=int, default=32)
    t.add_argument("--feedback-every", type=int, default=50)
    t.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1)))
    t.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=str(RESULTS / "train_throughput.json"))
    c = sub.add_parser("curves", help="loss curves per term and refuted share per round")
    c.add_argument("--kb", required=True)
    c.add_argument("--base", required=True)
    c.add_argument("--out-model", required=True, help="where the trained model is written")
    c.add_argument("--settings", help="JSON of TrainConfig overrides, e.g. '{\"epochs\": 2}'")
    c.add_argument("--png", default=str(RESULTS / "train_curves.png"))
    c.add_argument("--quiet", action="store_true")
    c.add_argument("--out", default=str(RESULTS / "train_curves.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = throughput(args) if args.job == "throughput" else curves(args)
    result["command"] = " ".join(["python", "bench/bench_train.py", *(argv or sys.argv[1:])])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(
        json.dumps(
            result.get("summary")
            or {
                k: result[k]
                for k in (
                    "steps",
                    "wall_seconds",
                    "refuted_share_first",
                    "refuted_share_last",
                    "refuted_share_fell",
                )
                if k in result
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
