"""Triples from documents, end to end, on Re-DocRED (issue 19).

Data: ``../shared/data/redocred/dev_revised.json`` (500 Wikipedia documents, see
PROVENANCE.md). The documents are split once, by a seeded shuffle, into a part for training
and tuning and a held-out part for the figures; both lists of document ids (index in the
file and title) are written to ``bench/results/redocred_split.json``. Nothing was tuned to
the held-out part: the schema (``bench/redocred_schema.json``, the 20 most frequent
relations) was written from the relation names alone, as a user would.

End to end: the system finds the entities itself (no gold mentions). A predicted triple is
correct when its relation matches and its head and tail each match a mention name of the
gold head and tail entity of a gold triple of the same document, after normalisation
(:func:`kg.normalize`, a leading "the" dropped). Predictions are deduplicated per document;
a gold triple is found when some prediction matches it.

Reported per extractor alone and combined: micro precision, recall and F1 over the 20
relations at the default threshold, per relation, a precision-recall curve over
confidence, and throughput in sentences per second. With ``--checker`` each candidate is
verified against its sentence, and the share of wrong candidates removed and of right ones
kept at the threshold is reported.

    python bench/bench_extract.py                         # held-out part, no checker
    python bench/bench_extract.py --part train            # the tuning part
    python bench/bench_extract.py --checker runs/checker  # with verification

The model extractor (``model``, :mod:`grounded.extract.model`) is trained on the train part
only: its sentences labelled with the gold triples whose head and tail they both mention
(:func:`labelled_rows`; a third of the sentences without one, as ``none`` examples), plus
sentences rendered from the train part's gold triples taken as a KB (:func:`kb_facts`,
:func:`grounded.extract.examples_from_kb`). Then it is evaluated on the held-out part,
alone and combined with the pattern extractors (results ``extract_redocred_model.*``)::

    GROUNDED_EXTRACT_BASE=/path/to/smollm2-folder \
    python bench/bench_extract.py --train-extractor runs/extractor-redocred --docs 80
    python bench/bench_extract.py --extractor-model runs/extractor-redocred --docs 80

``--docs N`` keeps the first N documents of the part (the model reads about one sentence a
second on one CPU thread).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from grounded.extract import DEFAULT_MIN_CONFIDENCE, get_extractors, verify_candidates
from kg import Schema, normalize
from kg.extract import EntityFinder, Sentence, merge_candidates

HERE = Path(__file__).resolve().parent
# ../shared/data beside the repository (a worktree one level deeper finds it further up)
DATA = next(
    (
        p / "shared" / "data" / "redocred" / "dev_revised.json"
        for p in HERE.parents
        if (p / "shared" / "data" / "redocred" / "dev_revised.json").is_file()
    ),
    HERE.parent.parent / "shared" / "data" / "redocred" / "dev_revised.json",
)
SCHEMA = HERE / "redocred_schema.json"
RESULTS = HERE / "results"
SEED = 19
HELDOUT = 250
_NO_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)\]}%]|'s\b|n't\b|'\s)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$])\s+")


def detokenize(tokens: list[str]) -> str:
    """Tokens back to running text: no space before punctuation or after an opening bracket."""
    text = " ".join(tokens).replace("``", '"').replace("''", '"').replace("-LRB-", "(")
    text = text.replace("-RRB-", ")")
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


def key(name: str) -> str:
    """A name for matching: normalised, a leading "the" dropped."""
    k = normalize(detokenize(name.split()))
    return k[4:] if k.startswith("the ") else k


def split(docs: list[dict]) -> dict[str, list[int]]:
    """Seeded shuffle of the document indices: ``train`` and ``heldout`` (the last HELDOUT)."""
    order = list(range(len(docs)))
    random.Random(SEED).shuffle(order)
    return {"train": sorted(order[:-HELDOUT]), "heldout": sorted(order[-HELDOUT:])}


def gold_of(doc: dict, pid_to_rel: dict[str, str]) -> list[tuple[str, frozenset, frozenset]]:
    """(relation, head names, tail names) of each labelled triple of the 20 relations."""
    names = [frozenset(key(m["name"]) for m in ent) for ent in doc["vertexSet"]]
    out = {
        (pid_to_rel[lab["r"]], lab["h"], lab["t"])
        for lab in doc["labels"]
        if lab["r"] in pid_to_rel
    }
    return [(r, names[h], names[t]) for r, h, t in sorted(out)]


def same_sentence(doc: dict, pid_to_rel: dict[str, str]) -> tuple[int, int]:
    """(gold triples whose head and tail are mentioned in one sentence, all gold triples)."""
    sents = [{m["sent_id"] for m in ent} for ent in doc["vertexSet"]]
    labs = {(lab["r"], lab["h"], lab["t"]) for lab in doc["labels"] if lab["r"] in pid_to_rel}
    return sum(bool(sents[h] & sents[t]) for _, h, t in labs), len(labs)


def labelled_rows(docs: list[dict], indices: list[int], pid_to_rel: dict[str, str]) -> list[dict]:
    """One row per sentence of the documents: its text and the gold triples of the 20
    relations whose head and tail are both mentioned in it (the first mention of each, as
    written), for :func:`grounded.extract.data.read_labelled`. Sentences without one are
    rows with no triples (target ``none``)."""
    rows = []
    for i in indices:
        doc = docs[i]
        for k, toks in enumerate(doc["sents"]):
            triples = []
            for lab in doc["labels"]:
                if lab["r"] not in pid_to_rel:
                    continue
                hs = [m for m in doc["vertexSet"][lab["h"]] if m["sent_id"] == k]
                ts = [m for m in doc["vertexSet"][lab["t"]] if m["sent_id"] == k]
                if hs and ts:
                    h = detokenize(toks[hs[0]["pos"][0] : hs[0]["pos"][1]])
                    t = detokenize(toks[ts[0]["pos"][0] : ts[0]["pos"][1]])
                    triples.append([h, pid_to_rel[lab["r"]], t])
            rows.append({"text": detokenize(toks), "triples": triples, "doc": i, "sent": k})
    return rows


def kb_facts(docs: list[dict], indices: list[int], pid_to_rel: dict[str, str]) -> list:
    """The documents' gold triples of the 20 relations as a KB (each entity by the name of
    its first mention): the facts the extractor's KB-rendered sentences come from."""
    from kg import Triple

    out = set()
    for i in indices:
        doc = docs[i]
        name = [detokenize(ent[0]["name"].split()) for ent in doc["vertexSet"]]
        for lab in doc["labels"]:
            if lab["r"] in pid_to_rel and name[lab["h"]] != name[lab["t"]]:
                out.add(Triple(name[lab["h"]], pid_to_rel[lab["r"]], name[lab["t"]]))
    return sorted(out, key=lambda t: (t.subject, t.relation, t.object))


def train_model(args, docs, train_indices, schema, pid_to_rel) -> dict:
    """Train the model extractor on the train part; returns what it was trained on."""
    from grounded.extract import ExtractorTrainConfig, examples_from_kb, read_labelled
    from grounded.extract.training import (
        ExtractorAdapterConfig,
        ExtractorOptimConfig,
        train_extractor,
    )

    rows = labelled_rows(docs, train_indices, pid_to_rel)
    rng = random.Random(SEED)
    rows = [r for r in rows if r["triples"] or rng.random() < args.none_keep]
    labelled = Path(args.train_extractor + ".labelled.jsonl")
    labelled.parent.mkdir(parents=True, exist_ok=True)
    labelled.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    examples, dropped = read_labelled(labelled, schema)
    facts = kb_facts(docs, train_indices, pid_to_rel)
    examples += examples_from_kb(facts, schema, max_examples=args.kb_examples, seed=SEED)
    config = ExtractorTrainConfig(
        base=os.environ.get("GROUNDED_EXTRACT_BASE", "smollm2"),
        adapter=ExtractorAdapterConfig(layers=args.lora_layers),
        optim=ExtractorOptimConfig(max_steps=args.train_steps, learning_rate=1e-3,
                                   per_device_train_batch_size=8, logging_steps=10),
        seed=SEED,
    )  # fmt: skip
    counts = {"labelled": len(rows), "labelled_triples": sum(len(e.triples) for e in examples
              if e.origin == "labelled"), "labelled_not_spans": dropped,
              "kb_facts": len(facts), "kb_examples": args.kb_examples}  # fmt: skip
    model, log = train_extractor(examples, schema, config, data_counts=counts)
    model.save_pretrained(args.train_extractor)
    return {
        **counts,
        "steps": log.steps,
        "seconds": log.seconds,
        "train_loss": log.train_loss,
        "losses": list(log.losses),
        "examples": log.examples,
        "settings": config.to_dict(),
    }


def score(preds, gold, threshold: float) -> dict:
    """Micro P/R/F1 and per-relation counts at ``threshold``.

    Args:
        preds: doc → {(relation, head key, tail key): confidence}.
        gold: doc → [(relation, head names, tail names)].
    """
    per = defaultdict(lambda: {"tp_pred": 0, "pred": 0, "found": 0, "gold": 0})
    for doc, triples in gold.items():
        kept = [(r, h, t) for (r, h, t), c in preds.get(doc, {}).items() if c >= threshold]
        for r, h, t in kept:
            per[r]["pred"] += 1
            per[r]["tp_pred"] += any(gr == r and h in gh and t in gt for gr, gh, gt in triples)
        for gr, gh, gt in triples:
            per[gr]["gold"] += 1
            per[gr]["found"] += any(r == gr and h in gh and t in gt for r, h, t in kept)
    total = {k: sum(v[k] for v in per.values()) for k in ("tp_pred", "pred", "found", "gold")}

    def prf(c: dict) -> dict:
        p = c["tp_pred"] / c["pred"] if c["pred"] else 0.0
        r = c["found"] / c["gold"] if c["gold"] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {**c, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}

    return {"micro": prf(total), "per_relation": {r: prf(c) for r, c in sorted(per.items())}}


def run(names, schema, docs, indices, checker=None, options=None, cache=None) -> dict:
    """Extract with ``names`` (merged), score, and time. ``cache``: name → (candidates,
    seconds, parse counts) of extractors already run on these documents (the model reads each
    sentence once for all the runs); the seconds of a combination are the sum of its
    extractors' own."""
    finder = EntityFinder()
    cache = {} if cache is None else cache
    sentences, gold = [], {}
    pid_to_rel = {r.description.split()[-1]: r.name for r in schema}
    for i in indices:
        doc = docs[i]
        sentences += [
            Sentence(str(i), n, detokenize(toks), n) for n, toks in enumerate(doc["sents"], 1)
        ]
        gold[str(i)] = gold_of(doc, pid_to_rel)
    out: dict = {}
    found, extract_seconds = [], 0.0
    for name in names:
        if name not in cache:
            (ex,) = get_extractors([name], schema, finder, options=options)
            t0 = time.perf_counter()
            cands = ex.extract(sentences)
            # the model extractor counts what its parse dropped, by reason
            cache[name] = (cands, time.perf_counter() - t0, getattr(ex, "counts", None))
        cands, seconds, counts = cache[name]
        found += cands
        extract_seconds += seconds
        if counts is not None:
            out["model_parse"] = counts.to_dict()
    candidates = merge_candidates(found)
    if checker is not None:
        t1 = time.perf_counter()
        verified = verify_candidates(candidates, schema, checker)
        out["checker_seconds"] = round(time.perf_counter() - t1, 3)
    else:
        verified = candidates

    def table(cands) -> dict:
        preds: dict[str, dict] = defaultdict(dict)
        for c in cands:
            k = (c.relation, key(c.subject_surface), key(c.object_surface))
            doc = preds[c.sentence.document]
            doc[k] = max(doc.get(k, 0.0), c.confidence)
        return preds

    preds = table(verified)
    thresholds = sorted({round(c.confidence, 4) for c in verified}) or [DEFAULT_MIN_CONFIDENCE]
    curve = []
    for th in thresholds:
        m = score(preds, gold, th)["micro"]
        curve.append({"threshold": th, **{k: m[k] for k in ("precision", "recall", "pred")}})
    at = score(preds, gold, DEFAULT_MIN_CONFIDENCE)
    out.update(
        {
            "extractors": names,
            "documents": len(indices),
            "sentences": len(sentences),
            "candidates": len(candidates),
            "extract_seconds": round(extract_seconds, 3),
            "sentences_per_second": round(len(sentences) / max(extract_seconds, 1e-9), 1),
            "threshold": DEFAULT_MIN_CONFIDENCE,
            "at_threshold": at,
            "pr_curve": curve,
        }
    )
    if checker is not None:
        before = score(table(candidates), gold, 0.0)
        out["without_verification"] = before["micro"]
        out["verification"] = _verification_effect(candidates, verified, gold)
    return out


def _verification_effect(candidates, verified, gold) -> dict:
    """Share of wrong candidates the checker removes and of right ones it keeps."""
    right_kept = right = wrong_removed = wrong = 0
    for before, after in zip(candidates, verified, strict=True):
        h, t = key(before.subject_surface), key(before.object_surface)
        ok = any(
            r == before.relation and h in gh and t in gt
            for r, gh, gt in gold.get(before.sentence.document, [])
        )
        kept = after.confidence >= DEFAULT_MIN_CONFIDENCE
        if ok:
            right += 1
            right_kept += kept
        else:
            wrong += 1
            wrong_removed += not kept
    return {
        "right_candidates": right,
        "right_kept": right_kept,
        "right_kept_share": round(right_kept / right, 4) if right else None,
        "wrong_candidates": wrong,
        "wrong_removed": wrong_removed,
        "wrong_removed_share": round(wrong_removed / wrong, 4) if wrong else None,
    }


def markdown(result: dict) -> str:
    lines = [
        f"# Extraction on Re-DocRED ({result['part']} part, {result['documents']} documents)",
        "",
        f"End to end (entities found by the system), 20 relations, threshold "
        f"{DEFAULT_MIN_CONFIDENCE}; checker: {result['checker'] or 'none (extractor confidence)'}."
        f" {result['cores']} cores.",
        "",
        f"Gold triples whose head and tail share a sentence: {result['same_sentence']} of "
        f"{result['gold_triples']} (a sentence-level extractor cannot find the rest).",
        "",
        "| extractors | P | R | F1 | predicted | gold | sentences/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        m = r["at_threshold"]["micro"]
        lines.append(
            f"| {'+'.join(r['extractors'])} | {m['precision']:.3f} | {m['recall']:.3f} | "
            f"{m['f1']:.3f} | {m['pred']} | {m['gold']} | {r['sentences_per_second']:.0f} |"
        )
    combined = result["runs"][-1]
    lines += [
        "",
        f"## Per relation ({'+'.join(combined['extractors'])})",
        "",
        "| relation | P | R | predicted | right | gold | found |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rel, m in combined["at_threshold"]["per_relation"].items():
        lines.append(
            f"| {rel} | {m['precision']:.3f} | {m['recall']:.3f} | {m['pred']} | "
            f"{m['tp_pred']} | {m['gold']} | {m['found']} |"
        )
    lines += ["", "## Precision-recall over confidence (combined)", "",
              "| threshold | P | R | predicted |", "|---:|---:|---:|---:|"]  # fmt: skip
    for p in combined["pr_curve"]:
        lines.append(
            f"| {p['threshold']} | {p['precision']:.3f} | {p['recall']:.3f} | {p['pred']} |"
        )
    if "verification" in combined:
        v = combined["verification"]
        lines += ["", f"Verification: wrong candidates removed {v['wrong_removed_share']}, "
                  f"right ones kept {v['right_kept_share']}."]  # fmt: skip
    return "\n".join(lines + _model_section(result)) + "\n"


def _model_section(result: dict) -> list[str]:
    """What the model extractor was trained on, what its parse dropped, and its ceiling."""
    model_runs = [r for r in result["runs"] if r["extractors"] == ["model"]]
    if not model_runs:
        return []
    run_, lines = model_runs[0], ["", "## Model extractor", ""]
    if result.get("command"):
        lines += [f"Command: `{result['command']}`", ""]
    if result.get("extractor_trained_by"):
        lines += [f"The extractor was trained by: `{result['extractor_trained_by']}`", ""]
    t = result.get("extractor_training")
    if t:
        s = t["settings"]
        lines += [
            f"Trained on the train part only: {t['labelled']} labelled sentences "
            f"({t['labelled_triples']} triples) + {t['kb_examples']} sentences rendered from "
            f"its {t['kb_facts']} gold triples as a KB; {t['examples']} examples fitted "
            f"{s['max_length']} tokens. Base {s['base']}, LoRA r={s['adapter']['r']} on layers "
            f"{s['adapter']['layers']}, {t['steps']} steps of "
            f"{s['optim']['per_device_train_batch_size']}, lr {s['optim']['learning_rate']}: "
            f"{t['seconds']:.0f} s on one thread (OMP_NUM_THREADS=1, 2 shared cores), "
            f"mean loss {t['train_loss']:.3f}.",
            "",
        ]
    m = run_["at_threshold"]["micro"]
    same = result["same_sentence"]
    lines += [
        f"Read {run_['sentences']} sentences in {run_['extract_seconds']:.0f} s "
        f"({run_['sentences_per_second']} sentences/s). Gold triples found: {m['found']} of "
        f"{m['gold']} (recall {m['recall']:.3f}); of the {same} whose head and tail share a "
        f"sentence (the ceiling of a sentence-level reader): {m['found'] / max(same, 1):.3f}.",
    ]
    if "model_parse" in run_:
        c = run_["model_parse"]
        if "sentence_labels" in result:
            lines += [
                "",
                f"Sentence level: {result['sentences_with_labels']} of {run_['sentences']} "
                f"sentences mention the head and tail of a gold triple, "
                f"{result['sentence_labels']} (sentence, triple) labels in all "
                f"({result['sentence_labels'] / max(result['sentences_with_labels'], 1):.1f} "
                f"per such sentence); the model answered {run_['sentences'] - c['none']} "
                f"sentences and kept {c['kept']} triples "
                f"({c['kept'] / max(run_['sentences'] - c['none'], 1):.1f} per answered "
                "sentence).",
            ]
        lines += [
            "",
            f"Parse of the generations: {c['kept']} triples kept, {c['none']} sentences "
            f"answered none; dropped: {c['malformed']} malformed lines, "
            f"{c['unknown_relation']} outside the schema, {c['not_a_span']} not a span of the "
            f"sentence, {c['same_span']} with head = tail, {c['duplicate']} repeated.",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("heldout", "train"), default="heldout")
    parser.add_argument("--data", default=str(DATA), help="Re-DocRED dev_revised.json")
    parser.add_argument("--schema", default=str(SCHEMA))
    parser.add_argument("--checker", help="a fact-checker folder to verify candidates with")
    parser.add_argument("--out", default=str(RESULTS / "extract_redocred"))
    parser.add_argument(
        "--train-extractor", metavar="FOLDER",
        help="first train the model extractor on the train part (its labelled sentences and "
        "its gold triples rendered as a KB) and save it to FOLDER; then evaluate it",
    )  # fmt: skip
    parser.add_argument("--extractor-model", metavar="FOLDER", help="a trained model extractor")
    parser.add_argument("--train-steps", type=int, default=200, help="optimizer steps (batch 8)")
    parser.add_argument("--kb-examples", type=int, default=500, help="KB-rendered sentences")
    parser.add_argument(
        "--none-keep", type=float, default=0.33,
        help="share of the labelled sentences without a triple to train on",
    )  # fmt: skip
    parser.add_argument("--lora-layers", default="top8")
    parser.add_argument(
        "--docs", type=int, default=0,
        help="only the first N documents of the part (the model's CPU time)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    docs = json.loads(Path(args.data).read_text(encoding="utf-8"))
    parts = split(docs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redocred_split.json").write_text(
        json.dumps(
            {
                "seed": SEED,
                "source": "redocred/dev_revised.json (index in the file, title)",
                **{p: [[i, docs[i]["title"]] for i in ids] for p, ids in parts.items()},
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    schema = Schema.load(args.schema)
    checker = None
    if args.checker:
        from grounded.factcheck import FactChecker

        checker = FactChecker.from_pretrained(args.checker)
    indices = parts[args.part][: args.docs or None]
    pid_to_rel = {r.description.split()[-1]: r.name for r in schema}
    together = [same_sentence(docs[i], pid_to_rel) for i in indices]
    by_sentence = labelled_rows(docs, indices, pid_to_rel)
    names_list = [["templates"], ["questions"], ["questions", "templates"]]
    options, training = None, None
    if args.train_extractor:
        training = train_model(args, docs, parts["train"], schema, pid_to_rel)
        args.extractor_model = args.train_extractor
    if args.extractor_model:
        from grounded.extract.model import ExtractorModel

        model = ExtractorModel.from_pretrained(args.extractor_model)
        options = {"model": {"model": model, "show_progress": True}}
        names_list = [["model"], ["questions", "templates"], ["model", "questions", "templates"]]
    cache: dict = {}
    runs = [run(names, schema, docs, indices, checker, options, cache) for names in names_list]
    result = {
        "part": args.part,
        "documents": len(indices),
        "checker": args.checker,
        "cores": os.cpu_count(),
        "same_sentence": sum(a for a, _ in together),
        "gold_triples": sum(b for _, b in together),
        # sentence-level labels: (sentence, triple) pairs whose head and tail it mentions
        "sentence_labels": sum(len(r["triples"]) for r in by_sentence),
        "sentences_with_labels": sum(bool(r["triples"]) for r in by_sentence),
        "targets": {"precision": 0.75, "recall": 0.30, "sentences_per_second": 5},
        "runs": runs,
        "extractor_model": args.extractor_model,
        "extractor_training": training,
        "command": "python bench/bench_extract.py " + " ".join(argv or sys.argv[1:]),
    }
    out = Path(args.out + ("" if args.part == "heldout" else "_train"))
    if args.extractor_model and args.out == str(RESULTS / "extract_redocred"):
        out = Path(str(out) + "_model")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
