"""`KnowledgeBase`: the on-disk artifact that joins the graph, the source files and the index.

Layout of a ``kb/`` folder::

    kb/
      manifest.json     kind, format, versions, counts, load report, sha256 of every file
                        (kg.manifest; checked on load)
      triples.tsv  relations.json  aliases.tsv  passages.jsonl (optional)
      entities.tsv      entity types (optional, from ``--entities``)
      graph.json        node-link JSON of the KnowledgeGraph
      index/            FactIndex (index.faiss, meta.jsonl, manifest.json)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kg import KnowledgeGraph, KnowledgeSource, Triple, review_source
from kg.io import OVERWRITE_NOTE, atomic_directory, checksums, dumps_json
from kg.loaders import load_passages
from kg.manifest import ArtifactError, artifact_kind, digest, read_manifest, write_manifest

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
SOURCE_FILES = ("triples.tsv", "relations.json", "aliases.tsv", "passages.jsonl", "entities.tsv")


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
        self._passage_text: dict[str, str] | None = None
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

        The source is reviewed first if its loader did not (:func:`kg.review_source`): name
        merges, mixed-script names, relations without questions and type violations go to
        the manifest's ``load_report``.

        Raises:
            FileExistsError: ``out`` exists and ``overwrite`` is False.
            NotADirectoryError: ``out`` (or a folder above it) is a file.
            ValueError: ``overwrite`` would replace a folder that is not a knowledge base.
        """
        from index import Encoder, FactIndex
        from kg.loaders import write_source

        out = check_out_folder(out, overwrite=overwrite)
        if not source.report.reviewed:
            review_source(source)
        encoder = encoder or Encoder.default()
        t0 = time.perf_counter()
        graph = KnowledgeGraph.from_source(source)
        graph_stats = graph.stats()
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
                        "entities": graph_stats["entities"],
                        "values": graph_stats["values"],
                        "typed_entities": len(source.entity_types),
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
    def provenance(self, triple: Triple) -> str | None:
        """Where a fact was read: ``document#sentence: the sentence`` (the sentence when the
        documents were indexed as passages, whose ids are the sources); ``source`` alone
        when no passage has that id; None for a fact with no source.

        Example:
            >>> kb.provenance(kb.graph.fact("Dune", "author", "Frank Herbert"))  # doctest: +SKIP
            'dune.md#3: Dune was written by Frank Herbert.'
        """
        if triple.source is None:
            return None
        if self._passage_text is None:
            self._passage_text = {p.id: p.text for p in self.passages}
        text = self._passage_text.get(triple.source)
        return f"{triple.source}: {text}" if text else triple.source

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
        """Graph statistics plus index size and the build manifest's counts (see
        :func:`kb_stats`, which gives the same without loading the index and its encoder)."""
        return _stats(self.graph, self.manifest, len(self.passages), len(self.index))


def kb_stats(path: str | Path, *, verify: bool = True) -> dict:
    """The statistics of a kb folder from its manifest and graph only: no encoder, no index.

    Args:
        path: the kb folder.
        verify: check every file against the manifest's sha256 first (no model is loaded).

    Raises:
        FileNotFoundError, ValueError: as :func:`read_kb_manifest`, or a checksum mismatch.
    """
    path = Path(path)
    manifest = read_kb_manifest(path, verify=verify)
    graph = KnowledgeGraph.load(path / "graph.json")
    counts = manifest.get("counts", {})
    out = _stats(graph, manifest, counts.get("passages", 0), counts.get("indexed", 0))
    out["name"] = manifest.get("name", "kb")
    return out


def _stats(graph: KnowledgeGraph, manifest: dict, passages: int, indexed: int) -> dict:
    out = graph.stats()
    report = manifest.get("load_report", {})
    out["passages"] = passages
    out["indexed"] = indexed
    out["encoder"] = manifest.get("encoder", {})
    out["duplicates_dropped"] = report.get("duplicates_dropped", 0)
    out["multi_object_functional"] = len(report.get("multi_object_functional", []))
    out["merges"] = report.get("merges", [])
    out["merge_counts"] = report.get("merge_counts", {})
    out["warnings"] = report.get("warnings", [])
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
        metadata={
            "help": "Triple files (.tsv, .csv, .jsonl) with subject, relation, object; "
            "optional when --passages are given."
        },
    )
    relations: str | None = field(
        default=None,
        metadata={
            "help": "The relation schema with statement and question templates: .json, "
            ".yaml, or a .tsv/.csv table with columns relation, functional, template, "
            "questions (separated by |)."
        },
    )
    aliases: str | None = field(
        default=None, metadata={"help": "aliases.tsv with columns entity, alias (optional)."}
    )
    passages: str | None = field(
        default=None,
        metadata={
            "help": "Passages (optional): .jsonl with id, text, entities, or a .tsv/.csv "
            "table with columns id, entity, text[, source]."
        },
    )
    entities: str | None = field(
        default=None,
        metadata={
            "help": "Entity types (optional): a .tsv/.csv table with columns entity, type; "
            "kept in the kb as entities.tsv."
        },
    )
    documents: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Documents to extract the triples from (.txt/.md files, folders of "
            "them, or passages .jsonl/.tsv); their sentences are indexed as passages. "
            "Needs --relations."
        },
    )
    review: str | None = field(
        default=None,
        metadata={
            "help": "A review.tsv written by `grounded kb extract` and edited by hand: the "
            "rows with keep=yes are the triples (with --documents, their sentences are "
            "indexed as passages)."
        },
    )
    min_confidence: float = field(
        default=0.5,
        metadata={"help": "With --documents: keep extracted triples at or above this."},
    )
    extractors: list[str] = field(
        default_factory=lambda: ["questions", "templates"],
        metadata={"help": "With --documents: the extractors to run (see `kb extract`)."},
    )
    extractor_model: str | None = field(
        default=None,
        metadata={"help": "With --documents and the `model` extractor: its trained folder."},
    )
    checker: str | None = field(
        default=None,
        metadata={
            "help": "With --documents: a fact-checker folder that verifies each candidate "
            "against its sentence (its P(supported) is the confidence)."
        },
    )
    allow_alias_merge: bool = field(
        default=False,
        metadata={
            "help": "Keep an alias that is the name of another entity (the name then means "
            "both) instead of refusing it."
        },
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
        metadata={"help": f"Replace an existing --out knowledge base folder. {OVERWRITE_NOTE}"},
    )

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("`out` is required: the folder to write the knowledge base to")
        if isinstance(self.triples, str):
            self.triples = [self.triples]
        if isinstance(self.documents, str):
            self.documents = [self.documents]
        files = self.triples or self.relations or self.passages or self.entities
        files = files or self.documents or self.review
        if self.preset and files:
            raise ValueError(
                f"give either `preset` ({self.preset!r}) or files (`triples` + `relations`, "
                "`passages`), not both"
            )
        if not self.preset and not (self.triples or self.passages or self.documents or self.review):
            raise ValueError(
                "nothing to build: give `preset` (countries, cities), `triples` with "
                f"`relations`, `documents` with `relations`, or `passages` (got "
                f"triples={self.triples!r}, passages={self.passages!r})"
            )
        if (self.documents or self.review) and (self.triples or self.passages):
            raise ValueError(
                "give `documents`/`review` or `triples`/`passages`, not both: a KB from "
                "documents takes its triples from them and indexes their sentences"
            )
        if (self.documents or self.review) and not self.relations:
            raise ValueError(
                "`relations` is required with `documents` or `review`: the schema that names "
                "the relations to extract, with templates and questions"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"`min_confidence` must be in [0, 1], got {self.min_confidence}")
        if self.triples and not self.relations:
            raise ValueError(
                "`relations` is required with `triples`: the schema that names each relation "
                "and its sentence template (.json, .yaml, .tsv or .csv)"
            )


def check_out_folder(
    out: str | Path, *, overwrite: bool, inputs: Sequence[str | Path] = ()
) -> Path:
    """Check, before any work, that a knowledge base can be written to ``out``.

    ``overwrite`` replaces only an existing knowledge base (a folder whose manifest.json
    says ``grounded-kb``) or an empty folder: a folder of other files, or another artifact,
    is never deleted by a typo in ``--out``; nor is a folder that holds one of ``inputs``
    (the source files the build reads).

    Raises:
        NotADirectoryError: ``out``, or a folder above it, is a file.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is set but ``out`` is a folder that holds no knowledge base.
        PermissionError: the folder that would hold ``out`` is not writable.
    """
    out = Path(out)
    target = out.resolve()
    for path in inputs:
        if path and (target == Path(path).resolve() or target in Path(path).resolve().parents):
            raise ValueError(
                f"`out` {out} holds the input file {path} that the build reads; writing there "
                "would delete it: give another `--out` folder (nothing was written)"
            )
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"`out` {out} is a file, not a folder; give a new folder path (nothing was written)"
        )
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(
            f"`out` {out}: {parent} is a file, so no folder can be made under it; give another path"
        )
    if out.exists():
        if not overwrite:
            raise FileExistsError(
                f"{out} exists; pass `--overwrite` (CLI) or `overwrite=True` to replace it"
            )
        if any(out.iterdir()) and artifact_kind(out) != KB_KIND:
            raise ValueError(
                f"`out` {out} is a folder that holds no knowledge base (no manifest.json of "
                f"kind {KB_KIND!r}; found {artifact_kind(out)!r}); "
                "`--overwrite` replaces only a knowledge base: give a new or empty folder"
            )
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"`out` {out}: cannot create a folder in {parent} (not writable)")
    return out


def load_kb_source(config: KBBuildConfig) -> KnowledgeSource:
    """The :class:`KnowledgeSource` a build config names (a preset or files)."""
    if config.preset:
        from kg.presets import get_preset

        source = get_preset(config.preset)
    elif config.documents or config.review:
        from grounded.extract.pipeline import documents_source

        source = documents_source(config)
    else:
        from kg.loaders import load_source

        source = load_source(
            config.triples,
            config.relations,
            aliases=config.aliases,
            passages=config.passages,
            entities=config.entities,
            name=config.name or "custom",
            allow_alias_merge=config.allow_alias_merge,
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
    """Load the source a config names and build the knowledge base folder.

    Every input is checked before the encoder loads: the output folder first, then each
    file (bad lines, bad schema, refused aliases), so a mistake costs no model load.

    Raises:
        FileExistsError, NotADirectoryError, PermissionError, ValueError: see
            :func:`check_out_folder`.
        kg.SourceFileError, ValueError, FileNotFoundError, IsADirectoryError: bad input
            files (see :func:`kg.load_source`).
    """
    from index import Encoder

    inputs = [*(config.triples or []), config.relations, config.aliases, config.passages]
    inputs += [config.entities, config.encoder]
    check_out_folder(config.out, overwrite=config.overwrite, inputs=[p for p in inputs if p])
    if config.encoder and not Path(config.encoder).is_dir():
        what = "a file" if Path(config.encoder).exists() else "missing"
        raise NotADirectoryError(
            f"`encoder` {config.encoder} is {what}; give a local sentence-transformers folder "
            "(or leave it out for the bundled all-MiniLM-L6-v2)"
        )
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
