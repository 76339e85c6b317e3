"""Settings of a :class:`~index.FactIndex` and the one factory that turns them into a FAISS index.

Kinds (all inner product; with normalized embeddings that is cosine similarity):

- ``flat``: ``IndexIDMap2(IndexFlatIP)``, exact. Removal is a real delete.
- ``ivf``: ``IndexIVFFlat`` with a hashtable direct map, so ids are ours (``add_with_ids``),
  ``reconstruct`` works and ``remove_ids`` is a real delete. Vectors are stored uncompressed,
  so returned scores are exact; only the candidate set is approximate (``nprobe`` of
  ``nlist`` lists are scanned, a quarter by default). Chosen by ``auto`` at or above
  ``approx_threshold`` records.
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)``. FAISS's HNSW graph cannot delete, so removed
  ids are kept as tombstones and filtered out of every search with an ``IDSelector``; their
  memory is reclaimed only by rebuilding the index.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import faiss

IndexKind = Literal["auto", "flat", "ivf", "hnsw"]
KINDS: tuple[str, ...] = ("auto", "flat", "ivf", "hnsw")

# FAISS k-means warns below 39 training points per centroid; we size lists to avoid it.
_MIN_POINTS_PER_LIST = 39
_MAX_NLIST = 65_536


@dataclass
class IndexConfig:
    """How a :class:`~index.FactIndex` stores and searches its vectors.

    Raises:
        ValueError: a field is out of range; the message names the field and the value.

    Example:
        >>> IndexConfig(kind="ivf").resolve(100_000)  # doctest: +ELLIPSIS
        IndexConfig(kind='ivf', approx_threshold=50000, nlist=1265, nprobe=316, ...)
    """

    kind: str = field(
        default="auto",
        metadata={
            "help": "Index type: 'flat' (exact), 'ivf' (inverted lists), 'hnsw' (graph), or "
            "'auto' (flat below `approx_threshold` records at build time, else ivf)."
        },
    )
    approx_threshold: int = field(
        default=50_000,
        metadata={
            "help": "With kind='auto', build an approximate (ivf) index from this many "
            "records up; below it search is exact."
        },
    )
    nlist: int | None = field(
        default=None,
        metadata={
            "help": "IVF: number of inverted lists (k-means centroids). None: about "
            "4*sqrt(n), at most n/39 so every list has training points."
        },
    )
    nprobe: int | None = field(
        default=None,
        metadata={
            "help": "IVF: lists scanned per query; higher is slower and closer to exact. "
            "None: a quarter of nlist, which gave recall@10 0.955-0.961 against exact search on "
            "20k-60k MiniLM fact sentences (relation templates spread a query's neighbours "
            "over many lists, so small fixed values such as 16 gave only ~0.7)."
        },
    )
    m: int = field(default=32, metadata={"help": "HNSW: neighbours per node (M)."})
    ef_search: int = field(
        default=64,
        metadata={
            "help": "HNSW: candidate list size at search time (efSearch); 64 gave recall@10 "
            "0.87-0.91 on 20k-60k MiniLM fact sentences, 128 gave 0.91-0.95, 256 gave 0.94-0.97."
        },
    )
    ef_construction: int = field(
        default=80, metadata={"help": "HNSW: candidate list size at build time (efConstruction)."}
    )
    batch_size: int = field(
        default=256, metadata={"help": "Texts per encoder forward pass when building or adding."}
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(KINDS)}; got {self.kind!r}")
        for name in (
            "approx_threshold",
            "m",
            "ef_search",
            "ef_construction",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {value!r}")
        for name in ("nlist", "nprobe"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive integer, or None to size it from the data; "
                    f"got {value!r}"
                )

    def resolve(self, n: int) -> IndexConfig:
        """This config with ``kind`` made concrete (and ``nlist`` sized) for ``n`` records.

        Raises:
            ValueError: ``kind='ivf'`` with no records to train on, or ``nlist`` > ``n``.

        For IVF, ``nlist`` None becomes :func:`default_nlist` and ``nprobe`` None a quarter
        of ``nlist``.
        """
        kind = self.kind
        if kind == "auto":
            kind = "ivf" if n >= self.approx_threshold else "flat"
        if kind != "ivf":
            return replace(self, kind=kind, nlist=None)
        if n < 1:
            raise ValueError(
                "`kind='ivf'` must be trained on the records it is built from, and none were "
                "given; build from the records, or use `kind='flat'` or 'auto'"
            )
        nlist = self.nlist if self.nlist is not None else default_nlist(n)
        if nlist > n:
            raise ValueError(
                f"`nlist` ({nlist}) exceeds the number of records to train on ({n}); "
                "use a smaller `nlist` or None to size it from the data"
            )
        nprobe = self.nprobe if self.nprobe is not None else max(1, nlist // 4)
        return replace(self, kind=kind, nlist=nlist, nprobe=nprobe)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (what the manifest stores)."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        """Names of the settings, for checking keys read from a file."""
        return {f.name for f in fields(cls)}


def default_nlist(n: int) -> int:
    """About ``4 * sqrt(n)`` inverted lists, between 1 and ``n // 39`` (and 65,536)."""
    return max(1, min(round(4 * math.sqrt(n)), n // _MIN_POINTS_PER_LIST, _MAX_NLIST))


def new_faiss_index(config: IndexConfig, dimension: int) -> faiss.Index:
    """An empty FAISS index for a resolved ``config`` (``kind`` not 'auto').

    The IVF index is untrained; call ``train`` on representative vectors before adding.
    """
    if config.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if config.kind == "ivf":
        if config.nlist is None:
            raise ValueError("`nlist` must be set for kind='ivf'; call `config.resolve(n)` first")
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, config.nlist, faiss.METRIC_INNER_PRODUCT)
        # A hashtable direct map accepts our own (non-contiguous) ids and supports
        # both reconstruct and remove_ids; the array map supports neither after removal.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        apply_search_params(index, config)
        return index
    if config.kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dimension, config.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = config.ef_construction
        index = faiss.IndexIDMap2(hnsw)
        apply_search_params(index, config)
        return index
    raise ValueError(f"`kind` must be resolved to flat, ivf or hnsw first; got {config.kind!r}")


def apply_search_params(index: faiss.Index, config: IndexConfig) -> None:
    """Set ``nprobe`` (IVF) or ``efSearch`` (HNSW) on ``index``; FAISS does not save efSearch."""
    if config.kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = config.nprobe
    elif config.kind == "hnsw":
        inner = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        inner.hnsw.efSearch = config.ef_search


def kind_of(index: faiss.Index) -> str:
    """The kind ('flat', 'ivf' or 'hnsw') of a FAISS index made by :func:`new_faiss_index`."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
    return type(index).__name__
