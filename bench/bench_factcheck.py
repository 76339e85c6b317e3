"""Fact-checker and audit benchmarks (issue 3), with the library defaults the CLI uses.

1. Checker quality on claims about held-out subjects (subjects never seen in training):
   accuracy, macro-F1, per-class F1 and the confusion matrix, for the neural checker alone
   (on the stored retrieved evidence) and combined (graph first, then the checker), plus the
   graph alone for reference. Targets: neural >= 0.95, combined >= 0.99.
2. Generality: the same steps, unchanged, on the cities knowledge base (claims are sampled:
   at most ``max_train_claims`` / ``max_test_claims``; the subjects covered are reported).
3. Audit throughput (claims/s, batched, CPU) and where the time goes (splitting, linking +
   graph, relation detection, retrieval, checker), on the countries test claims audited
   against (a) the full knowledge base, (b) the held-out one, where a third of the claims
   are not in the graph; each with the checker as trained and int8-quantized (`grounded
   audit --quantize`); and checker only (``use_graph`` off: every claim retrieved and
   judged), the worst case. Targets (issue 11): >= 300 claims/s where the graph decides every
   claim (``full_kb``), >= 40 claims/s on the checker path (``checker only``).

4. Free text (``--part freetext``, issue 11): a checker trained on the human-labelled sets
   allowed for training in ``../shared/data`` (SNLI dev, FEVER-Symmetric generated and dev,
   WiCE dev, SummEdits ``evaluation`` split) plus the countries KB's claims and FactCC-style
   transformations of its passages, calibrated on a dev split, then scored on held-out
   parts only: FEVER-Symmetric test (balanced accuracy, target >= 0.75), SummEdits test
   (balanced accuracy, >= 0.65; documents read in chunks), SNLI test (accuracy >= 0.80, and
   each label's recall >= 0.5), and paraphrased KB claims about held-out subjects that the
   graph cannot read (neural checker accuracy, >= 0.90). Skipped when ``../shared/data`` is
   absent. Results: ``bench/results/factcheck_freetext.json``.

    python bench/bench_factcheck.py --countries-kb runs/countries/kb --cities-kb runs/cities/kb
    python bench/bench_factcheck.py --part countries --countries-kb runs/countries/kb
    OMP_NUM_THREADS=1 python bench/bench_factcheck.py --part freetext --threads 1

A missing knowledge base folder is built first (``grounded kb build --preset NAME``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from grounded.config import config_from_dict, to_dict
from grounded.factcheck import (
    ClaimDataConfig,
    FactChecker,
    FactCheckerConfig,
    build_claim_data,
    evaluate_checker,
    evaluate_verifier,
    train_checker,
)
from grounded.factcheck.metrics import format_report
from grounded.kb import KnowledgeBase
from grounded.verify import Auditor, Document, VerifierConfig
from kg.io import atomic_write_json, atomic_write_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_or_build(path: Path, preset: str, countries: int | None = None) -> KnowledgeBase:
    """Open ``path``, or build the preset there first (optionally only ``countries`` countries).

    ``countries`` keeps the facts of that many randomly chosen countries and of their
    cities: the same schema, names and ambiguities at a fraction of the encoding time.
    """
    if (path / "manifest.json").is_file():
        return KnowledgeBase.load(path)
    from kg.presets import get_preset

    source = get_preset(preset)
    if countries:
        source = sample_countries(source, countries)
    return KnowledgeBase.build(source, path)


def sample_countries(source, n: int, seed: int = 0):
    """The cities source restricted to ``n`` countries (their facts and their cities')."""
    import random

    from kg import KnowledgeSource

    country_of = {t.subject: t.object for t in source.triples if t.relation == "country"}
    countries = sorted({t.subject for t in source.triples if t.relation == "continent"})
    keep = set(random.Random(seed).sample(countries, n))
    triples = [t for t in source.triples if t.subject in keep or country_of.get(t.subject) in keep]
    entities = {t.subject for t in triples} | {t.object for t in triples}
    aliases = {e: a for e, a in source.aliases.items() if e in entities}
    name = f"{source.name}-{n}-countries"
    return KnowledgeSource(triples, source.schema, aliases, [], name=name)


def quality(
    kb: KnowledgeBase,
    checker_out: Path,
    overrides: dict,
    trained: Path | None = None,
    verifier: VerifierConfig | None = None,
) -> tuple[dict, object, object]:
    """Claims → train → score, exactly what `grounded factcheck train` does.

    With ``trained`` (a checker folder from `grounded factcheck train` on this KB), training
    is skipped: the test claims are rebuilt from the settings it records (the same seed gives
    the same held-out subjects and claims) and scored.
    """
    t0 = time.perf_counter()
    if trained is not None:
        checker = FactChecker.from_pretrained(trained)
        stored = checker.metadata.get("data", {})
        if stored and "alias_notes" not in stored:
            stored = {**stored, "alias_notes": False}  # trained before alias notes existed
        data_config = config_from_dict(ClaimDataConfig, stored, origin=str(trained), unknown="warn")
        data = build_claim_data(kb, data_config, splits=("test",))
        train_log = checker.metadata.get("train_log", {})
        checker_settings = checker.metadata.get("train", {})
    else:
        data_config = ClaimDataConfig()
        checker_config = FactCheckerConfig.from_dict(overrides, origin="--checker-settings")
        data = build_claim_data(kb, data_config)
    data_s = time.perf_counter() - t0
    if trained is None:
        checker, log = train_checker(data.dataset["train"], checker_config)
        train_log, checker_settings = log.to_dict(), to_dict(checker_config)
        checker.metadata.update(
            kb={"name": kb.name, "checksum": kb.checksum, "path": str(kb.path)},
            data=to_dict(data_config),
        )
        checker.save_pretrained(checker_out)
    test = data.dataset["test"]
    out = {
        "kb": {"name": kb.name, "facts": len(kb.graph), "checksum": kb.checksum},
        "checker": str(trained or checker_out),
        "data": data.stats(),
        "data_seconds": round(data_s, 1),
        "train": train_log,
        "settings": {
            "claims": to_dict(data_config),
            "checker": checker_settings,
            "verifier": to_dict(verifier or VerifierConfig()),
        },
        "neural": evaluate_checker(checker, test),
        "combined": evaluate_verifier(data.view, test, checker, verifier),
        "graph": evaluate_verifier(data.view, test, None, verifier),
    }
    return out, checker, data


def throughput(kb: KnowledgeBase, data, checker, verifier: VerifierConfig | None = None) -> dict:
    test = data.dataset["test"]
    docs = [
        Document(t, q or None, f"test {i}")
        for i, (t, q) in enumerate(zip(test["text"], test["question"], strict=True))
    ]
    out = {}
    int8 = checker.quantized()  # what `grounded audit --quantize` runs
    base_config = verifier or VerifierConfig()
    checker_only = replace(base_config, use_graph=False)  # every claim: retrieval + checker
    runs = [
        ("full_kb", kb, checker, base_config),
        ("held_out_kb", data.view, checker, base_config),
        ("full_kb, int8 checker", kb, int8, base_config),
        ("held_out_kb, int8 checker", data.view, int8, base_config),
        ("held_out_kb, checker only", data.view, checker, checker_only),
        ("held_out_kb, checker only, int8", data.view, int8, checker_only),
    ]
    for name, base, model, config in runs:
        auditor = Auditor(base, model, verifier_config=config)
        auditor.audit(docs[:20])  # warm-up: relation templates, first batches
        report = auditor.audit(docs)
        t = report.timings
        out[name] = {
            "claims": len(report.claims),
            "claims_per_second": round(len(report.claims) / t["total"], 1),
            "decided_by": report.totals()["decided_by"],
            "seconds": {k: round(v, 3) for k, v in t.items()},
        }
    return out


def markdown(results: dict) -> str:
    lines = ["# Fact-checker benchmark", ""]
    env = results["environment"]
    lines.append(f"CPU threads {env['torch_threads']}, torch {env['torch']}, {env['platform']}")
    lines += ["", "## Targets", "", "| measure | target | measured | met |", "|---|---:|---:|---|"]
    for part in ("countries", "cities"):
        if part in results:
            for key, target in (("neural", 0.95), ("combined", 0.99)):
                acc = results[part][key]["accuracy"]
                lines.append(
                    f"| {part}: {key} accuracy | {target} | {acc:.4f} | "
                    f"{'yes' if acc >= target else 'no'} |"
                )
    for name, t in results.get("throughput", {}).items():
        cps = t["claims_per_second"]
        target = 40 if "checker only" in name else 300 if name.startswith("full_kb") else None
        if target is None:  # mixed paths: reported, no target of its own
            lines.append(f"| audit claims/s, {name} | — | {cps} | — |")
        else:
            met = "yes" if cps >= target else "no"
            lines.append(f"| audit claims/s, {name} | {target} | {cps} | {met} |")
    for part in ("countries", "cities"):
        if part not in results:
            continue
        r = results[part]
        te, log = r["data"]["test"], r["train"]
        lines += ["", f"## {part} ({r['kb']['facts']:,} facts; checker {r['checker']})", ""]
        if r.get("note"):
            lines += [r["note"], ""]
        if "train" in r["data"]:
            tr = r["data"]["train"]
            lines.append(f"Claims: train {tr['claims']} about {tr['subjects']} subjects.")
        st = r["settings"]
        lines.append(f"Checker settings: `{json.dumps(st['checker'], sort_keys=True)}`.")
        if "verifier" in st:
            lines.append(f"Verifier settings: `{json.dumps(st['verifier'], sort_keys=True)}`.")
        lines += [
            f"Test: {te['claims']} claims about {te['subjects']} held-out subjects; labels "
            f"{te['labels']}. Data {r['data_seconds']} s; training {log.get('seconds')} s "
            f"({log.get('steps')} steps over {log.get('examples')} pairs).",
            "",
        ]
        lines.append(format_report(r["neural"], "neural checker alone"))
        kinds = r["neural"].get("per_kind", {})
        lines.append(
            "neural accuracy per kind of claim: "
            + ", ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})" for k, v in kinds.items())
        )
        lines.append("")
        lines.append(format_report(r["combined"], "combined (graph, then checker)"))
        dec = r["combined"]["decided_by"]
        lines.append(
            "decided by: "
            + ", ".join(f"{k} {v['n']} (acc {v['accuracy']:.4f})" for k, v in dec.items())
        )
        lines.append("")
        lines.append(format_report(r["graph"], "graph alone (undecided → not enough info)"))
    if "throughput" in results:
        lines += ["", "## Audit throughput (countries test claims, batched, CPU)", ""]
        lines.append(
            "| KB | claims | claims/s | graph / checker / none | splitting | linking+graph "
            "| relations | retrieval | checker | total (s) |"
        )
        lines.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
        for name, t in results["throughput"].items():
            s, d = t["seconds"], t["decided_by"]
            lines.append(
                f"| {name} | {t['claims']} | {t['claims_per_second']} | {d['graph']} / "
                f"{d['checker']} / {d['none']} | {s['splitting']} | {s['linking']} | "
                f"{s['relations']} | {s['retrieval']} | {s['checker']} | {s['total']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--part", choices=["all", "countries", "cities", "freetext"], default="all")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--shared-data", type=Path, default=None, help="../shared/data by default")
    ap.add_argument("--freetext-checker", type=Path, help="score this checker, no training")
    ap.add_argument(
        "--snli-train", type=int, default=2500, help="SNLI dev pairs trained on (of 9,842)"
    )
    ap.add_argument(
        "--summedits-test", type=int, default=240, help="SummEdits test documents scored"
    )
    ap.add_argument(
        "--summedits-tune",
        type=int,
        default=150,
        help="held-out SummEdits `evaluation` documents the threshold is chosen on",
    )
    ap.add_argument(
        "--summedits-train",
        type=int,
        default=400,
        help="SummEdits `evaluation` documents trained on (sampled per domain and label)",
    )
    ap.add_argument(
        "--wice",
        action="store_true",
        help="train on half of WiCE dev's claims too (long evidence; the other half is the "
        "calibration set either way)",
    )
    ap.add_argument(
        "--silent-train",
        type=int,
        default=300,
        help="hard not-enough-info training pairs per source at most (WiCE dev's silent cited "
        "sentences, SummEdits `evaluation` sentences that do not bear on the edit)",
    )
    ap.add_argument(
        "--silent-test",
        type=int,
        default=300,
        help="same-topic silent evidence pairs scored per source (WiCE, SummEdits, SNLI "
        "neutral; test splits)",
    )
    ap.add_argument("--kb-claims", type=int, default=600, help="countries KB training claims")
    ap.add_argument(
        "--snli-test", type=int, default=2000, help="SNLI test pairs scored (sampled; 0: all)"
    )
    ap.add_argument("--countries-kb", type=Path, default=Path("runs/countries/kb"))
    ap.add_argument("--cities-kb", type=Path, default=Path("runs/cities/kb"))
    ap.add_argument(
        "--cities-countries",
        type=int,
        default=None,
        help="build a missing cities KB from this many countries only (default: all)",
    )
    ap.add_argument("--work", type=Path, default=Path("runs/bench_factcheck"))
    ap.add_argument("--countries-checker", type=Path, help="score this checker, no training")
    ap.add_argument("--cities-checker", type=Path, help="score this checker, no training")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument(
        "--checker",
        type=json.loads,
        default={},
        help="FactCheckerConfig overrides as JSON, e.g. '{\"num_train_epochs\": 2}'",
    )
    ap.add_argument(
        "--verifier",
        type=json.loads,
        default={},
        help="VerifierConfig overrides as JSON, e.g. '{\"min_confidence\": 0.5}'",
    )
    ap.add_argument(
        "--countries-note",
        default="",
        help="a paragraph on how the countries checker was trained, shown with its results",
    )
    ap.add_argument(
        "--cities-note",
        default="",
        help="a paragraph on how the cities KB was sampled, shown with its results",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    verifier = VerifierConfig(**args.verifier)
    if args.part == "freetext":
        from freetext import run_freetext

        run_freetext(args)
        return
    results: dict = {
        "environment": {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        }
    }
    if args.part in ("all", "countries"):
        kb = load_or_build(args.countries_kb, "countries")
        results["countries"], checker, data = quality(
            kb, args.work / "countries-checker", args.checker, args.countries_checker, verifier
        )
        results["countries"]["note"] = args.countries_note
        results["throughput"] = throughput(kb, data, checker, verifier)
        _write(args.out, results)
    if args.part in ("all", "cities"):
        kb = load_or_build(args.cities_kb, "cities", args.cities_countries)
        results["cities"], _, _ = quality(
            kb, args.work / "cities-checker", args.checker, args.cities_checker, verifier
        )
        results["cities"]["note"] = args.cities_note
        if args.part == "cities" and (args.out / "factcheck.json").is_file():
            # add the cities run to the countries results instead of a file of its own
            merged = json.loads((args.out / "factcheck.json").read_text(encoding="utf-8"))
            merged["cities"] = results["cities"]
            merged.setdefault("environment_cities", results["environment"])
            results = merged
        _write(args.out, results)
    print(markdown(results))


def _write(out: Path, results: dict) -> None:
    name = "factcheck" if "countries" in results else "factcheck_cities"
    atomic_write_json(out / f"{name}.json", results)
    atomic_write_text(out / f"{name}.md", markdown(results))


if __name__ == "__main__":
    main()
