"""index/: FactIndex checked against brute-force numpy search, its files, its errors.

Most tests use ``HashEncoder``, a fake with the encoder interface that maps each text to a
fixed random unit vector (or to a vector from a table), so they need no model. One test
uses the real default encoder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import ClassVar

import cases
import numpy as np
import pytest
from cases import HashEncoder, records, unit

import index
from index import (
    DEFAULT_ENCODER_NAME,
    Encoder,
    FactIndex,
    IndexConfig,
    TextEncoder,
    recall_against_exact,
)
from index.config import FACTORIES, default_nlist, default_pq_m, factory_string


@pytest.fixture
def flat():
    return FactIndex.build(
        records(200), HashEncoder(), IndexConfig(kind="flat"), show_progress=False
    )


# ---------------------------------------------------------------------------- every kind


class TestFlat(cases.IndexCase):
    kind = "flat"
    min_recall = 1.0


class TestIVF(cases.IndexCase):
    kind = "ivf"
    settings: ClassVar = {"nlist": 8, "nprobe": 8}  # every list: exact
    min_recall = 0.9  # defaults (nlist 102, nprobe 25)


class TestHNSW(cases.IndexCase):
    kind = "hnsw"
    settings: ClassVar = {"ef_search": 256}
    min_recall = 0.9  # defaults (M 32, efSearch 64)


class TestIVFPQ(cases.IndexCase):
    kind = "ivfpq"
    # one 6-bit code per dimension: recall@1-10 0.95-0.96 against brute force (measured)
    settings: ClassVar = {"nlist": 8, "nprobe": 8, "pq_m": 16, "pq_nbits": 6}
    exact, approx_recall = False, 0.9
    # 8-byte codes for 32-d vectors (2 dims per code): measured 0.897
    recall_settings: ClassVar = {"pq_m": 16}
    min_recall = 0.85
    few = 64  # 2**pq_nbits training points


class TestIndexCoverage(cases.MetaTestCase):
    base = cases.IndexCase
    attribute = "kind"

    def registered(self):
        return FACTORIES


def test_empty_index():
    idx = FactIndex.build([], HashEncoder(), show_progress=False)
    assert len(idx) == 0 and idx.config.kind == "flat" and idx.ids == []
    assert idx.search("anything", k=3) == []
    assert idx.search_batch(["a", "b"], k=3) == [[], []]
    assert idx.vectors([]).shape == (0, 16)
    assert idx.add(records(2)) == [0, 1]
    assert idx.search("fact sentence 1", k=1)[0].id == 1


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k(flat, k):
    with pytest.raises(ValueError, match="`k`"):
        flat.search("x", k=k)


def test_bad_query_shape(flat):
    with pytest.raises(ValueError, match=r"`queries` must have shape \(n, 16\)"):
        flat.search_vectors(np.zeros(16, dtype=np.float32), 3)
    with pytest.raises(TypeError, match="`query`"):
        flat.search(["a list"], 3)


# ---------------------------------------------------------------------------- approximate


def test_auto_above_threshold_is_ivf_sized_from_the_data():
    idx = FactIndex.build(records(400), HashEncoder(), IndexConfig(approx_threshold=400))
    assert idx.config.kind == "ivf" and idx.config.nlist == default_nlist(400) == 10
    assert idx.config.nprobe == 2  # a quarter of the lists


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
        ({"pq_m": 0}, "pq_m"),
        ({"pq_nbits": 0}, "pq_nbits"),
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
    with pytest.raises(ValueError, match=r"`pq_nbits=8` trains 256 .* got 100: lower `pq_nbits`"):
        FactIndex.build(records(100), HashEncoder(), IndexConfig(kind="ivfpq"))
    bad = IndexConfig(kind="ivfpq", pq_m=5, pq_nbits=4)
    with pytest.raises(ValueError, match=r"`pq_m` \(5\) must divide the embedding dimension"):
        FactIndex.build(records(100), HashEncoder(), bad)
    with pytest.raises(ValueError, match="`kind` must be resolved"):
        factory_string(IndexConfig(), 16)


def test_factory_strings():
    """What each kind asks ``faiss.index_factory`` for (IVF sized for 10,000 records)."""
    configs = {
        "IDMap2,Flat": IndexConfig(kind="flat"),
        "IDMap2,HNSW16,Flat": IndexConfig(kind="hnsw", m=16),
        "IVF256,Flat": IndexConfig(kind="ivf"),
        "IVF256,PQ96x8np": IndexConfig(kind="ivfpq"),
        "IVF256,PQ48x4np": IndexConfig(kind="ivfpq", pq_m=48, pq_nbits=4),
    }
    for want, config in configs.items():
        assert factory_string(config.resolve(10_000), 384) == want
    assert [default_pq_m(d) for d in (384, 16, 30, 7, 3)] == [96, 4, 6, 1, 1]


# ---------------------------------------------------------------------------- files
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
    edit_manifest(out, count=6)  # issue 20: the manifest's own fields are checked
    with pytest.raises(ValueError, match="were edited after it was written"):
        FactIndex.load(out, HashEncoder())
    edit_manifest(out, count=5)
    edit_manifest(out, shiny_new_field=1)
    with pytest.warns(UserWarning, match="shiny_new_field"):
        FactIndex.load(out, HashEncoder())
    edit_manifest(out, format_version=99, identity=None)  # as from before the digest
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
