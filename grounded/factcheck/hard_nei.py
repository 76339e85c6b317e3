"""Hard not-enough-info pairs: evidence on the claim's subject or topic that does not decide it.

A checker trained only on easy not-enough-info pairs (evidence about something else) learns
"on topic and not identical → refuted". These pairs teach it that on-topic evidence can be
silent. They are built from any knowledge base and any documents, each kind registered in
:data:`HARD_NEI` by name:

- ``same_document``: a sentence of a passage, read against another single sentence of the
  same passage (the one sharing the most words with it, near-duplicates skipped);
- ``neighbour``: a sentence, read against its nearest sentence of another passage by shared
  content words (a lexical retriever: on topic, but written about something else);
- ``kb_other_relation``: a knowledge-base claim ``(subject, relation, object)`` (the true
  object, or another object of the relation half the time), read against the graph's facts
  about the same subject with other relations.

Every pair is labelled ``not_enough_info`` by construction. The share they take of the
training mixture's not-enough-info pairs is
:attr:`~grounded.factcheck.data.ClaimDataConfig.hard_nei_share`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from grounded.factcheck.transforms import Corpus, Sentence, Transformed

if TYPE_CHECKING:
    from kg import KnowledgeGraph

__all__ = ["HARD_NEI", "hard_nei_pairs", "kb_other_relation", "neighbour", "same_document"]

_WORD = re.compile(r"[^\W\d_][\w'-]+")
_STOP = frozenset(
    "the a an and or of in on at to for by with from as is are was were be been has have had "
    "it its this that these those which who whom whose his her their they he she also not "
    "into than then there after before during about over under more most other such".split()
)
_MAX_OVERLAP = 0.6  # word-set Jaccard above which two sentences say the same thing
_MAX_FACTS = 4


def content_words(text: str) -> set[str]:
    """Lower-cased words of three letters or more that are not function words.

    Example:
        >>> sorted(content_words("The capital of Mongolia is Ulaanbaatar."))
        ['capital', 'mongolia', 'ulaanbaatar']
    """
    return {w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


HardNei = Callable[[Corpus | None, "KnowledgeGraph | None", random.Random, int], list[Transformed]]
HARD_NEI: dict[str, HardNei] = {}
"""Every kind of hard not-enough-info pair, by name: ``fn(corpus, graph, rng, limit)``."""


def register_hard_nei(name: str) -> Callable[[HardNei], HardNei]:
    """Decorator adding a builder of hard not-enough-info pairs to :data:`HARD_NEI`."""

    def deco(fn: HardNei) -> HardNei:
        HARD_NEI[name] = fn
        return fn

    return deco


def _claims(corpus: Corpus, rng: random.Random, limit: int) -> list[Sentence]:
    """The corpus's claim sentences in a seeded order (the callers stop at ``limit`` pairs;
    at most 20 × ``limit`` sentences are tried)."""
    sentences = corpus.sentences()
    return rng.sample(sentences, min(20 * limit, len(sentences)))


def _silent(claim: str, words: set[str], candidate: str, other: set[str]) -> bool:
    """``candidate`` is on topic (a shared content word) and does not repeat the claim."""
    return (
        bool(words & other)
        and _overlap(words, other) <= _MAX_OVERLAP
        and claim.lower() not in candidate.lower()
        and candidate.lower() not in claim.lower()
    )


@register_hard_nei("same_document")
def same_document(
    corpus: Corpus | None, graph: KnowledgeGraph | None, rng: random.Random, limit: int
) -> list[Transformed]:
    """Not enough info: a sentence against the most similar other sentence of its passage.

    Example:
        >>> c = Corpus.from_texts(["Ada Lovelace wrote notes on the engine. Ada Lovelace was "
        ...                        "born in London in 1815."])
        >>> [t.evidence for t in same_document(c, None, random.Random(0), 2)]
        ['Ada Lovelace wrote notes on the engine.', 'Ada Lovelace was born in London in 1815.']
    """
    if corpus is None:
        return []
    out = []
    for s in _claims(corpus, rng, limit):
        words = content_words(s.text)
        best, best_score = None, 0
        for j, other in enumerate(corpus.passages[s.passage]):
            if j == s.index:
                continue
            ow = content_words(other)
            if _silent(s.text, words, other, ow) and len(words & ow) > best_score:
                best, best_score = other, len(words & ow)
        if best is not None:
            out.append(Transformed(s.text, best, "not_enough_info", "same_document", s.text))
            if len(out) == limit:
                break
    return out


@register_hard_nei("neighbour")
def neighbour(
    corpus: Corpus | None, graph: KnowledgeGraph | None, rng: random.Random, limit: int
) -> list[Transformed]:
    """Not enough info: a sentence against its nearest sentence of another passage (the most
    content words shared, at least two).

    Example:
        >>> c = Corpus.from_texts(["Ada Lovelace wrote notes on the Babbage engine.",
        ...                        "The engine was designed by Charles Babbage in London."])
        >>> sorted(t.evidence for t in neighbour(c, None, random.Random(0), 2))[0]
        'Ada Lovelace wrote notes on the Babbage engine.'

    """
    if corpus is None:
        return []
    index: dict[str, list[tuple[int, int]]] = {}
    for p, sents in enumerate(corpus.passages):
        for i, text in enumerate(sents):
            for w in content_words(text):
                index.setdefault(w, []).append((p, i))
    out = []
    for s in _claims(corpus, rng, limit):
        words = content_words(s.text)
        hits: dict[tuple[int, int], int] = {}
        for w in words:
            postings = index.get(w, [])
            if len(postings) > 200:  # too common to say what a sentence is about
                continue
            for loc in postings:
                if loc[0] != s.passage:
                    hits[loc] = hits.get(loc, 0) + 1
        for (p, i), score in sorted(hits.items(), key=lambda kv: (-kv[1], kv[0])):
            if score < 2:
                break
            text = corpus.passages[p][i]
            if _silent(s.text, words, text, content_words(text)):
                out.append(Transformed(s.text, text, "not_enough_info", "neighbour", s.text))
                break
        if len(out) == limit:
            break
    return out


@register_hard_nei("kb_other_relation")
def kb_other_relation(
    corpus: Corpus | None, graph: KnowledgeGraph | None, rng: random.Random, limit: int
) -> list[Transformed]:
    """Not enough info: a claim about a subject's relation, against the subject's facts of
    other relations (the true object, or another object of the relation, half the time each).

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema, Triple
        >>> schema = Schema([Relation("capital", template="The capital of {subject} is {object}."),
        ...                  Relation("currency", template="{subject} uses the {object}.")])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar"),
        ...                     Triple("Mongolia", "currency", "tögrög")], schema)
        >>> t = kb_other_relation(None, g, random.Random(1), 1)[0]
        >>> t.claim.startswith("The capital of Mongolia is"), t.evidence
        (True, 'Mongolia uses the tögrög.')
    """
    if graph is None:
        return []
    from kg.types import Triple

    triples = sorted(graph.triples(), key=lambda t: (t.subject, t.relation, t.object))
    pools: dict[str, list[str]] = {}
    for t in triples:
        pools.setdefault(t.relation, []).append(t.object)
    candidates = [
        t for t in triples if any(f.relation != t.relation for f in graph.facts(t.subject))
    ]
    out = []
    for t in rng.sample(candidates, min(limit, len(candidates))):
        facts = [f for f in graph.facts(t.subject) if f.relation != t.relation]
        rng.shuffle(facts)
        obj = t.object
        others = sorted(set(pools[t.relation]) - set(graph.objects(t.subject, t.relation)))
        if others and rng.random() < 0.5:
            obj = rng.choice(others)
        claim = graph.verbalize(Triple(t.subject, t.relation, obj))
        evidence = " ".join(graph.verbalize(f) for f in facts[:_MAX_FACTS])
        out.append(Transformed(claim, evidence, "not_enough_info", "kb_other_relation", claim))
    return out


def hard_nei_pairs(
    corpus: Corpus | None,
    graph: KnowledgeGraph | None = None,
    *,
    kinds: Sequence[str] | None = None,
    per_kind: int = 500,
    seed: int = 0,
) -> list[Transformed]:
    """Hard not-enough-info pairs of each kind in ``kinds`` (default: all of :data:`HARD_NEI`),
    at most ``per_kind`` pairs each, seeded.

    Args:
        corpus: passages split into sentences (None: the document kinds give nothing).
        graph: a knowledge graph (None: ``kb_other_relation`` gives nothing).
        kinds: names from :data:`HARD_NEI`.
        per_kind: pairs of each kind at most.
        seed: seed of the sampling.

    Raises:
        ValueError: an unknown kind (the registered ones are listed), or ``per_kind`` < 0.
    """
    names = list(kinds) if kinds is not None else list(HARD_NEI)
    unknown = [n for n in names if n not in HARD_NEI]
    if unknown:
        raise ValueError(f"`hard_nei` names {unknown}; registered: {sorted(HARD_NEI)}")
    if per_kind < 0:
        raise ValueError(f"`per_kind` must be >= 0, got {per_kind}")
    out: list[Transformed] = []
    for name in names:
        out += HARD_NEI[name](corpus, graph, random.Random(f"hard_nei:{name}:{seed}"), per_kind)
    return out
