"""Hard not-enough-info pairs (grounded.factcheck.hard_nei): on-topic evidence that does not
decide the claim, from any KB and any documents; their share of the training mixture."""

from __future__ import annotations

import random

import numpy as np
import pytest

from grounded.factcheck.data import ClaimDataConfig, split_subjects
from grounded.factcheck.decision import decide
from grounded.factcheck.hard_nei import (
    HARD_NEI,
    hard_nei_pairs,
    kb_other_relation,
    neighbour,
    same_document,
)
from grounded.factcheck.mixture import build_pair_data, hard_rows
from grounded.factcheck.transforms import Corpus
from grounded.types import LABELS
from kg import KnowledgeGraph, Relation, Schema, Triple

SCHEMA = Schema(
    [
        Relation("capital", template="The capital of {subject} is {object}.", functional=True),
        Relation("currency", template="{subject} uses the {object}."),
        Relation("borders", template="{subject} borders {object}."),
    ]
)
GRAPH = KnowledgeGraph(
    [
        Triple("Mongolia", "capital", "Ulaanbaatar"),
        Triple("Mongolia", "currency", "tögrög"),
        Triple("Mongolia", "borders", "China"),
        Triple("Chad", "capital", "N'Djamena"),  # Chad has one relation: never a claim here
    ],
    SCHEMA,
)

DOCS = [
    "Ada Lovelace wrote notes on the analytical engine. Ada Lovelace was born in London. "
    "The weather was mild.",
    "Charles Babbage designed the analytical engine in London.",
]


def test_kb_other_relation_by_hand():
    pairs = kb_other_relation(None, GRAPH, random.Random(0), 10)
    by_claim = {t.claim: t.evidence for t in pairs}
    # every Mongolia fact is a claim; Chad (one relation) gives none
    assert len(pairs) == 3
    assert all(t.label == "not_enough_info" and t.kind == "kb_other_relation" for t in pairs)
    capital = [c for c in by_claim if c.startswith("The capital of Mongolia is")]
    assert capital and capital[0] in (
        "The capital of Mongolia is Ulaanbaatar.",
        "The capital of Mongolia is N'Djamena.",  # the only other capital
    )
    # the evidence is the subject's other facts, never the claim's relation
    assert sorted(by_claim[capital[0]].split(". ")) == sorted(
        ["Mongolia uses the tögrög", "Mongolia borders China."]
    ) or sorted(by_claim[capital[0]].split(". ")) == sorted(
        ["Mongolia borders China", "Mongolia uses the tögrög."]
    )
    assert "capital" not in by_claim[capital[0]]
    assert "uses the" not in by_claim["Mongolia uses the tögrög."]
    assert "borders" not in by_claim["Mongolia borders China."]
    assert kb_other_relation(None, None, random.Random(0), 10) == []


def test_same_document_and_neighbour_by_hand():
    corpus = Corpus.from_texts(DOCS)
    same = same_document(corpus, None, random.Random(0), 10)
    pairs = {(t.claim, t.evidence) for t in same}
    # the two Ada sentences share "ada", "lovelace": each is the other's silent evidence;
    # "The weather was mild." shares no content word with either, so it is never chosen
    assert pairs == {
        (
            "Ada Lovelace wrote notes on the analytical engine.",
            "Ada Lovelace was born in London.",
        ),
        (
            "Ada Lovelace was born in London.",
            "Ada Lovelace wrote notes on the analytical engine.",
        ),
    }
    near = {(t.claim, t.evidence) for t in neighbour(corpus, None, random.Random(0), 10)}
    # Babbage's sentence shares "analytical", "engine" (and "london") with both Ada sentences
    # of the other passage; the first with the most shared words wins
    assert (
        "Charles Babbage designed the analytical engine in London.",
        "Ada Lovelace wrote notes on the analytical engine.",
    ) in near
    assert all(c != e for c, e in near)


def test_near_duplicates_are_not_silent_evidence():
    corpus = Corpus.from_texts(["Ada Lovelace wrote notes. Ada Lovelace wrote notes too."])
    assert same_document(corpus, None, random.Random(0), 10) == []


def test_hard_nei_pairs_kinds_and_errors():
    corpus = Corpus.from_texts(DOCS)
    made = hard_nei_pairs(corpus, GRAPH, per_kind=1)
    assert sorted({t.kind for t in made}) == sorted(HARD_NEI)
    assert len(made) == 3
    with pytest.raises(ValueError, match="`hard_nei` names \\['nope'\\]"):
        hard_nei_pairs(corpus, GRAPH, kinds=["nope"])
    with pytest.raises(ValueError, match="`hard_nei_share` must be in"):
        ClaimDataConfig(hard_nei_share=1.5)
    with pytest.raises(ValueError, match="`hard_nei` names"):
        ClaimDataConfig(hard_nei=["nope"])


@pytest.mark.parametrize(("share", "others", "expected"), [(0.25, 6, 2), (0.5, 1, 1), (0.0, 6, 0)])
def test_hard_rows_share(share, others, expected):
    corpus = Corpus.from_texts(DOCS)
    nei = LABELS.index("not_enough_info")
    rows = [{"label": nei, "source": "kb"}] * others
    # another data set's neutral pairs do not count: the hard pairs are sized on the KB's
    # and the documents' own not-enough-info pairs
    labelled = [{"label": nei, "source": "pairs"}] * 30
    got = hard_rows(corpus, GRAPH, rows + labelled, ClaimDataConfig(hard_nei_share=share))
    # share / (1 - share) × others: 0.25 / 0.75 × 6 = 2; 0.5 / 0.5 × 1 = 1
    assert len(got) == expected
    assert all(r["source"] == "hard_nei" and r["label"] == 2 for r in got)
    # with no other not-enough-info pair, every hard pair is kept
    assert len(hard_rows(corpus, GRAPH, [], ClaimDataConfig(hard_nei_share=share))) == (
        0 if share == 0 else len(hard_nei_pairs(corpus, GRAPH, per_kind=500))
    )


def test_mixture_holds_hard_pairs_about_training_subjects_only(tiny_kb):
    config = ClaimDataConfig(
        max_train_claims=40, max_test_claims=10, test_fraction=0.3, transforms=[], dev_fraction=0
    )
    data = build_pair_data(tiny_kb, config, show_progress=False)
    kinds = data.stats()["train"]["kinds"]
    assert kinds.get("kb_other_relation", 0) > 0
    subjects = sorted({t.subject for t in tiny_kb.graph.triples()})
    _, held = split_subjects(subjects, config.test_fraction, config.claims_seed)
    hard = [r for r in data.train if r["source"] == "hard_nei"]
    assert all(r["label"] == LABELS.index("not_enough_info") for r in hard)
    for r in hard:
        if r["kind"] == "kb_other_relation":
            assert not any(r["claim"].startswith(f"{s} ") or f" {s}" in r["claim"] for s in held)
    off = build_pair_data(
        tiny_kb, ClaimDataConfig(**{**config.__dict__, "hard_nei": []}), show_progress=False
    )
    assert "hard_nei" not in off.stats()["train"]["sources"]


@pytest.mark.parametrize(
    "probs",
    [
        # an on-topic, silent sentence: the checker leans to refuted, but not clearly
        [0.10, 0.50, 0.40],
        [0.05, 0.45, 0.50],
        [0.30, 0.40, 0.30],
    ],
)
def test_refuted_needs_a_clear_contradiction(probs):
    (d,) = decide(np.array(probs))
    assert d.label == "not_enough_info"


def test_a_clear_contradiction_is_refuted():
    (d,) = decide(np.array([0.05, 0.80, 0.15]))
    assert d.label == "refuted"
