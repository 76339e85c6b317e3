"""Knowledge-base benchmarks (issue 2), measured side by side in one run.

1. Retrieval quality on the countries KB: every (subject, relation) question from the
   relations' question templates, recall@1 and recall@5 of a gold fact, hybrid versus
   dense-only (target: hybrid recall@5 >= 0.99).
2. Scale on the cities KB: build throughput against the encoder's own throughput on the
   same texts (target: build within 1.3x of pure encoding), peak memory, query latency
   p50/p95 single and batched, and the approximate index's recall@10 against exact search
   with its speed-up (target >= 0.95).

    python bench/bench_kb.py                       # both parts, full size (cities: ~25 min)
    python bench/bench_kb.py --part countries
    python bench/bench_kb.py --part cities --cities-min-population 15000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from grounded.kb import KnowledgeBase
from grounded.retrieval import HybridRetriever, RetrievalConfig
from index import Encoder, IndexConfig, recall_against_exact
from kg.presets import get_preset


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def questions_of(kb: KnowledgeBase, max_pairs: int | None = None, seed: int = 0):
    """(question, subject, relation) for every (subject, relation) and question template."""
    pairs = sorted({(t.subject, t.relation) for t in kb.graph.triples()})
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    out = []
    for s, r in pairs:
        rel = kb.graph.schema[r]
        out.extend((q.format(subject=s), s, r) for q in rel.questions)
    return out


def recall(kb: KnowledgeBase, config: RetrievalConfig, questions, ks=(1, 5), batch=64):
    retriever = HybridRetriever(kb, config)
    hits = {k: 0 for k in ks}
    per_rel = defaultdict(lambda: [0, 0])
    for i in range(0, len(questions), batch):
        chunk = questions[i : i + batch]
        results = retriever.retrieve_batch([q for q, _, _ in chunk], k=max(ks))
        for (_, s, r), ev in zip(chunk, results, strict=True):
            ranks = [
                j
                for j, e in enumerate(ev)
                if e.triple and (e.triple.subject, e.triple.relation) == (s, r)
            ]
            first = ranks[0] if ranks else None
            for k in ks:
                hits[k] += first is not None and first < k
            per_rel[r][0] += first is not None and first < max(ks)
            per_rel[r][1] += 1
    n = len(questions)
    return {f"recall@{k}": hits[k] / n for k in ks} | {
        "n": n,
        "per_relation_recall@5": {r: round(a / b, 4) for r, (a, b) in sorted(per_rel.items())},
    }


def bench_countries(encoder: Encoder, workdir: Path) -> dict:
    source = get_preset("countries")
    t0 = time.perf_counter()
    kb = KnowledgeBase.build(source, workdir / "countries", encoder=encoder, show_progress=False)
    build_s = time.perf_counter() - t0
    qs = questions_of(kb)
    out = {"facts": len(kb.graph), "build_seconds": round(build_s, 2)}
    for mode in ("hybrid", "dense"):
        t0 = time.perf_counter()
        out[mode] = recall(kb, RetrievalConfig(mode=mode), qs)
        out[mode]["seconds"] = round(time.perf_counter() - t0, 2)
    print(f"\ncountries KB: {out['facts']} facts, {out['hybrid']['n']} questions")
    print(f"  {'mode':<8} {'recall@1':>9} {'recall@5':>9}")
    for mode in ("hybrid", "dense"):
        r = out[mode]
        print(f"  {mode:<8} {r['recall@1']:>9.4f} {r['recall@5']:>9.4f}")
    print("  hybrid recall@5 per relation:", out["hybrid"]["per_relation_recall@5"])
    return out


def _percentiles(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "p50_ms": round(1000 * statistics.median(xs), 2),
        "p95_ms": round(1000 * xs[int(0.95 * (len(xs) - 1))], 2),
    }


def bench_cities(encoder: Encoder, workdir: Path, min_population: int, n_queries: int) -> dict:
    t0 = time.perf_counter()
    source = get_preset("cities", min_population=min_population)
    load_s = time.perf_counter() - t0
    from kg import KnowledgeGraph

    graph = KnowledgeGraph.from_source(source)
    texts = [graph.verbalize(t) for t in graph.triples()] + [p.text for p in source.passages]
    print(f"\ncities KB: {len(graph):,} facts, {len(texts):,} texts to embed")

    # Pure encoding of the exact texts the build embeds, same encoder and batch size.
    t0 = time.perf_counter()
    encoder.encode(texts, batch_size=IndexConfig().batch_size, show_progress=True)
    encode_s = time.perf_counter() - t0

    rss_before = peak_rss_mib()
    t0 = time.perf_counter()
    kb = KnowledgeBase.build(source, workdir / "cities", encoder=encoder, show_progress=True)
    build_s = time.perf_counter() - t0
    out = {
        "facts": len(kb.graph),
        "entities": kb.graph.graph.number_of_nodes(),
        "index_kind": kb.index.config.kind if hasattr(kb.index, "config") else "?",
        "preset_load_seconds": round(load_s, 2),
        "encode_seconds": round(encode_s, 2),
        "encode_texts_per_second": round(len(texts) / encode_s, 1),
        "build_seconds": round(build_s, 2),
        "build_facts_per_second": round(len(texts) / build_s, 1),
        "build_over_encode": round(build_s / encode_s, 3),
        "peak_rss_mib": round(max(peak_rss_mib(), rss_before), 1),
        "kb_disk_mib": round(
            sum(p.stat().st_size for p in (workdir / "cities").rglob("*") if p.is_file()) / 2**20, 1
        ),
    }

    qs = questions_of(kb, max_pairs=n_queries, seed=0)[:n_queries]
    questions = [q for q, _, _ in qs]
    retriever = kb.retriever
    retriever.retrieve(questions[0])  # warm-up: relation templates, caches
    single = []
    for q in questions:
        t0 = time.perf_counter()
        retriever.retrieve(q)
        single.append(time.perf_counter() - t0)
    batched = []
    for i in range(0, len(questions), 32):
        chunk = questions[i : i + 32]
        t0 = time.perf_counter()
        retriever.retrieve_batch(chunk)
        batched.append((time.perf_counter() - t0) / len(chunk))
    out["query_single"] = _percentiles(single)
    out["query_batched_32_per_question"] = _percentiles(batched)
    out["hybrid"] = recall(kb, RetrievalConfig(), qs)

    # Approximate index against exact search on the same stored vectors.
    qvecs = encoder.encode(questions)
    out["approx_recall@10"] = round(recall_against_exact(kb.index, qvecs, k=10), 4)
    import faiss

    exact = faiss.IndexFlatIP(kb.index.dimension)
    exact.add(kb.index.vectors(kb.index.ids))
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        kb.index.search_vectors(qvecs, 10)
    approx_s = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        exact.search(qvecs, 10)
    exact_s = (time.perf_counter() - t0) / reps
    out["approx_search_ms_per_query"] = round(1000 * approx_s / len(qvecs), 4)
    out["exact_search_ms_per_query"] = round(1000 * exact_s / len(qvecs), 4)
    out["approx_speedup"] = round(exact_s / approx_s, 2)
    # One query at a time (interactive use): the batched figure above favours exact search,
    # whose BLAS matrix product amortizes over a batch while IVF's probing does not.
    few = qvecs[:200]
    t0 = time.perf_counter()
    for v in few:
        kb.index.search_vectors(v[None], 10)
    approx_1 = (time.perf_counter() - t0) / len(few)
    t0 = time.perf_counter()
    for v in few:
        exact.search(v[None], 10)
    exact_1 = (time.perf_counter() - t0) / len(few)
    out["approx_single_ms"] = round(1000 * approx_1, 4)
    out["exact_single_ms"] = round(1000 * exact_1, 4)
    out["approx_speedup_single"] = round(exact_1 / approx_1, 2)

    print(f"  encode only      {encode_s:8.1f} s  ({out['encode_texts_per_second']:.0f} texts/s)")
    print(f"  full build       {build_s:8.1f} s  ({out['build_facts_per_second']:.0f} facts/s)")
    print(f"  build / encode   {out['build_over_encode']:8.3f}   (target <= 1.3)")
    print(
        f"  ivf vs exact     batched {out['approx_speedup']}x, one query at a time "
        f"{out['approx_speedup_single']}x ({out['approx_single_ms']} vs "
        f"{out['exact_single_ms']} ms)"
    )
    s1, h = out["query_single"], out["hybrid"]
    print(f"  peak RSS         {out['peak_rss_mib']:8.0f} MiB")
    print(f"  query single     p50 {s1['p50_ms']} ms  p95 {s1['p95_ms']} ms")
    b = out["query_batched_32_per_question"]
    print(f"  query batched    p50 {b['p50_ms']} ms  p95 {b['p95_ms']} ms per question (batch 32)")
    print(
        f"  {out['index_kind']} recall@10 vs exact {out['approx_recall@10']:.4f} (target >= 0.95), "
        f"speed-up {out['approx_speedup']}x"
    )
    print(f"  hybrid recall@1 {h['recall@1']:.4f}  recall@5 {h['recall@5']:.4f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["countries", "cities", "all"], default="all")
    parser.add_argument("--cities-min-population", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=500, help="questions for latency (cities)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    encoder = Encoder.default()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("countries", "all"):
            results["countries"] = bench_countries(encoder, Path(tmp))
        if args.part in ("cities", "all"):
            results["cities"] = bench_cities(
                encoder, Path(tmp), args.cities_min_population, args.queries
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
