"""index/: FactIndex checked against brute-force numpy search, its files, its errors.

Most tests use ``HashEncoder``, a fake with the encoder interface that maps each text to a
fixed random unit vector (or to a vector from a table), so they need no model. One test
uses the real default encoder.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

import index
from index import (
    DEFAULT_ENCODER_NAME,
    Encoder,
    FactIndex,
    Hit,
    IndexConfig,
    TextEncoder,
    recall_against_exact,
)
from index.config import default_nlist

KINDS = ("flat", "ivf", "hnsw")


class HashEncoder:
    """Deterministic fake encoder: text -> seeded random vector, or ``table[text]``."""

    def __init__(self, dimension=16, name="hash-encoder", normalize=True, table=None):
        self.dimension, self.name, self.normalize = dimension, name, normalize
        self.table = table or {}
        self.calls = 0

    def vector(self, text):
        if text in self.table:
            v = np.asarray(self.table[text], dtype=np.float64)
        else:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimension)
        return v / np.linalg.norm(v) if self.normalize else v

    def encode(self, texts, *, batch_size=None, show_progress=False):
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self.vector(t)
        return out


def records(n, prefix="fact"):
    return [{"key": f"{prefix}:{i}", "text": f"{prefix} sentence {i}", "n": i} for i in range(n)]


def config_for(kind, **kw):
    if kind == "ivf":
        kw.setdefault("nlist", 8)
        kw.setdefault("nprobe", 8)  # all lists: exact, so results equal brute force
    if kind == "hnsw":
        kw.setdefault("ef_search", 256)
    return IndexConfig(kind=kind, **kw)


def brute_force(matrix, queries, k):
    """Ids (row numbers) and scores of the top-k inner products, best first."""
    scores = queries @ matrix.T  # (n_queries, n)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def built(kind):
    enc = HashEncoder()
    return FactIndex.build(records(200), enc, config_for(kind), show_progress=False)


# ---------------------------------------------------------------------------- search
@pytest.mark.parametrize("k", [1, 5, 10])
def test_search_matches_brute_force(built, k):
    enc = built.encoder
    matrix = enc.encode([r["text"] for r in records(200)])
    queries = unit(np.random.default_rng(0), 20, enc.dimension)
    ids, scores = brute_force(matrix, queries, k)
    hits = built.search_vectors(queries, k)
    assert [[h.id for h in row] for row in hits] == ids.tolist()
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, atol=1e-5)
    for row in hits:
        assert all(isinstance(h, Hit) for h in row)
        assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)
        assert all(h.record["key"] == f"fact:{h.id}" for h in row)


def test_search_text_finds_its_own_record(built):
    hit = built.search("fact sentence 42", k=3)[0]
    assert (hit.id, hit.record["key"], hit.record["n"]) == (42, "fact:42", 42)
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    batch = built.search_batch(["fact sentence 7", "fact sentence 9"], k=2)
    assert [row[0].id for row in batch] == [7, 9]


def test_k_larger_than_index_and_padding_removed(kind):
    idx = FactIndex.build(records(5), HashEncoder(), config_for(kind, nlist=2), show_progress=False)
    hits = idx.search("anything", k=50)
    assert sorted(h.id for h in hits) == [0, 1, 2, 3, 4]


def test_empty_index():
    idx = FactIndex.build([], HashEncoder(), show_progress=False)
    assert len(idx) == 0 and idx.config.kind == "flat" and idx.ids == []
    assert idx.search("anything", k=3) == []
    assert idx.search_batch(["a", "b"], k=3) == [[], []]
    assert idx.vectors([]).shape == (0, 16)
    assert idx.add(records(2)) == [0, 1]
    assert idx.search("fact sentence 1", k=1)[0].id == 1


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k(built, k):
    with pytest.raises(ValueError, match="`k`"):
        built.search("x", k=k)


def test_bad_query_shape(built):
    with pytest.raises(ValueError, match=r"`queries` must have shape \(n, 16\)"):
        built.search_vectors(np.zeros(16, dtype=np.float32), 3)
    with pytest.raises(TypeError, match="`query`"):
        built.search(["a list"], 3)


# ---------------------------------------------------------------------------- approximate
def clustered(rng, centres, n):
    """``n`` unit vectors scattered around random ``centres`` (clusters, d)."""
    x = centres[rng.integers(len(centres), size=n)] + 0.2 * rng.standard_normal(
        (n, centres.shape[1])
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["auto", "hnsw"])
def test_approximate_recall_at_10(kind):
    rng = np.random.default_rng(1)
    centres = unit(rng, 40, 32)
    x, q = clustered(rng, centres, 4000), clustered(rng, centres, 100)
    table = {f"v{i}": x[i] for i in range(len(x))}
    enc = HashEncoder(dimension=32, table=table)
    recs = [{"key": t, "text": t} for t in table]
    cfg = IndexConfig(kind=kind, approx_threshold=1000)
    idx = FactIndex.build(recs, enc, cfg, show_progress=False)
    assert idx.config.kind == ("ivf" if kind == "auto" else "hnsw")
    if kind == "auto":
        assert idx.config.nlist == default_nlist(4000) == 102
    truth, _ = brute_force(x, q, 10)
    found = [{h.id for h in row} for row in idx.search_vectors(q, 10)]
    recall = np.mean([len(f & set(t)) / 10 for f, t in zip(found, truth.tolist(), strict=True)])
    assert recall >= 0.9
    assert recall_against_exact(idx, q, 10) == pytest.approx(recall, abs=1e-9)


def test_auto_below_threshold_is_exact():
    idx = FactIndex.build(records(50), HashEncoder(), IndexConfig(approx_threshold=51))
    assert idx.config.kind == "flat" and idx.config.nlist is None
    q = unit(np.random.default_rng(3), 10, 16)
    assert recall_against_exact(idx, q, 10) == 1.0


def test_set_search_params():
    idx = FactIndex.build(records(400), HashEncoder(), IndexConfig(kind="ivf", nlist=10))
    idx.set_search_params(nprobe=10)
    assert idx.config.nprobe == 10
    assert recall_against_exact(idx, unit(np.random.default_rng(4), 10, 16), 5) == 1.0
    with pytest.raises(ValueError, match="`nprobe`"):
        idx.set_search_params(nprobe=0)


# ---------------------------------------------------------------------------- add / remove
def test_add_remove_get_id_of(built):
    new = built.add(records(3, prefix="extra"))
    assert new == [200, 201, 202] and len(built) == 203
    assert built.id_of("extra:1") == 201 and built.get(201)["text"] == "extra sentence 1"
    assert 201 in built and 999 not in built
    assert built.search("extra sentence 2", k=1)[0].id == 202

    assert built.remove([201, 5, 5]) == 2
    assert len(built) == 201 and 201 not in built and 5 not in built
    assert 5 not in built.ids and built.ids == sorted(built.ids)
    with pytest.raises(KeyError, match="extra:1"):
        built.id_of("extra:1")
    with pytest.raises(KeyError, match="201"):
        built.get(201)
    with pytest.raises(KeyError, match="5"):
        built.vectors([5])
    every = built.search_vectors(unit(np.random.default_rng(5), 30, 16), k=1000)
    assert all({h.id for h in row} == set(built.ids) for row in every)  # removed never returned

    assert built.add(records(1, prefix="later")) == [203]  # ids are never reused
    built.add([{"key": "extra:1", "text": "extra sentence 1"}])  # a removed key may come back


def test_remove_unknown_id_removes_nothing(built):
    with pytest.raises(KeyError, match="12345"):
        built.remove([3, 12345])
    assert 3 in built and len(built) == 200
    assert built.remove([]) == 0


def test_vectors_are_the_stored_embeddings(built):
    got = built.vectors([3, 0, 199])
    want = built.encoder.encode(["fact sentence 3", "fact sentence 0", "fact sentence 199"])
    assert got.shape == (3, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_get_returns_a_copy(built):
    built.get(1)["text"] = "changed"
    assert built.get(1)["text"] == "fact sentence 1"


# ---------------------------------------------------------------------------- records
def test_duplicate_keys():
    recs = [*records(3), {"key": "fact:1", "text": "again"}]
    with pytest.raises(ValueError, match="duplicate key 'fact:1'"):
        FactIndex.build(recs, HashEncoder(), show_progress=False)
    idx = FactIndex.build(records(3), HashEncoder(), show_progress=False)
    with pytest.raises(ValueError, match=r"'fact:2'.*already in the index as id 2"):
        idx.add([{"key": "new", "text": "x"}, {"key": "fact:2", "text": "y"}])
    assert len(idx) == 3 and "new" not in [r["key"] for r in map(idx.get, idx.ids)]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"text": "no key"}, "non-empty string 'key'"),
        ({"key": "k", "text": "  "}, "non-empty 'text'"),
        ({"key": "k"}, "non-empty 'text'"),
        ({"key": "k", "text": "t", "when": object()}, "not JSON-serializable"),
        ({"key": "k", "text": "t", "x": float("nan")}, "not JSON-serializable"),
    ],
)
def test_bad_records(record, message):
    with pytest.raises(ValueError, match=message):
        FactIndex.build([record], HashEncoder(), show_progress=False)


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kind": "fast"}, "kind"),
        ({"approx_threshold": 0}, "approx_threshold"),
        ({"nlist": 0}, "nlist"),
        ({"nprobe": -1}, "nprobe"),
        ({"m": 0}, "m"),
        ({"ef_search": 1.5}, "ef_search"),
        ({"ef_construction": None}, "ef_construction"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        IndexConfig(**kwargs)


def test_config_resolution_errors():
    with pytest.raises(ValueError, match="`kind='ivf'`"):
        FactIndex.build([], HashEncoder(), IndexConfig(kind="ivf"))
    with pytest.raises(
        ValueError, match=r"`nlist` \(50\) exceeds the number of records to train on \(10\)"
    ):
        FactIndex.build(records(10), HashEncoder(), IndexConfig(kind="ivf", nlist=50))
    assert default_nlist(1) == 1 and default_nlist(100_000) == 1265


# ---------------------------------------------------------------------------- files
def test_save_load_round_trip(built, tmp_path):
    built.add(records(5, prefix="extra"))
    built.remove([0, 17, 201])
    out = built.save(tmp_path / "idx")
    assert sorted(p.name for p in out.iterdir()) == ["index.faiss", "manifest.json", "meta.jsonl"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == len(built) == 202 and manifest["next_id"] == 205
    assert manifest["encoder"] == {
        "name": "hash-encoder",
        "path": None,
        "dimension": 16,
        "normalize": True,
    }
    assert manifest["index"]["kind"] == built.config.kind
    assert set(manifest["checksums"]) == {"index.faiss", "meta.jsonl"}
    assert {"faiss", "numpy", "sentence-transformers"} <= set(manifest["versions"])
    lines = [json.loads(line) for line in (out / "meta.jsonl").read_text().splitlines()]
    assert [row["id"] for row in lines] == built.ids

    again = FactIndex.load(out, HashEncoder())
    assert again.ids == built.ids and again.config == built.config
    q = unit(np.random.default_rng(6), 25, 16)
    assert again.search_vectors(q, 7) == built.search_vectors(q, 7)
    assert again.add(records(1, prefix="after")) == [205]
    np.testing.assert_array_equal(again.vectors([1, 2]), built.vectors([1, 2]))


@pytest.mark.parametrize("name", ["index.faiss", "meta.jsonl"])
def test_tampered_file_is_named(tmp_path, name):
    out = FactIndex.build(records(20), HashEncoder(), show_progress=False).save(tmp_path / "i")
    with open(out / name, "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(ValueError, match=rf"{name} does not match its checksum"):
        FactIndex.load(out, HashEncoder())
    FactIndex.load(out, HashEncoder(), verify=False)  # the extra newline itself is harmless


def test_encoder_mismatch_names_both(tmp_path):
    out = FactIndex.build(records(5), HashEncoder(), show_progress=False).save(tmp_path / "i")
    with pytest.raises(ValueError) as err:
        FactIndex.load(out, HashEncoder(dimension=8, name="other-encoder"))
    message = str(err.value)
    for part in ("'hash-encoder'", "'other-encoder'", "dimension 16", "dimension 8", "rebuild"):
        assert part in message
    with pytest.raises(ValueError, match=r"normalize=True.*normalize=False"):
        FactIndex.load(out, HashEncoder(normalize=False))


def test_load_without_encoder_needs_one(tmp_path):
    out = FactIndex.build(records(5), HashEncoder(), show_progress=False).save(tmp_path / "i")
    with pytest.raises(FileNotFoundError, match="pass `encoder=`"):
        FactIndex.load(out)


def test_not_an_index_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a FactIndex folder"):
        FactIndex.load(tmp_path)


def edit_manifest(folder, **changes):
    file = folder / "manifest.json"
    manifest = json.loads(file.read_text())
    manifest.update(changes)
    file.write_text(json.dumps(manifest))


def test_manifest_version_and_unknown_keys(tmp_path):
    out = FactIndex.build(records(5), HashEncoder(), show_progress=False).save(tmp_path / "i")
    edit_manifest(out, shiny_new_field=1)
    with pytest.warns(UserWarning, match="shiny_new_field"):
        FactIndex.load(out, HashEncoder())
    edit_manifest(out, format_version=99)
    with pytest.raises(ValueError, match="`format_version` 99, newer"):
        FactIndex.load(out, HashEncoder())
    edit_manifest(out, format_version=2, kind="grounded-kb")
    with pytest.raises(ValueError, match="'grounded-kb' artifact, not 'grounded-index'"):
        FactIndex.load(out, HashEncoder())
    edit_manifest(out, format_version=1, kind=None, type=None)  # format 1 named it `type`
    with pytest.raises(ValueError, match="not a FactIndex manifest"):
        FactIndex.load(out, HashEncoder())


def test_save_keeps_old_folder_on_failure(tmp_path, monkeypatch):
    good = FactIndex.build(records(3), HashEncoder(), show_progress=False)
    out = good.save(tmp_path / "i")
    before = (out / "manifest.json").read_text()
    import faiss

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        good.save(out)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i"]


# ---------------------------------------------------------------------------- package
def test_public_surface_and_cheap_import():
    # isort-style, as ruff's RUF022 wants: CONSTANTS, then Classes, then functions
    kinds = [(0 if n.isupper() else 1 if n[0].isupper() else 2, n) for n in index.__all__]
    assert kinds == sorted(kinds)
    assert all(getattr(index, name) is not None for name in index.__all__)
    assert isinstance(HashEncoder(), TextEncoder)
    code = "import index, sys; print(sorted({'torch', 'faiss', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_encoder_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a sentence-transformers or Hugging Face"):
        Encoder(tmp_path)
    with pytest.raises(ValueError, match="`batch_size`"):
        Encoder(batch_size=0)


# ---------------------------------------------------------------------------- real encoder
FACTS = [
    "The capital of Mongolia is Ulaanbaatar.",
    "The capital of France is Paris.",
    "The capital of Peru is Lima.",
    "Mongolia borders China.",
    "Mongolia borders Russia.",
    "Mongolian is spoken in Mongolia.",
    "The currency of Mongolia is the tugrik.",
    "The capital of Kazakhstan is Astana.",
    "Ulaanbaatar lies on the Tuul River.",
    "The capital of China is Beijing.",
]


def test_real_encoder_retrieves_the_capital(encoder, tmp_path):
    assert encoder.name == DEFAULT_ENCODER_NAME and encoder is Encoder.default()
    vectors = encoder.encode(FACTS)
    assert vectors.shape == (10, encoder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dimension)
    with pytest.raises(TypeError, match="wrap it in a list"):
        encoder.encode("one string")

    recs = [{"key": f"f{i}", "text": t, "kind": "fact"} for i, t in enumerate(FACTS)]
    idx = FactIndex.build(recs, encoder, show_progress=False)
    top = idx.search("What is the capital of Mongolia?", k=3)
    assert top[0].record["text"] == "The capital of Mongolia is Ulaanbaatar."
    again = FactIndex.load(idx.save(tmp_path / "real"))  # the manifest names the default
    assert again.encoder is encoder
    assert again.search("What is the capital of Mongolia?", k=3) == top
