"""A knowledge base with some facts held out: what "the KB does not know this" looks like.

Not-enough-info claims need evidence that lacks their fact, exactly as retrieval would
return it from a knowledge base that never had it. :func:`hide_facts` builds that knowledge
base in memory: the graph without the facts of the held-out (subject, relation) pairs, the
passages without the sentences that state them, and an exact index over what is left
(stored vectors are reused; only edited passages are re-encoded). Training data, the
neural checker's test and the combined verdict's test all read this same view, so a label
means the same thing to each of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from grounded.kb import KnowledgeBase, passage_key
from kg import EntityId, KnowledgeGraph, Passage, normalize
from kg.text import split_sentences


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def scrub_passage(passage: Passage, objects: Iterable[str]) -> Passage | None:
    """``passage`` without the sentences that mention any of ``objects``; None if none is left.

    Matching is on normalized words ("Kabul" in "Its capital is Kabul.").

    Example:
        >>> p = Passage("af", "Afghanistan is in Asia. Its capital is Kabul.", ("Afghanistan",))
        >>> scrub_passage(p, ["Kabul"]).text
        'Afghanistan is in Asia.'
    """
    keys = [normalize(o) for o in objects]
    sentences = [passage.text[a:b] for a, b in split_sentences(passage.text)]
    kept = [s for s in sentences if not any(_contains(normalize(s), k) for k in keys)]
    if len(kept) == len(sentences):
        return passage
    if not kept:
        return None
    return Passage(passage.id, " ".join(kept), passage.entities, passage.source)


def hide_facts(kb: KnowledgeBase, pairs: Iterable[tuple[EntityId, str]]) -> KnowledgeBase:
    """An in-memory copy of ``kb`` that knows nothing of the given (subject, relation) pairs.

    Args:
        kb: the knowledge base (left unchanged).
        pairs: (subject, relation) pairs whose every fact is removed.

    Returns:
        A :class:`KnowledgeBase` without a path: the graph minus those facts, passages minus
        the sentences stating them, an exact (flat) index of the remaining records; its
        manifest records how much was held out.
    """
    from index import FactIndex, IndexConfig
    from index.config import new_faiss_index

    hidden = set(pairs)
    keep, gone = [], []
    for t in kb.graph.triples():
        (gone if (t.subject, t.relation) in hidden else keep).append(t)
    graph = KnowledgeGraph(keep, kb.graph.schema, kb.graph.aliases)
    hidden_objects: dict[EntityId, list[str]] = defaultdict(list)
    for t in gone:
        hidden_objects[t.subject].append(t.object)
        hidden_objects[t.subject].extend(kb.graph.aliases.get(t.object, ()))
    passages, edited, removed_keys = [], [], {t.key for t in gone}
    for p in kb.passages:
        objects = [o for e in p.entities for o in hidden_objects.get(e, ())]
        scrubbed = scrub_passage(p, objects) if objects else p
        if scrubbed is not p:
            removed_keys.add(passage_key(p.id))
            if scrubbed is not None:
                edited.append(scrubbed)
        if scrubbed is not None:
            passages.append(scrubbed)
    source = kb.index
    ids = [i for i in source.ids if source.get(i)["key"] not in removed_keys]
    config = IndexConfig(kind="flat").resolve(len(ids))
    faiss_index = new_faiss_index(config, source.dimension)
    if ids:
        faiss_index.add_with_ids(source.vectors(ids), np.asarray(ids, dtype=np.int64))
    index = FactIndex(
        source.encoder,
        faiss_index,
        config,
        records={i: source.get(i) for i in ids},
        next_id=source.next_id,
    )
    index.add(
        [
            {
                "key": passage_key(p.id),
                "kind": "passage",
                "text": p.text,
                "passage_id": p.id,
                "entities": list(p.entities),
            }
            for p in edited
        ]
    )
    # The files' checksums name the full KB; this one lives in memory only, so its
    # `checksum` is computed from its content.
    manifest = {k: v for k, v in kb.manifest.items() if k not in ("checksums", "checksum")}
    manifest["derived_from"] = kb.checksum
    manifest["held_out"] = {
        "pairs": len(hidden),
        "facts": len(gone),
        "passages_edited": len(edited),
        "passages_removed": sum(1 for p in kb.passages) - len(passages),
    }
    return KnowledgeBase(graph, index, passages=passages, path=None, manifest=manifest)
