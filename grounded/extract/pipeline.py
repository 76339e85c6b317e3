"""``grounded kb extract``: documents → candidates → verified → triples.tsv + review.tsv.

Steps: read the documents (:func:`kg.extract.read_documents`), find and link entity mentions
(the KB of ``--kb`` and the names of ``--entities``), run the registered extractors, merge
their candidates, verify them with the checker when one is given, flag those that contradict
a functional relation of ``--kb``, and write the folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grounded.extract.registry import DEFAULT_EXTRACTORS, EXTRACTORS, get_extractors
from grounded.extract.verify import verify_candidates
from kg import KnowledgeGraph, KnowledgeSource, Passage, Schema
from kg.extract import (
    Candidate,
    Document,
    EntityFinder,
    entity_types,
    flag_conflicts,
    kept,
    merge_candidates,
    read_documents,
    write_entities,
    write_review,
    write_triples,
)
from kg.io import atomic_write_json
from kg.loaders import load_entities

if TYPE_CHECKING:
    from grounded.factcheck import FactChecker
    from grounded.kb import KBBuildConfig

DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass
class ExtractConfig:
    """Settings of ``grounded kb extract`` (and of the extraction step of ``kb build``)."""

    documents: list[str] = field(
        default_factory=list,
        metadata={"help": "Documents: .txt/.md files, folders of them, or a passages .jsonl/.tsv."},
    )
    relations: str | None = field(
        default=None,
        metadata={"help": "The relation schema (templates and questions): what is extracted."},
    )
    entities: str | None = field(
        default=None,
        metadata={"help": "Known entities and their types (.tsv/.csv: entity, type); linked."},
    )
    kb: str | None = field(
        default=None,
        metadata={
            "help": "An existing knowledge base folder: its entities and aliases are linked, "
            "and candidates contradicting its functional relations are flagged, not kept."
        },
    )
    extractors: list[str] = field(
        default_factory=lambda: list(DEFAULT_EXTRACTORS),
        metadata={"help": f"Extractors to run, of: {EXTRACTORS.describe()}."},
    )
    extractor_model: str | None = field(
        default=None,
        metadata={
            "help": "The `model` extractor's folder (written by `grounded kb "
            "train-extractor`); naming it adds `model` to the extractors."
        },
    )
    checker: str | None = field(
        default=None,
        metadata={
            "help": "A fact-checker folder: each candidate's template statement must be "
            "supported by its sentence, and its P(supported) becomes the confidence. "
            "Without one, the extractors' own confidences are used."
        },
    )
    min_confidence: float = field(
        default=DEFAULT_MIN_CONFIDENCE,
        metadata={"help": "Keep candidates at or above this confidence (review keep=yes)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.documents, str):
            self.documents = [self.documents]
        if isinstance(self.extractors, str):
            self.extractors = [x for x in self.extractors.split(",") if x]
        for name in self.extractors:
            EXTRACTORS.check(name, "extractors")
        if self.extractor_model and "model" not in self.extractors:
            self.extractors = [*self.extractors, "model"]
        if "model" in self.extractors and not self.extractor_model:
            raise ValueError(
                "the `model` extractor needs `extractor_model` (--extractor-model FOLDER); "
                "train one with `grounded kb train-extractor --relations SCHEMA --kb KB --out "
                "FOLDER`"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"`min_confidence` must be in [0, 1], got {self.min_confidence}")


@dataclass
class Extraction:
    """What an extraction produced: every candidate, and the documents read."""

    documents: list[Document]
    candidates: list[Candidate]
    schema: Schema
    min_confidence: float
    seconds: float = 0.0
    given_types: dict[str, str] = field(default_factory=dict)

    @property
    def sentences(self) -> int:
        return sum(len(d.sentences) for d in self.documents)

    def kept(self) -> list[Candidate]:
        return kept(self.candidates, self.min_confidence)

    def entity_types(self) -> dict[str, str]:
        return {**entity_types(self.kept()), **self.given_types}

    def passages(self, triples: list | None = None) -> list[Passage]:
        """One passage per sentence (id = its source), with the entities of the triples
        read from it (``triples``: the kept candidates' by default)."""
        if triples is None:
            triples = [c.triple() for c in self.kept()]
        names: dict[str, set[str]] = {}
        for t in triples:
            if t.source:
                names.setdefault(t.source, set()).update((t.subject, t.object))
        return [
            Passage(s.source, s.text, tuple(sorted(names.get(s.source, ()))), d.id)
            for d in self.documents
            for s in d.sentences
        ]

    def source(self, name: str = "documents") -> KnowledgeSource:
        """The kept triples with their provenance, the schema and the sentences as passages."""
        triples, seen = [], set()
        for c in self.kept():
            t = c.triple()
            if t not in seen:
                seen.add(t)
                triples.append(t)
        return KnowledgeSource(
            triples, self.schema, {}, self.passages(), name=name,
            entity_types=self.entity_types(),
        )  # fmt: skip

    def summary(self) -> dict:
        by_extractor: dict[str, int] = {}
        for c in self.candidates:
            by_extractor[c.extractor] = by_extractor.get(c.extractor, 0) + 1
        return {
            "documents": len(self.documents),
            "sentences": self.sentences,
            "candidates": len(self.candidates),
            "kept": len(self.kept()),
            "flagged": sum(c.flagged for c in self.candidates),
            "by_extractor": dict(sorted(by_extractor.items())),
            "min_confidence": self.min_confidence,
            "seconds": round(self.seconds, 3),
        }

    def write(self, out: str | Path) -> list[Path]:
        """Write ``triples.tsv``, ``review.tsv``, ``entities.tsv`` and ``extraction.json``."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"`out` {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)
        return [
            write_triples(out / "triples.tsv", [c.triple() for c in self.kept()]),
            write_review(out / "review.tsv", self.candidates, self.schema, self.min_confidence),
            write_entities(out / "entities.tsv", self.entity_types()),
            atomic_write_json(out / "extraction.json", self.summary()),
        ]


def extract(
    config: ExtractConfig, *, checker: FactChecker | None = None, show_progress: bool = False
) -> Extraction:
    """Run the extraction a config names (see the module docstring).

    Args:
        config: the settings.
        checker: a loaded fact-checker (overrides ``config.checker``).

    Raises:
        ValueError: no documents or no schema; a bad extractor name.
        kg.SourceFileError: an empty or binary document, a bad line in a passages, schema or
            entities file, each with file and line.
    """
    if not config.documents:
        raise ValueError("`documents` is empty: give .txt/.md files, a folder, or passages")
    if not config.relations:
        raise ValueError(
            "`relations` is required: the schema file naming the relations to extract, each "
            "with a statement template and questions"
        )
    t0 = time.perf_counter()
    schema = Schema.load(config.relations)
    given = load_entities(config.entities) if config.entities else {}
    graph = None
    if config.kb:
        from grounded.kb import read_kb_manifest

        read_kb_manifest(config.kb)
        graph = KnowledgeGraph.load(Path(config.kb) / "graph.json")
    documents = read_documents(config.documents)
    if checker is None and config.checker:
        from grounded.factcheck import FactChecker

        checker = FactChecker.from_pretrained(config.checker)
    finder = EntityFinder(graph, given)
    sentences = [s for d in documents for s in d.sentences]
    candidates: list[Candidate] = []
    options = {"model": {"model": config.extractor_model, "show_progress": show_progress}}
    for ex in get_extractors(config.extractors, schema, finder, options=options):
        candidates += ex.extract(sentences)
    candidates = merge_candidates(candidates)
    candidates = verify_candidates(candidates, schema, checker, show_progress=show_progress)
    if graph is not None:
        candidates = flag_conflicts(candidates, graph)
    return Extraction(
        documents, candidates, schema, config.min_confidence, time.perf_counter() - t0, given
    )


def documents_source(config: KBBuildConfig) -> KnowledgeSource:
    """The :class:`KnowledgeSource` of ``kb build --documents`` / ``--review``.

    With ``review``: the rows a person kept (``keep`` = yes), their provenance as written;
    else the extraction's triples at or above ``min_confidence``. The documents' sentences
    become passages (id ``document#sentence``, the triples' source).

    Args:
        config: a :class:`grounded.kb.KBBuildConfig`.

    Raises:
        kg.SourceFileError: bad lines in the review, schema, entities or documents.
    """
    from kg.extract import read_review
    from kg.loaders import load_aliases

    name = config.name or "documents"
    if config.review:
        schema = Schema.load(config.relations)
        triples, types = read_review(config.review, schema)
        given = load_entities(config.entities) if config.entities else {}
        docs = read_documents(config.documents) if config.documents else []
        extraction = Extraction(docs, [], schema, config.min_confidence, given_types=given)
        source = KnowledgeSource(
            triples, schema, {}, extraction.passages(triples), name=name,
            entity_types={**types, **given},
        )  # fmt: skip
    else:
        source = extract(
            ExtractConfig(
                documents=config.documents,
                relations=config.relations,
                entities=config.entities,
                extractors=config.extractors,
                extractor_model=config.extractor_model,
                checker=config.checker,
                min_confidence=config.min_confidence,
            )
        ).source(name)
    if config.aliases:
        source.aliases = load_aliases(config.aliases)
    return source
