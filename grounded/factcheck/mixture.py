"""The checker's training mixture: the knowledge base's claims (:mod:`grounded.factcheck.data`),
FactCC-style transformations of real sentences (:mod:`grounded.factcheck.transforms`) and
labelled pairs (:mod:`grounded.factcheck.pairs`), balanced per label, with a dev split held
out for calibration (:func:`build_pair_data`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grounded.factcheck.data import (
    ClaimData,
    ClaimDataConfig,
    _counts,
    build_claim_data,
    split_subjects,
)
from grounded.types import LABELS

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase

# -- training pairs from every source ------------------------------------------------------------
PAIR_COLUMNS = ("claim", "evidence", "label", "kind", "source")


@dataclass
class PairData:
    """What :func:`build_pair_data` returns.

    Attributes:
        train: training pairs (balanced when the config says so). Columns: ``claim``,
            ``evidence``, ``label`` (ClassLabel over :data:`LABELS`), ``kind`` (how the pair
            was made: a KB claim kind, a transformation name, ``pairs``), ``source`` (``kb``,
            ``transform``, ``pairs``).
        dev: pairs held out of training, per label, for calibration (may be empty).
        claims: the knowledge base's claim data (its ``test`` split: held-out subjects), or
            None without a knowledge base.
    """

    train: Any
    dev: Any
    claims: ClaimData | None

    def stats(self) -> dict[str, Any]:
        """Pairs per split, label, source and kind."""
        out: dict[str, Any] = {}
        for name in ("train", "dev"):
            split = getattr(self, name)
            labels = [LABELS[i] for i in split["label"]]
            out[name] = {
                "pairs": len(split),
                "labels": {lab: labels.count(lab) for lab in LABELS},
                "sources": _counts(split["source"]),
                "kinds": _counts(split["kind"]),
            }
        if self.claims is not None:
            out["kb_claims"] = self.claims.stats()
        return out


def build_pair_data(
    kb: KnowledgeBase | None = None,
    config: ClaimDataConfig | None = None,
    *,
    documents: Sequence[str] = (),
    pairs: Sequence[dict[str, Any]] = (),
    show_progress: bool = True,
) -> PairData:
    """Training and dev pairs from a knowledge base, documents and labelled pairs.

    - **KB claims** (:func:`build_claim_data`), when ``kb`` is given: its ``train`` split;
      the ``test`` split (held-out subjects) is kept for scoring, never trained on;
    - **transformations** (:mod:`~grounded.factcheck.transforms`) of the sentences of the
      knowledge base's passages (those about held-out subjects left out) and of
      ``documents``, with the graph's typed entities for swaps;
    - **labelled pairs** (``pairs``: dicts with ``claim``, ``evidence``, ``label``).

    Then ``dev_fraction`` of each label is held out as the dev split, and the rest is
    resampled to the same count per label when ``balance`` is set (seeded).

    Args:
        kb: a knowledge base, or None (documents and pairs only).
        config: settings; defaults if None.
        documents: passages of text to transform (see
            :func:`grounded.factcheck.transforms.read_texts`).
        pairs: labelled pairs (label names as :func:`~grounded.factcheck.checker.
            canonical_label` accepts, or label ids).
        show_progress: progress bars while retrieving KB evidence.

    Raises:
        ValueError: nothing to build from, or a pair's label is not a verdict.

    Example:
        >>> data = build_pair_data(None, documents=["In 2006, Ada won the prize."] * 3,
        ...                        show_progress=False)  # doctest: +SKIP
    """
    from grounded.factcheck.labels import canonical_label
    from grounded.factcheck.transforms import Corpus, rows, transform_pairs

    config = config or ClaimDataConfig()
    if kb is None and not documents and not pairs:
        raise ValueError(
            "nothing to train on: give a knowledge base, `documents` or labelled `pairs`"
        )
    out_rows: list[dict[str, Any]] = []
    claims = None
    texts: list[str] = list(documents)
    entities: list[tuple[str, ...]] = [()] * len(texts)
    graph = None
    if kb is not None:
        claims = build_claim_data(kb, config, show_progress=show_progress)
        for r in claims.dataset["train"]:
            out_rows.append(
                {
                    "claim": r["claim"],
                    "evidence": r["evidence"],
                    "label": int(r["label"]),
                    "kind": r["kind"],
                    "source": "kb",
                }
            )
        subjects = sorted({t.subject for t in kb.graph.triples()})
        _, held_out = split_subjects(subjects, config.test_fraction, config.claims_seed)
        for p in kb.passages:
            if not held_out.intersection(p.entities):
                texts.append(p.text)
                entities.append(tuple(p.entities))
        graph = kb.graph
    corpus = Corpus.from_texts(texts, entities, graph) if texts else None
    if corpus is not None and config.transforms:
        made = transform_pairs(
            corpus,
            transforms=config.transforms,
            max_sentences=config.max_document_sentences,
            per_sentence=config.transforms_per_sentence,
            seed=config.claims_seed,
        )
        for r in rows(made):
            out_rows.append({**r, "label": LABELS.index(r["label"]), "source": "transform"})
    for i, p in enumerate(pairs):
        label = p.get("label")
        lab = label if isinstance(label, int) else canonical_label(str(label))
        if lab is None or (isinstance(lab, int) and not 0 <= lab < len(LABELS)):
            raise ValueError(f"`pairs[{i}]` has label {label!r}, which names no verdict")
        out_rows.append(
            {
                "claim": p["claim"],
                "evidence": p["evidence"],
                "label": lab if isinstance(lab, int) else LABELS.index(lab),
                "kind": str(p.get("kind", "pairs")),
                "source": str(p.get("source", "pairs")),
            }
        )
    out_rows += hard_rows(corpus, _training_graph(kb, config), out_rows, config)
    train_rows, dev_rows = _dev_split(out_rows, config.dev_fraction, config.claims_seed)
    if config.balance:
        train_rows = balance_labels(train_rows, config.claims_seed)
    return PairData(_pair_dataset(train_rows), _pair_dataset(dev_rows), claims)


def _training_graph(kb: KnowledgeBase | None, config: ClaimDataConfig) -> Any:
    """The graph without the held-out subjects' facts (they are scored, never trained on)."""
    if kb is None:
        return None
    from kg import KnowledgeGraph

    subjects = sorted({t.subject for t in kb.graph.triples()})
    _, held_out = split_subjects(subjects, config.test_fraction, config.claims_seed)
    kept = [t for t in kb.graph.triples() if t.subject not in held_out]
    return KnowledgeGraph(kept, kb.graph.schema) if kept else None


def hard_rows(
    corpus: Any, graph: Any, rows: Sequence[dict[str, Any]], config: ClaimDataConfig
) -> list[dict[str, Any]]:
    """Hard not-enough-info rows (:mod:`grounded.factcheck.hard_nei`), as many as make
    ``config.hard_nei_share`` of the not-enough-info rows built from the knowledge base and
    the documents (all of them when there is no such row), sampled evenly over the kinds
    (seeded).

    Labelled ``pairs`` (another data set's neutral pairs) do not count: the hard pairs are
    the KB's and the documents' own, and sized on the labelled sets they outnumbered the
    KB's claims (measured: 2,600 hard pairs against 800 KB claims beside SNLI, and the
    checker then read the KB's refuted paraphrases as not enough info).

    Example:
        >>> from grounded.factcheck.transforms import Corpus
        >>> c = Corpus.from_texts(["Ada Lovelace wrote notes on the engine. Ada Lovelace "
        ...                        "was born in London."])
        >>> other = [{"label": 2, "source": "kb"}] * 3 + [{"label": 2, "source": "pairs"}] * 9
        >>> [r["kind"] for r in hard_rows(c, None, other, ClaimDataConfig(hard_nei_share=0.25))]
        ['same_document']
    """
    from grounded.factcheck.hard_nei import hard_nei_pairs

    if not config.hard_nei or config.hard_nei_share == 0 or (corpus is None and graph is None):
        return []
    nei = LABELS.index("not_enough_info")
    others = sum(r["label"] == nei and r.get("source") in ("kb", "transform") for r in rows)
    share = config.hard_nei_share
    want = None if share == 1 or not others else round(share / (1 - share) * others)
    per_kind = config.max_document_sentences if want is None else want
    made = hard_nei_pairs(
        corpus, graph, kinds=config.hard_nei, per_kind=per_kind, seed=config.claims_seed
    )
    if want is not None and len(made) > want:
        rng = random.Random(f"hard_nei:{config.claims_seed}")
        by_kind: dict[str, list[Any]] = {}
        for t in made:
            by_kind.setdefault(t.kind, []).append(t)
        picked: list[Any] = []
        queues = [rng.sample(v, len(v)) for _, v in sorted(by_kind.items())]
        while len(picked) < want:
            for q in queues:
                if q and len(picked) < want:
                    picked.append(q.pop())
        made = picked
    return [
        {
            "claim": t.claim,
            "evidence": t.evidence,
            "label": nei,
            "kind": t.kind,
            "source": "hard_nei",
        }
        for t in made
    ]


def _dev_split(
    rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``fraction`` of each label's rows (seeded)."""
    rng = random.Random(f"dev:{seed}")
    train, dev = [], []
    for lab in range(len(LABELS)):
        group = [r for r in rows if r["label"] == lab]
        rng.shuffle(group)
        n = round(fraction * len(group)) if len(group) >= 5 else 0
        dev += group[:n]
        train += group[n:]
    rng.shuffle(train)
    return train, dev


def balance_labels(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """``rows`` resampled to the same count per label: the mean count of the labels present
    (larger labels sampled without replacement, smaller ones repeated, then topped up at
    random). Seeded; the output is shuffled.

    Example:
        >>> rows = [{"label": 0}] * 6 + [{"label": 1}] * 2 + [{"label": 2}] * 1
        >>> sorted(_counts([str(r["label"]) for r in balance_labels(rows, 0)]).items())
        [('0', 3), ('1', 3), ('2', 3)]
    """
    rng = random.Random(f"balance:{seed}")
    groups = [[r for r in rows if r["label"] == lab] for lab in range(len(LABELS))]
    groups = [g for g in groups if g]
    if not groups:
        return []
    target = round(sum(map(len, groups)) / len(groups))
    out: list[dict[str, Any]] = []
    for g in groups:
        if len(g) >= target:
            out += rng.sample(g, target)
        else:
            out += g * (target // len(g)) + rng.sample(g, target % len(g))
    rng.shuffle(out)
    return out


def _pair_dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(
        {
            "claim": Value("string"),
            "evidence": Value("string"),
            "label": ClassLabel(names=list(LABELS)),
            "kind": Value("string"),
            "source": Value("string"),
        }
    )
    return Dataset.from_dict({k: [r[k] for r in rows] for k in PAIR_COLUMNS}, features=features)
