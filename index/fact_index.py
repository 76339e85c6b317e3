"""FactIndex: dense search over fact sentences and passages (FAISS + a sentence encoder).

Each record is a JSON-serializable dict with a non-empty ``"text"`` (what is embedded) and
a unique string ``"key"`` (e.g. a triple's key or a passage id); anything else
(``kind``, ``subject``, ``relation``, ``object``, ...) is kept as metadata. The index assigns
every record an int64 id, sequentially; ids are never reused after removal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.config import IndexConfig, apply_search_params, new_faiss_index
from index.encoder import TextEncoder

Record = dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """One search result. Lists of hits are ordered by descending ``score``.

    Attributes:
        id: the record's index id.
        score: inner product of query and record embeddings (cosine when normalized).
        record: a copy of the stored record.
    """

    id: int
    score: float
    record: Record


class FactIndex:
    """Dense index of records; build with :meth:`build` or open with :meth:`load`.

    Example:
        >>> from index import Encoder, FactIndex
        >>> idx = FactIndex.build(  # doctest: +SKIP
        ...     [{"key": "mn", "text": "The capital of Mongolia is Ulaanbaatar."}],
        ...     Encoder.default(),
        ... )
        >>> idx.search("What is the capital of Mongolia?", k=1)[0].record["key"]  # doctest: +SKIP
        'mn'
    """

    def __init__(
        self,
        encoder: TextEncoder,
        faiss_index: faiss.Index,
        config: IndexConfig,
        records: dict[int, Record] | None = None,
        next_id: int = 0,
        tombstones: Iterable[int] = (),
    ) -> None:
        """Wrap an existing FAISS index (used by :meth:`build` and :meth:`load`).

        Args:
            encoder: embeds queries and new records; its ``dimension`` must match the index.
            faiss_index: made by :func:`index.config.new_faiss_index` (trained, for IVF kinds).
            config: resolved config (``kind`` is one of :data:`index.config.FACTORIES`).
            records: id -> record for every live vector in ``faiss_index``.
            next_id: the id the next added record gets.
            tombstones: HNSW ids still in ``faiss_index`` but removed.
        """
        if config.kind == "auto":
            raise ValueError("`config.kind` must be resolved; use `FactIndex.build`")
        if encoder.dimension != faiss_index.d:
            raise ValueError(
                f"`encoder` {encoder.name!r} has dimension {encoder.dimension} but the FAISS "
                f"index has {faiss_index.d}; pass the encoder the index was built with"
            )
        self.encoder = encoder
        self.config = config
        self._faiss = faiss_index
        self._records: dict[int, Record] = dict(records or {})
        self._key_to_id = {r["key"]: i for i, r in self._records.items()}
        self._next_id = int(next_id)
        self._tombstones: set[int] = set(tombstones)
        self._search_params: Any = None
        self._refresh_search_params()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        records: Iterable[Mapping[str, Any]],
        encoder: TextEncoder,
        config: IndexConfig | None = None,
        show_progress: bool = True,
    ) -> FactIndex:
        """Embed ``records`` in one batched pass and index them.

        Args:
            records: dicts with a non-empty ``"text"`` and a unique string ``"key"``.
            encoder: any object with ``name``, ``dimension``, ``normalize`` and ``encode``.
            config: index settings; ``kind='auto'`` is resolved from ``len(records)``.
            show_progress: show the encoder's progress bar.

        Returns:
            the index; ids are 0..len(records)-1 in the order given.

        Raises:
            ValueError: a record lacks ``text``/``key``, a key repeats, or a metadata value
                is not JSON-serializable (each message names the record).
        """
        records = _check_records(records, existing={})
        config = (config or IndexConfig()).resolve(len(records))
        vectors = _encode(encoder, [r["text"] for r in records], config, show_progress)
        faiss_index = new_faiss_index(config, encoder.dimension)
        if not faiss_index.is_trained:  # IVF kinds learn their lists (and codes) here
            faiss_index.train(vectors)
        index = cls(encoder, faiss_index, config)
        index._insert(records, vectors)
        return index

    def add(
        self, records: Iterable[Mapping[str, Any]], *, show_progress: bool = False
    ) -> list[int]:
        """Embed and add ``records``; returns their new ids, in order.

        An IVF index keeps the lists it was trained on at build time; adding far more (or
        very different) records than it was built from lowers recall: rebuild then.

        Raises:
            ValueError: a key repeats or is already in the index (the message names it), or a
                record is malformed.
        """
        records = _check_records(records, existing=self._key_to_id)
        if not records:
            return []
        texts = [r["text"] for r in records]
        return self._insert(records, _encode(self.encoder, texts, self.config, show_progress))

    def _insert(self, records: list[Record], vectors: np.ndarray) -> list[int]:
        ids = np.arange(self._next_id, self._next_id + len(records), dtype=np.int64)
        self._faiss.add_with_ids(vectors, ids)  # before the metadata: a failure changes nothing
        self._next_id += len(records)
        new_ids = ids.tolist()
        self._records.update(zip(new_ids, records, strict=True))
        self._key_to_id.update((r["key"], i) for i, r in zip(new_ids, records, strict=True))
        return new_ids

    def remove(self, ids: Iterable[int]) -> int:
        """Delete records by id; returns how many were removed. Nothing is removed on error.

        Raises:
            KeyError: an id is not in the index (the message names it).
        """
        unique = sorted({int(i) for i in ids})
        for i in unique:
            if i not in self._records:
                raise KeyError(f"id {i} is not in the index (never added, or already removed)")
        if not unique:
            return 0
        if self.config.kind == "hnsw":
            # FAISS HNSW cannot delete: keep the vector, filter it out of every search.
            self._tombstones.update(unique)
            self._refresh_search_params()
        else:
            removed = self._faiss.remove_ids(np.asarray(unique, dtype=np.int64))
            if removed != len(unique):
                raise RuntimeError(f"FAISS removed {removed} of {len(unique)} ids {unique[:5]}")
        for i in unique:
            del self._key_to_id[self._records.pop(i)["key"]]
        return len(unique)

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, id: object) -> bool:
        return id in self._records

    @property
    def ids(self) -> list[int]:
        """Ids of the live records, ascending."""
        return list(self._records)

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        return int(self._faiss.d)

    @property
    def next_id(self) -> int:
        """The id the next added record will get."""
        return self._next_id

    def id_of(self, key: str) -> int:
        """The id of the record with ``key``.

        Raises:
            KeyError: no record has this key.
        """
        try:
            return self._key_to_id[key]
        except KeyError:
            raise KeyError(f"no record with key {key!r} in the index") from None

    def get(self, id: int) -> Record:
        """A copy of the record with ``id``.

        Raises:
            KeyError: ``id`` is not in the index.
        """
        try:
            return dict(self._records[int(id)])
        except KeyError:
            raise KeyError(f"id {id} is not in the index (never added, or removed)") from None

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored embeddings of ``ids``, float32 of shape (len(ids), dimension).

        Lets hybrid retrieval score graph facts against a query without re-encoding them.

        Raises:
            KeyError: an id is not in the index (the message names it).
        """
        keys = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        for i in keys.tolist():
            if i not in self._records:
                raise KeyError(f"id {i} is not in the index (never added, or removed)")
        if keys.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._faiss.reconstruct_batch(keys)

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Top-``k`` records for one query, best first (fewer if the index is smaller).

        Raises:
            ValueError: ``k`` <= 0.
            TypeError: ``query`` is not a string.
        """
        if not isinstance(query, str):
            raise TypeError(f"`query` must be a string; got {type(query).__name__}")
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """Top-``k`` records for each query; one list of hits per query, in order."""
        _check_k(k)
        vectors = self.encoder.encode(list(queries), batch_size=self.config.batch_size)
        return self.search_vectors(vectors, k)

    def search_vectors(self, queries: np.ndarray, k: int = 5) -> list[list[Hit]]:
        """Top-``k`` records for each row of ``queries`` (n, dimension), best first.

        Queries are used as given: normalize them if the encoder normalizes.

        Raises:
            ValueError: ``k`` <= 0 or ``queries`` is not (n, dimension).
        """
        _check_k(k)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dimension:
            raise ValueError(
                f"`queries` must have shape (n, {self.dimension}); got {q.shape}; "
                "use `queries[None, :]` for a single vector"
            )
        if q.shape[0] == 0 or not self._records:
            return [[] for _ in range(q.shape[0])]
        scores, found = self._faiss.search(q, min(k, len(self)), params=self._search_params)
        records = self._records
        return [
            [
                Hit(i, s, dict(records[i]))
                for s, i in zip(row_s.tolist(), row_i.tolist(), strict=True)
                if i in records  # drops FAISS's -1 padding
            ]
            for row_s, row_i in zip(scores, found, strict=True)
        ]

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Trade speed for recall at search time (IVF ``nprobe``, HNSW ``ef_search``).

        Raises:
            ValueError: a value is not a positive integer.
        """
        changes = {
            k: v for k, v in {"nprobe": nprobe, "ef_search": ef_search}.items() if v is not None
        }
        self.config = replace(self.config, **changes)
        self._refresh_search_params()

    def _refresh_search_params(self) -> None:
        apply_search_params(self._faiss, self.config)
        if not self._tombstones:
            self._search_params = None
            return
        # The selector objects must outlive every search: keep them on the params.
        batch = faiss.IDSelectorBatch(np.asarray(sorted(self._tombstones), dtype=np.int64))
        selector = faiss.IDSelectorNot(batch)
        params = faiss.SearchParametersHNSW(efSearch=self.config.ef_search, sel=selector)
        params._keep = (batch, selector)
        self._search_params = params

    def __repr__(self) -> str:
        return (
            f"FactIndex(kind={self.config.kind!r}, count={len(self)}, "
            f"encoder={self.encoder.name!r}, dimension={self.dimension})"
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``index.faiss``, ``meta.jsonl`` and ``manifest.json`` to the folder ``path``.

        The folder is built aside and moved into place, so a failed save leaves an existing
        index untouched. See :mod:`index.storage` for the format.
        """
        from index.storage import save_index

        return save_index(self, path, overwrite=overwrite)

    @classmethod
    def load(
        cls, path: str | Path, encoder: TextEncoder | None = None, *, verify: bool = True
    ) -> FactIndex:
        """Open an index written by :meth:`save`.

        Args:
            path: the index folder.
            encoder: the encoder to query with; must match the manifest's encoder name and
                dimension. None: the packaged default if the manifest names it, else the
                manifest's encoder path.
            verify: check the sha256 of every file against the manifest.

        Raises:
            FileNotFoundError: ``path`` is not a FactIndex folder.
            ValueError: a checksum differs, the format is newer than this code, or
                ``encoder`` differs from the one the index was built with.
        """
        from index.storage import load_index

        return load_index(cls, path, encoder, verify=verify)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"`k` must be a positive integer; got {k!r}")


def _encode(
    encoder: TextEncoder, texts: list[str], config: IndexConfig, show_progress: bool
) -> np.ndarray:
    vectors = np.ascontiguousarray(
        encoder.encode(texts, batch_size=config.batch_size, show_progress=show_progress),
        dtype=np.float32,
    )
    if vectors.shape != (len(texts), encoder.dimension):
        raise ValueError(
            f"`encoder` {encoder.name!r} returned shape {vectors.shape} for {len(texts)} texts; "
            f"expected ({len(texts)}, {encoder.dimension})"
        )
    return vectors


def _check_records(
    records: Iterable[Mapping[str, Any]], existing: Mapping[str, int]
) -> list[Record]:
    """Copy ``records`` into plain dicts, checking text, key uniqueness and JSON-ability."""
    if isinstance(records, Mapping):
        raise TypeError("`records` must be an iterable of records; wrap a single record in a list")
    out: list[Record] = []
    seen: set[str] = set()
    for n, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"`records[{n}]` must be a dict; got {type(record).__name__}")
        key, text = record.get("key"), record.get("text")
        if not isinstance(key, str) or not key:
            raise ValueError(f"`records[{n}]` needs a non-empty string 'key'; got {key!r}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"`records[{n}]` (key {key!r}) needs a non-empty 'text'; got {text!r}")
        if key in seen:
            raise ValueError(f"duplicate key {key!r} in `records` (again at records[{n}])")
        if key in existing:
            raise ValueError(
                f"key {key!r} (records[{n}]) is already in the index as id {existing[key]}; "
                "remove that id first to replace the record"
            )
        seen.add(key)
        record = dict(record)
        try:
            json.dumps(record, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"`records[{n}]` (key {key!r}) is not JSON-serializable: {err}; keep metadata "
                "to strings, numbers, booleans, None, lists and dicts"
            ) from err
        out.append(record)
    return out
