"""Hybrid retrieval: entities linked through the graph plus dense search, merged and ranked.

For each question:

1. the graph's linker finds entity mentions (every candidate of an ambiguous name);
2. the facts around those entities (and passages that name them) are scored by cosine
   similarity to the question, read from the index's stored vectors (no re-encoding), plus
   ``link_bonus`` for each linked entity the fact involves;
   sentence encoders judge "What is the capital of Mongolia?" about as close to "Mongolia is
   in Asia." as to the capital fact (the entity dominates), so every fact also gets
   ``relation_weight`` × how well the question, with its entity mentions masked, matches the
   question and statement templates of the fact's relation;
3. dense top-``dense_k`` over the whole index adds what linking missed;
4. both lists merge by index id (best score kept, source ``both``), deduplicate by text and
   return the top ``k`` as :class:`Evidence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from kg import Triple

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase

EvidenceSource = Literal["graph", "dense", "both"]
RETRIEVAL_MODES = ("hybrid", "dense", "graph")


@dataclass(frozen=True)
class Evidence:
    """One piece of retrieved evidence.

    Attributes:
        text: the verbalized fact or the passage.
        score: ranking score (cosine similarity, plus the link bonus for graph hits).
        source: ``graph`` (found through a linked entity), ``dense``, or ``both``.
        kind: ``fact`` or ``passage``.
        triple: the fact, when ``kind == "fact"``.
        id: the record's id in the index.
        key: the record's stable key (``Triple.key`` or ``passage:<id>``).
        provenance: for a fact read from a document, where: ``document#sentence: the
            sentence`` (:meth:`grounded.kb.KnowledgeBase.provenance`); None otherwise.
    """

    text: str
    score: float
    source: EvidenceSource
    kind: str
    triple: Triple | None
    id: int
    key: str
    provenance: str | None = None

    def to_dict(self) -> dict:
        out = {
            "text": self.text,
            "score": round(self.score, 6),
            "source": self.source,
            "kind": self.kind,
            "id": self.id,
            "key": self.key,
        }
        if self.triple is not None:
            out["triple"] = [self.triple.subject, self.triple.relation, self.triple.object]
        if self.provenance:
            out["supported_by"] = self.provenance
        return out


@dataclass
class RetrievalConfig:
    """Settings of :class:`HybridRetriever`."""

    k: int = field(default=5, metadata={"help": "Evidence items returned per question."})
    mode: str = field(
        default="hybrid",
        metadata={"help": f"Retrieval mode, one of {RETRIEVAL_MODES}; `dense` skips the graph."},
    )
    dense_k: int = field(
        default=20, metadata={"help": "Candidates taken from dense search before merging."}
    )
    link_bonus: float = field(
        default=0.25,
        metadata={
            "help": "Score added per linked entity a graph fact involves (subject or object)."
        },
    )
    relation_weight: float = field(
        default=0.5,
        metadata={
            "help": "Weight of the match between the masked question and each relation's "
            "templates (0 turns relation matching off)."
        },
    )
    relation_temperature: float = field(
        default=0.05,
        metadata={"help": "Softmax temperature over relation-template similarities."},
    )
    max_graph_facts: int = field(
        default=2000,
        metadata={
            "help": "Cap on graph facts scored per question (a country in the cities KB has "
            "thousands of incoming `country` facts); outgoing facts come first."
        },
    )

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ValueError(f"`mode` must be one of {RETRIEVAL_MODES}, got {self.mode!r}")
        for name in ("k", "dense_k", "max_graph_facts"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.relation_temperature <= 0:
            raise ValueError(f"`relation_temperature` must be > 0, got {self.relation_temperature}")
        for name in ("link_bonus", "relation_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")


class HybridRetriever:
    """Graph-plus-dense retrieval over a :class:`~grounded.kb.KnowledgeBase`.

    Args:
        kb: the knowledge base.
        config: settings; defaults if None.

    Example:
        >>> hits = kb.retriever.retrieve("What is the capital of Mongolia?")  # doctest: +SKIP
        >>> hits[0].triple  # doctest: +SKIP
        Triple(subject='Mongolia', relation='capital', object='Ulaanbaatar', ...)
    """

    def __init__(self, kb: KnowledgeBase, config: RetrievalConfig | None = None) -> None:
        self.kb = kb
        self.config = config or RetrievalConfig()
        self._relation_patterns: tuple[np.ndarray, np.ndarray, list[str]] | None = None

    MASK = "X"

    def _patterns(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Encoded relation templates: vectors (n_patterns, d), owning relation, names."""
        if self._relation_patterns is None:
            names = self.kb.graph.schema.names
            texts, owner = [], []
            for i, rel in enumerate(self.kb.graph.schema):
                for q in rel.questions:
                    texts.append(q.format(subject=self.MASK))
                    owner.append(i)
                texts.append(rel.template.format(subject=self.MASK, object="Y"))
                owner.append(i)
            vecs = self.kb.index.encoder.encode(texts)
            self._relation_patterns = (vecs, np.asarray(owner), names)
        return self._relation_patterns

    def relation_scores(self, masked_vecs: np.ndarray) -> list[dict[str, float]]:
        """Per question, a distribution over relations (name → probability).

        The best cosine between the masked question and each relation's templates, sharpened
        by a softmax at ``relation_temperature``: templates of related relations are often
        close ("Where is X?" vs "What is the capital of X?": 0.76), so raw cosines would
        barely separate them.

        Args:
            masked_vecs: (n_questions, d) embeddings of the questions with mentions masked.
        """
        vecs, owner, names = self._patterns()
        sims = masked_vecs @ vecs.T  # (n_questions, n_patterns)
        best = np.full((len(sims), len(names)), -1.0)  # (n_questions, n_relations)
        for j in range(len(names)):
            best[:, j] = sims[:, owner == j].max(axis=1)
        logits = best / self.config.relation_temperature
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return [dict(zip(names, row.tolist(), strict=True)) for row in probs]

    def _mask(self, question: str, mentions: list) -> str:
        for m in sorted(mentions, key=lambda m: -m.start):
            question = question[: m.start] + self.MASK + question[m.end :]
        return question

    def retrieve(self, question: str, k: int | None = None) -> list[Evidence]:
        """Top-``k`` evidence for one question (see :meth:`retrieve_batch`)."""
        return self.retrieve_batch([question], k)[0]

    def retrieve_batch(
        self, questions: Sequence[str], k: int | None = None
    ) -> list[list[Evidence]]:
        """Top-``k`` evidence for each question, best first.

        Questions are encoded once, in one batch. Returns one list per question, each
        deduplicated by text.

        Raises:
            ValueError: ``k`` < 1.
        """
        k = self.config.k if k is None else k
        if k < 1:
            raise ValueError(f"`k` must be >= 1, got {k}")
        if not questions:
            return []
        index, cfg = self.kb.index, self.config
        n = len(questions)
        use_graph = cfg.mode != "dense"
        use_relations = use_graph and cfg.relation_weight > 0
        mentions = [self.kb.graph.linker.link(q) if use_graph else [] for q in questions]
        texts = list(questions)
        if use_relations:
            texts += [self._mask(q, m) for q, m in zip(questions, mentions, strict=True)]
        vecs = index.encoder.encode(texts)  # (n or 2n, d): questions, then masked questions
        qvecs = vecs[:n]
        rel_scores = self.relation_scores(vecs[n:]) if use_relations else [{}] * n
        dense_hits = index.search_vectors(qvecs, max(k, cfg.dense_k))
        results = []
        for qi in range(n):
            merged: dict[int, tuple[float, EvidenceSource]] = {}
            if cfg.mode != "graph":
                for h in dense_hits[qi]:
                    rel = h.record.get("relation")
                    bonus = cfg.relation_weight * rel_scores[qi].get(rel, 0.0) if rel else 0.0
                    merged[h.id] = (float(h.score) + bonus, "dense")
            if use_graph:
                graph_scores = self._graph_scores(mentions[qi], qvecs[qi], rel_scores[qi])
                for rid, score in graph_scores.items():
                    prev = merged.get(rid)
                    merged[rid] = (
                        (score, "graph") if prev is None else (max(score, prev[0]), "both")
                    )
            results.append(self._evidence(merged, k))
        return results

    def _graph_scores(
        self, mentions: list, qvec: np.ndarray, rel_scores: dict[str, float]
    ) -> dict[int, float]:
        """Index id → score of facts and passages around the linked entities."""
        graph, index = self.kb.graph, self.kb.index
        linked: set[str] = set()
        for m in mentions:
            linked.update(m.candidates)
        if not linked:
            return {}
        keys: dict[str, float] = {}  # record key → bonus (linked entities, relation match)
        outgoing, incoming = [], []
        for e in sorted(linked):
            outgoing.extend(graph.facts(e))
            incoming.extend(t for t in graph.facts_about(e) if t.subject != e)
            for pkey in self.kb.passages_by_entity.get(e, ()):
                keys[pkey] = keys.get(pkey, 0.0) + self.config.link_bonus
        w = self.config.relation_weight
        for t in (outgoing + incoming)[: self.config.max_graph_facts]:
            if t.key not in keys:
                n_linked = (t.subject in linked) + (t.object in linked)
                keys[t.key] = n_linked * self.config.link_bonus + w * rel_scores.get(
                    t.relation, 0.0
                )
        ids, bonus = [], []
        for key, extra in keys.items():
            try:
                ids.append(index.id_of(key))
            except KeyError:  # removed from the index since the graph was built
                continue
            bonus.append(extra)
        if not ids:
            return {}
        sims = index.vectors(ids) @ qvec  # (n_ids,)
        return {rid: float(s + b) for rid, s, b in zip(ids, sims, bonus, strict=True)}

    def _evidence(self, merged: dict[int, tuple[float, EvidenceSource]], k: int) -> list[Evidence]:
        out: list[Evidence] = []
        seen_text: set[str] = set()
        for rid, (score, src) in sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[0])):
            rec = self.kb.index.get(rid)
            if rec["text"] in seen_text:
                continue
            seen_text.add(rec["text"])
            triple = (
                self.kb.graph.fact(rec["subject"], rec["relation"], rec["object"])
                or Triple(rec["subject"], rec["relation"], rec["object"])
                if rec.get("kind") == "fact"
                else None
            )
            out.append(
                Evidence(
                    rec["text"],
                    score,
                    src,
                    rec.get("kind", "fact"),
                    triple,
                    rid,
                    rec["key"],
                    self.kb.provenance(triple) if triple is not None else None,
                )
            )
            if len(out) == k:
                break
        return out
