"""grounded.kb + grounded.retrieval: the built KB folder, hybrid retrieval, its ranking."""

from __future__ import annotations

import json

import pytest
from tiny import FACTS, PASSAGES, tiny_source

from grounded.kb import KBBuildConfig, KnowledgeBase, build_kb
from grounded.retrieval import HybridRetriever, RetrievalConfig
from kg import Triple


def test_kb_folder_layout_and_manifest(tiny_kb):
    files = {p.name for p in tiny_kb.path.iterdir()}
    assert {
        "manifest.json",
        "graph.json",
        "triples.tsv",
        "relations.json",
        "aliases.tsv",
        "passages.jsonl",
        "index",
    } <= files
    m = json.loads((tiny_kb.path / "manifest.json").read_text())
    assert m["counts"]["facts"] == len(FACTS)
    assert m["counts"]["indexed"] == len(FACTS) + len(PASSAGES)
    assert m["encoder"] == {"name": "all-MiniLM-L6-v2", "dimension": 384}
    assert set(m["checksums"]) >= {"triples.tsv", "graph.json", "index/index.faiss"}
    assert len(tiny_kb.checksum) == 64


def test_kb_load_round_trip(tiny_kb, encoder):
    again = KnowledgeBase.load(tiny_kb.path, encoder=encoder)
    assert sorted(t.key for t in again.graph.triples()) == sorted(
        t.key for t in tiny_kb.graph.triples()
    )
    q = "What is the capital of Mongolia?"
    assert [e.key for e in again.retriever.retrieve(q)] == [
        e.key for e in tiny_kb.retriever.retrieve(q)
    ]
    assert again.checksum == tiny_kb.checksum


def test_kb_load_detects_tampering(tiny_kb, tmp_path, encoder):
    import shutil

    copy = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, copy)
    with open(copy / "triples.tsv", "a", encoding="utf-8") as fh:
        fh.write("Mongolia\tcapital\tKarakorum\n")
    with pytest.raises(ValueError, match=r"triples\.tsv does not match its checksum"):
        KnowledgeBase.load(copy, encoder=encoder)


def test_kb_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a knowledge base folder"):
        KnowledgeBase.load(tmp_path)


def test_build_refuses_to_overwrite_and_keeps_old(tiny_kb, encoder):
    before = (tiny_kb.path / "manifest.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        KnowledgeBase.build(tiny_source(), tiny_kb.path, encoder=encoder, show_progress=False)
    assert (tiny_kb.path / "manifest.json").read_text() == before


def test_failed_build_keeps_existing_folder(tmp_path, encoder):
    out = tmp_path / "kb"
    KnowledgeBase.build(tiny_source(), out, encoder=encoder, show_progress=False)
    before = (out / "manifest.json").read_text()
    bad = tiny_source()
    bad.passages.append(bad.passages[0])  # duplicate key: the index refuses
    with pytest.raises(ValueError, match="passage:mongolia-1"):
        KnowledgeBase.build(bad, out, encoder=encoder, show_progress=False, overwrite=True)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]  # no temp folder left


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("What is the capital of Mongolia?", ("Mongolia", "capital", "Ulaanbaatar")),
        ("What is the capital of the Ivory Coast?", ("Côte d'Ivoire", "capital", "Yamoussoukro")),
        ("Which countries border Russia?", ("Russia", "borders", "Mongolia")),
        ("Which languages are spoken in Switzerland?", ("Switzerland", "language", "German")),
        ("Where is China?", ("China", "region", "Asia")),
    ],
)
def test_hybrid_ranks_gold_fact_first(tiny_kb, question, gold):
    top = tiny_kb.retriever.retrieve(question, k=5)
    assert top[0].triple == Triple(*gold)
    assert top[0].source in ("graph", "both")
    scores = [e.score for e in top]
    assert scores == sorted(scores, reverse=True)


def test_evidence_is_deduplicated_and_includes_passages(tiny_kb):
    ev = tiny_kb.retriever.retrieve("Tell me about Mongolia and its neighbours", k=20)
    assert len({e.text for e in ev}) == len(ev)
    assert len({e.id for e in ev}) == len(ev)
    assert any(e.kind == "passage" and e.key == "passage:mongolia-1" for e in ev)


def test_two_linked_entities_prefer_the_fact_joining_them(tiny_kb):
    top = tiny_kb.retriever.retrieve("Does Mongolia border China?", k=3)
    assert top[0].triple in (
        Triple("Mongolia", "borders", "China"),
        Triple("China", "borders", "Mongolia"),
    )


def test_modes_and_batch(tiny_kb):
    qs = ["What is the capital of Mongolia?", "What is the capital of Australia?"]
    batch = tiny_kb.retriever.retrieve_batch(qs, k=3)
    single = [tiny_kb.retriever.retrieve(q, k=3) for q in qs]
    assert [[e.key for e in b] for b in batch] == [[e.key for e in s] for s in single]
    dense = HybridRetriever(tiny_kb, RetrievalConfig(mode="dense")).retrieve(qs[0], k=3)
    assert all(e.source == "dense" for e in dense)
    graph_only = HybridRetriever(tiny_kb, RetrievalConfig(mode="graph")).retrieve(qs[0], k=50)
    assert graph_only and all(e.source == "graph" for e in graph_only)
    assert all("Mongolia" in e.text for e in graph_only)
    # No entity linked: hybrid falls back to dense only, never crashes.
    assert tiny_kb.retriever.retrieve("zzz qqq", k=2)
    assert tiny_kb.retriever.retrieve_batch([]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sparse"}, "`mode` must be one of"),
        ({"k": 0}, "`k` must be >= 1, got 0"),
        ({"link_bonus": -1.0}, "`link_bonus` must be >= 0"),
    ],
)
def test_retrieval_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RetrievalConfig(**kwargs)


def test_build_config_validation(tmp_path):
    with pytest.raises(ValueError, match="`out` is required"):
        KBBuildConfig()
    with pytest.raises(ValueError, match="nothing to build"):
        KBBuildConfig(out=str(tmp_path / "kb"))
    with pytest.raises(ValueError, match="not both"):
        KBBuildConfig(out="kb", preset="countries", triples=["t.tsv"], relations="r.json")


def test_build_kb_from_files(tmp_path, encoder, monkeypatch):
    from kg import write_source

    write_source(tiny_source(), tmp_path / "src")
    monkeypatch.setattr("index.Encoder.default", lambda *a, **k: encoder)
    kb = build_kb(
        KBBuildConfig(
            out=str(tmp_path / "kb"),
            triples=[str(tmp_path / "src" / "triples.tsv")],
            relations=str(tmp_path / "src" / "relations.json"),
            aliases=str(tmp_path / "src" / "aliases.tsv"),
            passages=str(tmp_path / "src" / "passages.jsonl"),
            name="files",
            allow_alias_merge=True,  # the tiny KB's "Mexico" is an alias and an entity
        ),
        show_progress=False,
    )
    assert kb.name == "files" and len(kb.graph) == len(FACTS)
