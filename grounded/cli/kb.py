"""``grounded kb``: build, query and describe knowledge bases."""

from __future__ import annotations

import argparse
import json
import time

from grounded.cli.main import register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml


@register_command("kb")
def register(sub: argparse._SubParsersAction) -> None:
    from grounded.kb import KBBuildConfig
    from grounded.retrieval import RetrievalConfig
    from index import IndexConfig

    kb = sub.add_parser(
        "kb",
        help="build, query and describe a knowledge base",
        description="Knowledge bases: triples + schema + aliases (+ passages) become a "
        "knowledge graph and a dense FAISS index.",
    )
    kb.set_defaults(parser=kb)
    kbsub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")

    build = kbsub.add_parser(
        "build",
        help="build a knowledge base from files or an embedded preset",
        description="Build a knowledge base folder (graph.json, index/, manifest.json, and the "
        "source files). Every bad input line is reported with file and line; on error nothing "
        "is written.",
        epilog="examples:\n"
        "  grounded kb build --preset countries --out runs/countries/kb\n"
        "  grounded kb build --preset cities --out runs/cities/kb    # ~140k facts\n"
        "  grounded kb build --triples facts.tsv --relations relations.json --out kb\n"
        "  grounded kb build --triples facts.csv --relations relations.tsv \\\n"
        "      --entities entities.tsv --aliases aliases.tsv --out kb\n"
        "  grounded kb build --passages passages.tsv --out kb   # passages only\n"
        "  grounded kb build --documents wiki/ --relations relations.json --out kb\n"
        "      # triples extracted from documents (see `kb extract`), sentences as passages\n"
        "  grounded kb build --review extracted/review.tsv --documents wiki/ \\\n"
        "      --relations relations.json --out kb   # the rows kept in an edited review\n"
        "\nrelations.json: "
        '{"relations": [{"name": "capital", "functional": true, "template": '
        '"The capital of {subject} is {object}.", "questions": ["What is the capital of '
        '{subject}?"]}]}'
        "\nrelations.tsv: relation<TAB>functional<TAB>template<TAB>questions (| between "
        "questions)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("--config", help="YAML file with any of the settings below")
    add_dataclass_arguments(build, KBBuildConfig, "knowledge base")
    add_dataclass_arguments(build, IndexConfig, "index")
    build.set_defaults(func=_build)

    from grounded.extract import ExtractConfig

    extract = kbsub.add_parser(
        "extract",
        help="extract candidate triples from documents, for review",
        description="Read documents, find and link entities, extract triples of the schema's "
        "relations (registered extractors), verify each against its sentence with the "
        "checker when given, and write triples.tsv (source, confidence, extractor columns), "
        "review.tsv (one row per candidate with its sentence and a keep column to edit), "
        "entities.tsv and extraction.json. Candidates that contradict a functional relation "
        "of --kb are flagged (keep=no), not merged.",
        epilog="examples:\n"
        "  grounded kb extract wiki/ --relations relations.json --out extracted\n"
        "  grounded kb extract a.md b.txt --relations relations.json --kb kb \\\n"
        "      --checker runs/checker --out extracted\n"
        "  grounded kb extract wiki/ --relations relations.json \\\n"
        "      --extractor-model runs/extractor --out extracted   # + the model extractor\n"
        "  grounded kb build --review extracted/review.tsv --documents wiki/ \\\n"
        "      --relations relations.json --out kb     # after editing the keep column",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.add_argument(
        "docs", nargs="*", help="documents: .txt/.md files, folders of them, passages files"
    )
    extract.add_argument("--out", required=True, help="folder to write the files to")
    extract.add_argument("--config", help="YAML file with any of the settings below")
    add_dataclass_arguments(extract, ExtractConfig, "extraction")
    extract.set_defaults(func=_extract)

    from grounded.extract import ExtractorTrainConfig

    train_ex = kbsub.add_parser(
        "train-extractor",
        help="LoRA-train the model extractor (sentence -> triples) for a schema",
        description="Train the `model` extractor: the base causal LM (default smollm2) with "
        "a LoRA adapter learns to read one sentence and write one `head | relation | tail` "
        "line per triple it states (relations of the schema, head and tail copied from the "
        "sentence), or `none`. Training sentences come from a KB (--kb: each fact rendered "
        "through the schema's templates in varied frames, several facts per sentence, "
        "distractor sentences whose answer is `none`) and from labelled text (--labelled "
        "JSONL), or both. Writes FOLDER with the adapter, schema.json, extractor.json "
        "(base, settings, data counts, losses) and manifest.json (checksums). Use it with "
        "`grounded kb extract ... --extractor-model FOLDER`.",
        epilog="examples:\n"
        "  grounded kb train-extractor --kb runs/countries/kb --out runs/extractor\n"
        "  grounded kb train-extractor --relations relations.json --labelled sents.jsonl \\\n"
        "      --kb kb --max-steps 200 --lora-layers top8 --out runs/extractor\n"
        "  grounded kb extract wiki/ --relations relations.json \\\n"
        "      --extractor-model runs/extractor --out extracted\n"
        "\nlabelled JSONL, one sentence a line:\n"
        '  {"text": "Dune was written by Frank Herbert.", '
        '"triples": [["Dune", "author", "Frank Herbert"]]}\n'
        "\ncost: on one CPU thread the default base takes about 3-4 s a step of 8 sentences "
        "with --lora-layers top8; reading runs at about 1-2 sentences a second.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_ex.add_argument("--out", required=True, help="the extractor folder to write")
    train_ex.add_argument("--overwrite", action="store_true", help="replace an extractor at --out")
    train_ex.add_argument("--config", help="YAML file with any of the settings below")
    add_dataclass_arguments(train_ex, ExtractorTrainConfig, "extractor training")
    train_ex.set_defaults(func=_train_extractor)

    query = kbsub.add_parser(
        "query",
        help="show the ranked evidence retrieved for a question",
        description="Link entities, retrieve graph facts and dense hits, print them ranked.",
        epilog='example:\n  grounded kb query runs/countries/kb "What is the capital of Mongolia?"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument("kb", help="knowledge base folder")
    query.add_argument("question", nargs="+", help="one or more questions")
    query.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_dataclass_arguments(query, RetrievalConfig, "retrieval")
    query.set_defaults(func=_query)

    stats = kbsub.add_parser(
        "stats",
        help="counts of facts, entities and relations",
        description="Counts from the manifest and graph.json (no model is loaded). Entities "
        "are subjects and typed names; other objects are counted as values.",
    )
    stats.add_argument("kb", help="knowledge base folder")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=_stats)


def _build(args: argparse.Namespace) -> int:
    from grounded.kb import KBBuildConfig, build_kb
    from index import IndexConfig

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [KBBuildConfig, IndexConfig], origin)
    config = build_config(KBBuildConfig, args, yaml_values, origin=origin)
    index_config = build_config(IndexConfig, args, yaml_values, origin=origin)
    t0 = time.perf_counter()
    kb = build_kb(config, index_config)
    seconds = time.perf_counter() - t0
    m = kb.manifest
    c = m["counts"]
    report = m["load_report"]
    print(f"\nbuilt {m['name']} knowledge base in {seconds:.1f} s")
    print(
        f"  facts {c['facts']:,}   entities {c['entities']:,}   values {c['values']:,}   "
        f"relations {c['relations']}   aliases {c['aliases']:,}   passages {c['passages']:,}   "
        f"indexed {c['indexed']:,}"
    )
    print(f"  duplicates dropped: {report['duplicates_dropped']}")
    multi = report["multi_object_functional"]
    if multi:
        print(f"  functional relations with several objects ({len(multi)}, kept):")
        for item in multi[:10]:
            print(f"    {item['subject']} / {item['relation']}: {', '.join(item['objects'])}")
        if len(multi) > 10:
            print(f"    ... {len(multi) - 10} more in manifest.json")
    for note in report.get("notes", []):
        print(f"  note: {note}")
    _print_warnings(report.get("warnings", []))
    print(f"  encoder: {m['encoder']['name']} (dimension {m['encoder']['dimension']})")
    files = ", ".join(sorted(n for n in m["checksums"] if "/" not in n))
    print(f"wrote {kb.path}/ ({files}, manifest.json, index/)")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from grounded.extract import ExtractConfig, extract

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [ExtractConfig], origin)
    config = build_config(ExtractConfig, args, yaml_values, origin=origin)
    config.documents = [*args.docs, *config.documents]
    result = extract(config, show_progress=True)
    paths = result.write(args.out)
    s = result.summary()
    print(
        f"\nread {s['documents']} documents ({s['sentences']:,} sentences) in "
        f"{s['seconds']:.1f} s: {s['candidates']:,} candidates, {s['kept']:,} kept at "
        f"confidence >= {s['min_confidence']}, {s['flagged']:,} flagged against --kb"
    )
    verified = "checker" if config.checker else "extractor confidence only (no --checker)"
    print(f"  by extractor: {s['by_extractor']}   confidence from: {verified}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _train_extractor(args: argparse.Namespace) -> int:
    from grounded.extract import ExtractorTrainConfig, build_examples, train_extractor
    from grounded.extract.model import EXTRACTOR_KIND
    from kg.manifest import check_destination

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [ExtractorTrainConfig], origin)
    config = build_config(ExtractorTrainConfig, args, yaml_values, origin=origin)
    check_destination(
        args.out, EXTRACTOR_KIND, overwrite=args.overwrite,
        inputs={"knowledge base": config.kb, "schema": config.relations,
                **{f"labelled {i}": p for i, p in enumerate(config.labelled)}},
    )  # fmt: skip
    examples, schema, counts = build_examples(config)
    print(f"training on {len(examples):,} sentences ({counts}); base {config.base}")
    model, log = train_extractor(examples, schema, config, data_counts=counts)
    path = model.save_pretrained(args.out)
    first, last = (log.losses[0], log.losses[-1]) if log.losses else (log.train_loss,) * 2
    print(
        f"\ntrained {log.steps} steps in {log.seconds:.0f} s on {log.examples:,} examples "
        f"({log.skipped_too_long} longer than --max-length skipped); loss {first:.3f} -> "
        f"{last:.3f}"
    )
    print(f"wrote {path}/ (adapter, schema.json, extractor.json, manifest.json)")
    print(f"use it: grounded kb extract DOCS --relations SCHEMA --extractor-model {path} --out OUT")
    return 0


def _print_warnings(warnings: list[str], limit: int = 20) -> None:
    for w in warnings[:limit]:
        print(f"  warning: {w}")
    if len(warnings) > limit:
        print(f"  ... {len(warnings) - limit} more warnings in manifest.json (load_report)")


def _query(args: argparse.Namespace) -> int:
    from grounded.kb import KnowledgeBase
    from grounded.retrieval import RetrievalConfig

    kb = KnowledgeBase.load(args.kb)
    config = build_config(RetrievalConfig, args)
    retriever = kb.retriever_for(config)
    results = retriever.retrieve_batch(args.question)
    if args.json:
        out = [
            {
                "question": q,
                "entities": [
                    {"surface": m.surface, "candidates": list(m.candidates)}
                    for m in kb.graph.linker.link(q)
                ],
                "evidence": [e.to_dict() for e in ev],
            }
            for q, ev in zip(args.question, results, strict=True)
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    for q, ev in zip(args.question, results, strict=True):
        mentions = kb.graph.linker.link(q)
        linked = ", ".join(f"{m.surface} → {' | '.join(m.candidates)}" for m in mentions) or "none"
        print(f"\nQ: {q}\n   entities: {linked}")
        print(f"   {'rank':>4}  {'score':>6}  {'source':<6}  evidence")
        for i, e in enumerate(ev, 1):
            print(f"   {i:>4}  {e.score:6.3f}  {e.source:<6}  {e.text}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from grounded.kb import kb_stats

    # From the manifest and graph.json only: loading the index would load its encoder.
    stats = kb_stats(args.kb)
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(f"{stats['name']} ({args.kb})")
    print(
        f"  facts {stats['facts']:,}   entities {stats['entities']:,}   "
        f"values {stats['values']:,}   relations {stats['relations']}   "
        f"aliases {stats['aliases']:,}   passages {stats['passages']:,}   "
        f"indexed {stats['indexed']:,}"
    )
    if stats["types"]:
        print("  types: " + ", ".join(f"{k} {v:,}" for k, v in stats["types"].items()))
    enc = stats["encoder"]
    print(f"  encoder {enc.get('name')} (dimension {enc.get('dimension')})")
    print(f"  mean degree {stats['mean_degree']:.2f}   max degree {stats['max_degree']:,}")
    print(f"\n  {'relation':<20} {'kind':<12} {'facts':>9} {'subjects':>9}")
    for rel, s in stats["per_relation"].items():
        kind = "functional" if s["functional"] else "many-valued"
        print(f"  {rel:<20} {kind:<12} {s['facts']:>9,} {s['subjects']:>9,}")
    prov = stats.get("provenance", {})
    if set(prov.get("by_extractor", {})) - {"none"}:
        print("\n  facts by extractor: " + ", ".join(
            f"{k} {v:,}" for k, v in prov["by_extractor"].items()
        ))  # fmt: skip
        print("  facts by confidence: " + ", ".join(
            f"{k} {v:,}" for k, v in prov["by_confidence"].items()
        ))  # fmt: skip
        print(f"  facts with a source (document#sentence): {prov['with_source']:,}")
    if stats["merges"]:
        total = sum(stats["merge_counts"].values()) or len(stats["merges"])
        kinds = ", ".join(f"{k} {n:,}" for k, n in stats["merge_counts"].items() if n)
        print(f"\n  names that mean several entities ({total:,}{': ' + kinds if kinds else ''}):")
        for m in stats["merges"][:20]:
            print(f"    {m['name']!r} ({m['kind']}): {', '.join(m['entities'])}")
        if total > 20:
            print(f"    ... {total - 20:,} more (manifest.json lists up to 100 of each kind)")
    return 0
