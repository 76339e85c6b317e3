"""On-disk format of a :class:`~index.FactIndex` folder.

::

    index/
      index.faiss     FAISS's own binary format (faiss.write_index), never pickle
      meta.jsonl      one {"id": int, "record": {...}} per line, ascending id
      manifest.json   kind, format version, library versions, encoder, index settings,
                      count, next_id, sha256 of the two files above, creation time
                      (kg.manifest; checked on load)

An HNSW index keeps removed vectors (tombstones); they are the ids in ``index.faiss`` that
``meta.jsonl`` does not list, and are filtered out again on load.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss

from index.config import IndexConfig, kind_of
from index.encoder import DEFAULT_ENCODER_NAME, Encoder, TextEncoder
from kg.io import atomic_directory, atomic_write_text
from kg.manifest import ArtifactError, write_manifest
from kg.manifest import read_manifest as read_artifact_manifest

if TYPE_CHECKING:
    from index.fact_index import FactIndex

FORMAT_VERSION = 2
"""2: ``kind`` (kg.manifest) instead of 1's ``type``."""
INDEX_KIND = "grounded-index"
INDEX_TYPE = "grounded.FactIndex"  # format 1's `type`
INDEX_FILE = "index.faiss"
META_FILE = "meta.jsonl"
MANIFEST_FILE = "manifest.json"

_REQUIRED_KEYS = ("encoder", "index", "count", "next_id")
_KNOWN_KEYS = {*_REQUIRED_KEYS, "type"}
_ENCODER_KEYS = ("name", "path", "dimension", "normalize")
_FIX = "rebuild the index (`grounded kb build ... --overwrite` for a knowledge base)"


def save_index(index: FactIndex, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``index`` to the folder ``path`` atomically; returns the folder."""
    path = Path(path)
    encoder = index.encoder
    with atomic_directory(path, overwrite=overwrite) as tmp:
        faiss.write_index(index._faiss, str(tmp / INDEX_FILE))
        lines = [
            json.dumps({"id": i, "record": r}, sort_keys=True, ensure_ascii=False)
            for i, r in index._records.items()  # insertion order is ascending id
        ]
        atomic_write_text(tmp / META_FILE, "".join(line + "\n" for line in lines))
        encoder_path = getattr(encoder, "path", None)
        write_manifest(
            tmp,
            INDEX_KIND,
            FORMAT_VERSION,
            files=[INDEX_FILE, META_FILE],
            packages=("numpy", "sentence-transformers"),
            versions={"faiss": faiss.__version__},  # faiss-cpu or faiss-gpu
            extra={
                "encoder": {
                    "name": encoder.name,
                    "path": str(encoder_path) if encoder_path is not None else None,
                    "dimension": int(encoder.dimension),
                    "normalize": bool(encoder.normalize),
                },
                "index": index.config.to_dict(),
                "count": len(index),
                "next_id": index.next_id,
            },
        )
    return path


def read_manifest(path: str | Path, *, verify: bool = False) -> dict[str, Any]:
    """Read and check the manifest of the index folder ``path`` (and, with ``verify``, the
    sha256 of its files).

    Raises:
        FileNotFoundError: ``path`` has no ``manifest.json`` (not a FactIndex folder), or a
            listed file is missing.
        ValueError: the manifest is not JSON, names another kind, lacks a key, or has a
            newer ``format_version`` than this code reads; a file differs from its checksum.
    """
    path = Path(path)
    file = path / MANIFEST_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{path} is not a FactIndex folder (no {MANIFEST_FILE}); build one with "
            "`FactIndex.build(records, encoder).save(path)` or `grounded kb build`"
        )
    manifest = read_artifact_manifest(
        path,
        INDEX_KIND,
        FORMAT_VERSION,
        verify=verify,
        required=_REQUIRED_KEYS,
        known=_KNOWN_KEYS,
        kind_since=2,
        fix=_FIX,
    )
    if manifest["format_version"] < 2 and manifest.get("type") != INDEX_TYPE:
        raise ArtifactError(
            f"{file} is not a FactIndex manifest (`type` is {manifest.get('type')!r}, expected "
            f"{INDEX_TYPE!r}); point `path` at an index folder"
        )
    return manifest


def _config_from_manifest(manifest: dict[str, Any], file: Path) -> IndexConfig:
    settings = dict(manifest["index"])
    unknown = sorted(set(settings) - IndexConfig.field_names())
    if unknown:
        warnings.warn(
            f"{file}: unknown index settings {', '.join(unknown)} are ignored; upgrade grounded "
            "if the index was written by a newer version.",
            stacklevel=4,
        )
    return IndexConfig(**{k: v for k, v in settings.items() if k not in unknown})


def _read_meta(file: Path) -> dict[int, dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}
    with open(file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                i, record = int(row["id"]), row["record"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f'{file}:{lineno}: expected {{"id": int, "record": {{...}}}} ({err}); '
                    "the index is damaged: rebuild it"
                ) from err
            if i in records:
                raise ValueError(f"{file}:{lineno}: id {i} appears twice; rebuild the index")
            records[i] = record
    return dict(sorted(records.items()))


def resolve_encoder(
    manifest: dict[str, Any], encoder: TextEncoder | None, folder: Path
) -> TextEncoder:
    """The encoder to open the index with: ``encoder`` checked against the manifest, or the
    one the manifest names.

    Raises:
        ValueError: ``encoder`` differs in name, dimension or normalization.
        FileNotFoundError: ``encoder`` is None and the manifest's encoder cannot be found.
    """
    built = manifest["encoder"]
    missing = [k for k in _ENCODER_KEYS if k not in built]
    if missing:
        raise ValueError(f"{folder / MANIFEST_FILE}: `encoder` lacks {', '.join(missing)}")
    if encoder is None:
        if built["name"] == DEFAULT_ENCODER_NAME:
            encoder = Encoder.default()
        elif built["path"] and Path(built["path"]).is_dir():
            encoder = Encoder(built["path"], name=built["name"], normalize=built["normalize"])
        else:
            raise FileNotFoundError(
                f"the index in {folder} was built with encoder {built['name']!r} from "
                f"{built['path']!r}, which is not on this machine; pass `encoder=` "
                "(the same model) to `FactIndex.load`"
            )
    ours = (encoder.name, int(encoder.dimension), bool(encoder.normalize))
    theirs = (built["name"], int(built["dimension"]), bool(built["normalize"]))
    if ours != theirs:
        raise ValueError(
            f"the index in {folder} was built with encoder {built['name']!r} "
            f"(dimension {built['dimension']}, normalize={built['normalize']}) but `encoder` is "
            f"{encoder.name!r} (dimension {encoder.dimension}, normalize={encoder.normalize}); "
            "embeddings of different encoders are not comparable: rebuild the index with the "
            f"new encoder, or pass the original encoder {built['name']!r}"
        )
    return encoder


def load_index(
    cls: type[FactIndex], path: str | Path, encoder: TextEncoder | None, *, verify: bool = True
) -> FactIndex:
    """Open the index folder ``path`` (see :meth:`FactIndex.load`)."""
    path = Path(path)
    manifest = read_manifest(path, verify=verify)
    file = path / MANIFEST_FILE
    config = _config_from_manifest(manifest, file)
    encoder = resolve_encoder(manifest, encoder, path)
    records = _read_meta(path / META_FILE)
    faiss_index = faiss.read_index(str(path / INDEX_FILE))
    stored_ids = (
        faiss.vector_to_array(faiss_index.id_map)
        if isinstance(faiss_index, faiss.IndexIDMap2)
        else None
    )
    problems = []
    if kind_of(faiss_index) != config.kind:
        problems.append(
            f"{INDEX_FILE} is {kind_of(faiss_index)} but the manifest says {config.kind}"
        )
    if len(records) != manifest["count"]:
        problems.append(
            f"{META_FILE} has {len(records)} records, manifest count {manifest['count']}"
        )
    if records and max(records) >= manifest["next_id"]:
        problems.append(f"{META_FILE} has id {max(records)} >= next_id {manifest['next_id']}")
    tombstones: set[int] = set()
    if config.kind == "hnsw" and stored_ids is not None:
        tombstones = set(stored_ids.tolist()) - set(records)
    if faiss_index.ntotal != len(records) + len(tombstones):
        problems.append(
            f"{INDEX_FILE} holds {faiss_index.ntotal} vectors for {len(records)} records"
        )
    if problems:
        raise ValueError(f"the index in {path} is inconsistent: {'; '.join(problems)}; rebuild it")
    return cls(encoder, faiss_index, config, records, manifest["next_id"], tombstones)
