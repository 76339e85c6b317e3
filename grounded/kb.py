"""`KnowledgeBase`: the on-disk artifact that joins the graph, the source files and the index.

Layout of a ``kb/`` folder::

    kb/
      manifest.json     kind, format, versions, counts, load report, sha256 of every file
                        (kg.manifest; checked on load)
      triples.tsv  relations.json  aliases.tsv  passages.jsonl (optional)
      graph.json        node-link JSON of the KnowledgeGraph
      index/            FactIndex (index.faiss, meta.jsonl, manifest.json)
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kg import KnowledgeGraph, KnowledgeSource, Triple
from kg.io import OVERWRITE_NOTE, atomic_directory, checksums, dumps_json
from kg.loaders import load_passages
from kg.manifest import ArtifactError, digest, read_manifest, write_manifest

if TYPE_CHECKING:
    from grounded.retrieval import HybridRetriever, RetrievalConfig
    from index import Encoder, FactIndex, IndexConfig

KB_KIND = "grounded-kb"
KB_FORMAT_VERSION = 2
"""2: the manifest records `kind` (kg.manifest); 1 had none."""
KB_MANIFEST_KEYS = frozenset(
    {"name", "build_seconds", "encoder", "counts", "load_report", "checksum"}
)
KB_FIX = (
    "rebuild it with `grounded kb build ... --out PATH --overwrite`, or restore the folder "
    "from a backup"
)
SOURCE_FILES = ("triples.tsv", "relations.json", "aliases.tsv", "passages.jsonl")


def fact_record(kg: KnowledgeGraph, t: Triple) -> dict[str, Any]:
    """The index record of a fact (its key is the triple's key)."""
    return {
        "key": t.key,
        "kind": "fact",
        "text": kg.verbalize(t),
        "subject": t.subject,
        "relation": t.relation,
        "object": t.object,
    }


def passage_key(passage_id: str) -> str:
    return f"passage:{passage_id}"


class KnowledgeBase:
    """A built knowledge base: graph + index + source files, loaded from or saved to a folder.

    Use :meth:`build` to make one from a :class:`kg.KnowledgeSource` and :meth:`load` to open
    one. :attr:`retriever` gives hybrid retrieval over both halves.

    Example:
        >>> kb = KnowledgeBase.load("runs/countries/kb")  # doctest: +SKIP
        >>> kb.retriever.retrieve("What is the capital of Mongolia?")[0].text  # doctest: +SKIP
        'The capital of Mongolia is Ulaanbaatar.'
    """

    def __init__(
        self,
        graph: KnowledgeGraph,
        index: FactIndex,
        *,
        passages: list | None = None,
        path: Path | None = None,
        manifest: dict | None = None,
    ) -> None:
        self.graph = graph
        self.index = index
        self.passages = passages or []
        self.path = path
        self.manifest = manifest or {}
        self._checksum: str | None = None
        self._retriever: HybridRetriever | None = None
        self.passages_by_entity: dict[str, list[str]] = defaultdict(list)
        for p in self.passages:
            for e in p.entities:
                self.passages_by_entity[e].append(passage_key(p.id))

    # -- build / save / load -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        source: KnowledgeSource,
        out: str | Path,
        *,
        encoder: Encoder | None = None,
        index_config: IndexConfig | None = None,
        show_progress: bool = True,
        overwrite: bool = False,
    ) -> KnowledgeBase:
        """Verbalize and index every fact and passage of ``source`` and write ``out``.

        The folder is assembled in a temporary sibling and moved into place only when
        complete, so an error leaves an existing ``out`` untouched.

        Raises:
            FileExistsError: ``out`` exists and ``overwrite`` is False.
        """
        from index import Encoder, FactIndex
        from kg.loaders import write_source

        out = Path(out)
        if out.exists() and not overwrite:
            raise FileExistsError(
                f"{out} exists; pass `--overwrite` (CLI) or `overwrite=True` to replace it"
            )
        encoder = encoder or Encoder.default()
        t0 = time.perf_counter()
        graph = KnowledgeGraph.from_source(source)
        records = [fact_record(graph, t) for t in graph.triples()]
        records += [
            {
                "key": passage_key(p.id),
                "kind": "passage",
                "text": p.text,
                "passage_id": p.id,
                "entities": list(p.entities),
            }
            for p in source.passages
        ]
        index = FactIndex.build(records, encoder, index_config, show_progress=show_progress)
        with atomic_directory(out, overwrite=True) as tmp:
            files = write_source(source, tmp)
            graph.save(tmp / "graph.json")
            index.save(tmp / "index")
            files.append("graph.json")
            files += sorted(
                p.relative_to(tmp).as_posix()
                for p in (tmp / "index").rglob("*")
                if p.is_file() and p.name != "manifest.json"  # the index's own manifest
            )
            sums = checksums(tmp, files)
            manifest = write_manifest(
                tmp,
                KB_KIND,
                KB_FORMAT_VERSION,
                files=files,
                packages=("networkx", "faiss-cpu", "sentence-transformers", "numpy"),
                extra={
                    "name": source.name,
                    "build_seconds": round(time.perf_counter() - t0, 3),
                    "encoder": {"name": encoder.name, "dimension": encoder.dimension},
                    "counts": {
                        "facts": len(graph),
                        "entities": graph.graph.number_of_nodes(),
                        "relations": len(graph.schema),
                        "aliases": sum(len(v) for v in source.aliases.values()),
                        "passages": len(source.passages),
                        "indexed": len(index),
                    },
                    "load_report": source.report.to_dict(),
                    # Written for readers of the manifest alone; `checksum` recomputes it.
                    "checksum": digest(sums),
                },
            )
        kb = cls(graph, index, passages=source.passages, path=out, manifest=manifest)
        kb._checksum = manifest["checksum"]
        return kb

    @classmethod
    def load(
        cls, path: str | Path, *, encoder: Encoder | None = None, verify: bool = True
    ) -> KnowledgeBase:
        """Open a folder written by :meth:`build`.

        Args:
            path: the kb folder.
            encoder: the encoder for queries; by default the one the index was built with.
            verify: check every file against the manifest's sha256. Without it,
                :attr:`checksum` hashes the files when first asked, so it still names the
                files as they are.

        Raises:
            FileNotFoundError: ``path`` is not a kb folder, or a listed file is missing.
            ValueError: the manifest is damaged (not JSON, no ``checksums``, ...), a file
                does not match its checksum, the folder is from a newer grounded, or
                ``encoder`` differs from the index's.
        """
        from index import FactIndex

        path = Path(path)
        manifest = read_kb_manifest(path, verify=verify)
        graph = KnowledgeGraph.load(path / "graph.json")
        index = FactIndex.load(path / "index", encoder, verify=False)
        passages = (
            load_passages(path / "passages.jsonl") if (path / "passages.jsonl").exists() else []
        )
        kb = cls(graph, index, passages=passages, path=path, manifest=manifest)
        if verify:
            kb._checksum = digest(manifest["checksums"])
        return kb

    # -- use ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.get("name", "kb")

    @property
    def checksum(self) -> str:
        """One sha256 naming this exact KB: other artifacts record it to notice a changed KB.

        For a folder, a digest of every file's sha256 (verified on load, or hashed now when
        loaded with ``verify=False``), so any changed file changes it. For a KB in memory
        only (no folder), a digest of its facts, schema, aliases, passages and index records.
        """
        if self._checksum is None:
            if self.path is not None and self.manifest.get("checksums"):
                self._checksum = digest(checksums(self.path, sorted(self.manifest["checksums"])))
            else:
                self._checksum = self._content_digest()
        return self._checksum

    def _content_digest(self) -> str:
        content = {
            "facts": sorted(t.key for t in self.graph.triples()),
            "schema": self.graph.schema.to_dict(),
            "aliases": self.graph.aliases,
            "passages": [[p.id, p.text, list(p.entities)] for p in self.passages],
            "index": [self.index.get(i) for i in self.index.ids],
            "encoder": self.index.encoder.name,
        }
        return hashlib.sha256(dumps_json(content).encode()).hexdigest()

    @property
    def encoder(self) -> Encoder:
        return self.index.encoder

    def retriever_for(self, config: RetrievalConfig | None = None) -> HybridRetriever:
        """A hybrid retriever over this KB with ``config`` (default settings if None)."""
        from grounded.retrieval import HybridRetriever

        return HybridRetriever(self, config)

    @property
    def retriever(self) -> HybridRetriever:
        """A shared hybrid retriever with default settings."""
        if self._retriever is None:
            self._retriever = self.retriever_for()
        return self._retriever

    def stats(self) -> dict:
        """Graph statistics plus index size and the build manifest's counts."""
        out = self.graph.stats()
        out["passages"] = len(self.passages)
        out["indexed"] = len(self.index)
        out["encoder"] = self.manifest.get("encoder", {})
        out["duplicates_dropped"] = self.manifest.get("load_report", {}).get(
            "duplicates_dropped", 0
        )
        out["multi_object_functional"] = len(
            self.manifest.get("load_report", {}).get("multi_object_functional", [])
        )
        return out


def read_kb_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The checked manifest of the kb folder ``path`` (every file's sha256 with ``verify``).

    Raises:
        FileNotFoundError: ``path`` is not a kb folder, or a listed file is missing.
        ValueError: the manifest is damaged or newer, or a file differs from its checksum.
    """
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a knowledge base folder (no manifest.json); build one with "
            "`grounded kb build --preset countries --out PATH` or `grounded kb build "
            "--triples FILE --relations FILE --out PATH`"
        )
    manifest = read_manifest(
        path,
        KB_KIND,
        KB_FORMAT_VERSION,
        verify=verify,
        known=KB_MANIFEST_KEYS,
        kind_since=2,
        fix=KB_FIX,
    )
    stored = manifest.get("checksum")
    if stored is not None and stored != digest(manifest["checksums"]):
        raise ArtifactError(
            f"{path / 'manifest.json'}: `checksum` {str(stored)[:12]}… is not the digest of "
            f"its `checksums`; the manifest was edited or damaged: {KB_FIX}"
        )
    return manifest


@dataclass
class KBBuildConfig:
    """Settings of ``grounded kb build`` (also usable from Python with :func:`build_kb`)."""

    out: str = field(default="", metadata={"help": "Folder to write the knowledge base to."})
    preset: str | None = field(
        default=None,
        metadata={"help": "Embedded data set to build instead of files: countries or cities."},
    )
    triples: list[str] = field(
        default_factory=list,
        metadata={"help": "Triple files (.tsv, .csv, .jsonl) with subject, relation, object."},
    )
    relations: str | None = field(
        default=None, metadata={"help": "relations.json: the schema with statement templates."}
    )
    aliases: str | None = field(
        default=None, metadata={"help": "aliases.tsv with columns entity, alias (optional)."}
    )
    passages: str | None = field(
        default=None, metadata={"help": "passages.jsonl with id, text, entities (optional)."}
    )
    name: str | None = field(
        default=None,
        metadata={"help": "Name recorded in the manifest (default: preset or 'custom')."},
    )
    encoder: str | None = field(
        default=None,
        metadata={
            "help": "Local sentence-transformers folder for the index (default: bundled "
            "all-MiniLM-L6-v2)."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": f"Replace an existing --out folder. {OVERWRITE_NOTE}"},
    )

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("`out` is required: the folder to write the knowledge base to")
        if self.preset and (self.triples or self.relations):
            raise ValueError(
                f"give either `preset` ({self.preset!r}) or `triples` + `relations`, not both"
            )
        if not self.preset and not (self.triples and self.relations):
            raise ValueError(
                "nothing to build: give `preset` (countries, cities) or both `triples` and "
                f"`relations` (got triples={self.triples!r}, relations={self.relations!r})"
            )


def load_kb_source(config: KBBuildConfig) -> KnowledgeSource:
    """The :class:`KnowledgeSource` a build config names (a preset or files)."""
    if config.preset:
        from kg.presets import get_preset

        source = get_preset(config.preset)
    else:
        from kg.loaders import load_source

        source = load_source(
            config.triples,
            config.relations,
            aliases=config.aliases,
            passages=config.passages,
            name=config.name or "custom",
        )
    if config.name:
        source.name = config.name
    return source


def build_kb(
    config: KBBuildConfig,
    index_config: IndexConfig | None = None,
    *,
    show_progress: bool = True,
) -> KnowledgeBase:
    """Load the source a config names and build the knowledge base folder."""
    from index import Encoder

    if Path(config.out).exists() and not config.overwrite:
        raise FileExistsError(f"{config.out} exists; pass `--overwrite` to replace it")
    source = load_kb_source(config)
    encoder = Encoder(config.encoder) if config.encoder else Encoder.default()
    return KnowledgeBase.build(
        source,
        config.out,
        encoder=encoder,
        index_config=index_config,
        show_progress=show_progress,
        overwrite=config.overwrite,
    )
