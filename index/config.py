"""Settings of a :class:`~index.FactIndex` and the one factory that turns them into a FAISS index.

Each kind is a ``faiss.index_factory`` string (all inner product; with normalized embeddings
that is cosine similarity); :data:`FACTORIES` maps the kind to its string:

- ``flat``: ``"IDMap2,Flat"``, exact. Removal is a real delete.
- ``ivf``: ``"IVF{nlist},Flat"`` with a hashtable direct map, so ids are ours
  (``add_with_ids``), ``reconstruct`` works and ``remove_ids`` is a real delete. Vectors are
  stored uncompressed, so returned scores are exact; only the candidate set is approximate
  (``nprobe`` of ``nlist`` lists are scanned, a quarter by default). Chosen by ``auto`` at or
  above ``approx_threshold`` records.
- ``ivfpq``: ``"IVF{nlist},PQ{pq_m}x{pq_nbits}np"``, as ``ivf`` but each vector is stored as a
  product-quantized code of ``pq_m * pq_nbits / 8`` bytes (96 bytes instead of 1,536 for a
  384-dimensional MiniLM vector with the defaults). Scores, and the vectors ``reconstruct``
  returns, are approximations; never chosen by ``auto``: pick it when memory matters more
  than exact scores, and measure its recall on your data (:func:`index.recall_against_exact`
  measures only the search, against the decoded vectors).
- ``hnsw``: ``"IDMap2,HNSW{m},Flat"``. FAISS's HNSW graph cannot delete, so removed ids are
  kept as tombstones and filtered out of every search with an ``IDSelector``; their memory
  is reclaimed only by rebuilding the index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import faiss

IndexKind = Literal["auto", "flat", "ivf", "ivfpq", "hnsw"]

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
            "help": "Index type: 'flat' (exact), 'ivf' (inverted lists), 'ivfpq' (inverted "
            "lists of compressed codes), 'hnsw' (graph), or 'auto' (flat below "
            "`approx_threshold` records at build time, else ivf)."
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
    pq_m: int | None = field(
        default=None,
        metadata={
            "help": "IVF-PQ: sub-quantizers per vector (must divide the dimension). None: the "
            "largest divisor of the dimension up to a quarter of it (96 for 384). On 20k "
            "MiniLM city-fact sentences, recall@10 against exact search was 0.83 with 96 "
            "(96 bytes a vector; 0.87 scanning every list) and 0.91 with 192, against 0.93 "
            "for ivf and 0.97 for hnsw at their defaults."
        },
    )
    pq_nbits: int = field(
        default=8,
        metadata={
            "help": "IVF-PQ: bits per sub-quantizer code; training needs at least "
            "2**pq_nbits records (256 for 8)."
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
            "pq_nbits",
            "m",
            "ef_search",
            "ef_construction",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {value!r}")
        for name in ("nlist", "nprobe", "pq_m"):
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
            ValueError: an IVF kind with no records to train on, ``nlist`` > ``n``, or
                ``kind='ivfpq'`` with fewer than ``2**pq_nbits`` records.

        For IVF kinds, ``nlist`` None becomes :func:`default_nlist` and ``nprobe`` None a
        quarter of ``nlist``.
        """
        kind = self.kind
        if kind == "auto":
            kind = "ivf" if n >= self.approx_threshold else "flat"
        if kind not in ("ivf", "ivfpq"):
            return replace(self, kind=kind, nlist=None)
        if n < 1:
            raise ValueError(
                f"`kind={kind!r}` must be trained on the records it is built from, and none "
                "were given; build from the records, or use `kind='flat'` or 'auto'"
            )
        if kind == "ivfpq" and n < 2**self.pq_nbits:
            raise ValueError(
                f"`kind='ivfpq'` with `pq_nbits={self.pq_nbits}` trains {2**self.pq_nbits} "
                f"centroids per sub-quantizer and needs at least that many records; got {n}: "
                "lower `pq_nbits`, or use `kind='ivf'` or 'flat'"
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


def default_pq_m(dimension: int) -> int:
    """The largest divisor of ``dimension`` up to ``dimension // 4`` (96 for 384)."""
    return max(m for m in range(1, max(1, dimension // 4) + 1) if dimension % m == 0)


def _ivf_lists(config: IndexConfig) -> int:
    if config.nlist is None:
        raise ValueError(
            f"`nlist` must be set for kind={config.kind!r}; call `config.resolve(n)` first"
        )
    return config.nlist


def _ivfpq(config: IndexConfig, dimension: int) -> str:
    pq_m = config.pq_m if config.pq_m is not None else default_pq_m(dimension)
    if dimension % pq_m:
        raise ValueError(
            f"`pq_m` ({pq_m}) must divide the embedding dimension ({dimension}); use a "
            f"divisor such as {default_pq_m(dimension)}, or None to choose one"
        )
    # "np": no polysemous training, which only serves Hamming pre-filtering (off here) and
    # took seconds even for 200 vectors.
    return f"IVF{_ivf_lists(config)},PQ{pq_m}x{config.pq_nbits}np"


# kind -> faiss.index_factory string for a resolved config and the embedding dimension.
# IDMap2 keeps our ids and supports reconstruct; IVF indexes carry ids themselves.
FACTORIES: dict[str, Callable[[IndexConfig, int], str]] = {
    "flat": lambda config, dimension: "IDMap2,Flat",
    "hnsw": lambda config, dimension: f"IDMap2,HNSW{config.m},Flat",
    "ivf": lambda config, dimension: f"IVF{_ivf_lists(config)},Flat",
    "ivfpq": _ivfpq,
}
KINDS: tuple[str, ...] = ("auto", *FACTORIES)


def factory_string(config: IndexConfig, dimension: int) -> str:
    """The ``faiss.index_factory`` string of a resolved ``config`` (``kind`` not 'auto').

    Raises:
        ValueError: ``kind`` is 'auto', an IVF ``nlist`` is unset, or ``pq_m`` does not
            divide ``dimension``.

    Example:
        >>> factory_string(IndexConfig(kind="hnsw", m=16), 384)
        'IDMap2,HNSW16,Flat'
        >>> factory_string(IndexConfig(kind="ivfpq").resolve(10_000), 384)
        'IVF256,PQ96x8np'
    """
    build = FACTORIES.get(config.kind)
    if build is None:
        raise ValueError(
            f"`kind` must be resolved to one of {', '.join(FACTORIES)} first; got "
            f"{config.kind!r} (call `config.resolve(n)`)"
        )
    return build(config, dimension)


def new_faiss_index(config: IndexConfig, dimension: int) -> faiss.Index:
    """An empty FAISS index for a resolved ``config`` (``kind`` not 'auto').

    IVF indexes are untrained (``is_trained`` False); call ``train`` on representative
    vectors before adding.
    """
    index = faiss.index_factory(
        dimension, factory_string(config, dimension), faiss.METRIC_INNER_PRODUCT
    )
    if config.kind in ("ivf", "ivfpq"):
        # A hashtable direct map accepts our own (non-contiguous) ids and supports
        # both reconstruct and remove_ids; the array map supports neither after removal.
        faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)
    elif config.kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efConstruction = config.ef_construction
    apply_search_params(index, config)
    return index


def apply_search_params(index: faiss.Index, config: IndexConfig) -> None:
    """Set ``nprobe`` (IVF) or ``efSearch`` (HNSW) on ``index``; FAISS does not save efSearch."""
    if config.kind in ("ivf", "ivfpq"):
        faiss.extract_index_ivf(index).nprobe = config.nprobe
    elif config.kind == "hnsw":
        inner = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        inner.hnsw.efSearch = config.ef_search


def kind_of(index: faiss.Index) -> str:
    """The kind ('flat', 'ivf', 'ivfpq' or 'hnsw') of a FAISS index from :func:`new_faiss_index`."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
    return type(index).__name__
