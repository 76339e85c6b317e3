"""Answer scoring and rates, checked against numbers computed by hand."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from tiny import ALIASES, FACTS, SCHEMA

from grounded.answers import answer_items, is_abstention, score_answer
from grounded.evaluation import bootstrap_rate, intervals_overlap, outcome_rates
from kg import KnowledgeGraph, Triple


@pytest.fixture(scope="module")
def graph():
    return KnowledgeGraph([Triple(*f) for f in FACTS], SCHEMA, ALIASES)


@pytest.mark.parametrize(
    ("subject", "relation", "answer", "outcome"),
    [
        ("Mongolia", "capital", "Ulaanbaatar.", "correct"),
        ("Mongolia", "capital", "ulan bator", "correct"),  # alias, case
        ("Mongolia", "capital", "Erdenet.", "hallucination"),
        ("Mongolia", "capital", "I don't know.", "abstain"),
        ("Mongolia", "capital", "I do not know", "abstain"),
        ("South Africa", "capital", "Cape Town.", "correct"),  # one of several capitals
        ("South Africa", "language", "Zulu and English.", "correct"),  # every item checked
        ("South Africa", "language", "Zulu, Xhosa and English.", "hallucination"),
        ("Mongolia", "borders", "China, Russia.", "correct"),
        ("Atlantis", "capital", "Poseidonia.", "hallucination"),  # out of KB: any answer
        ("Atlantis", "capital", "I don't know.", "abstain"),
        ("Australia", "region", "Oceania.", "hallucination"),  # pair not in the KB
        (None, None, "Paris.", "hallucination"),
        ("Côte d'Ivoire", "capital", "Yamoussoukro", "correct"),
    ],
)
def test_score_answer(graph, subject, relation, answer, outcome):
    assert score_answer(graph, subject, relation, answer).outcome == outcome


def test_score_reports_unmatched_items(graph):
    s = score_answer(graph, "South Africa", "language", "Zulu, Xhosa and English.")
    assert s.matched == ("Zulu", "English") and s.unmatched == ("Xhosa",)


def test_answer_items_and_abstention():
    assert answer_items("Bosnia, Serbia; Croatia / Hungary.") == [
        "Bosnia",
        "Serbia",
        "Croatia",
        "Hungary",
    ]
    assert answer_items("") == []
    assert is_abstention("I DON'T KNOW") and not is_abstention("I know: Paris")


def test_rates_by_hand():
    # 10 answers: 5 correct, 2 abstain, 3 hallucinations.
    outs = ["correct"] * 5 + ["abstain"] * 2 + ["hallucination"] * 3
    r = outcome_rates(outs)
    assert (r["accuracy"].numerator, r["accuracy"].denominator) == (5, 10)
    assert r["hallucination_rate"].value == pytest.approx(0.3)
    assert (r["hallucination_rate_answered"].numerator,) == (3,)
    assert r["hallucination_rate_answered"].denominator == 8
    assert r["hallucination_rate_answered"].value == pytest.approx(3 / 8)
    assert r["abstention_rate"].value == pytest.approx(0.2)
    for rate in r.values():
        assert rate.low <= rate.value <= rate.high


def test_bootstrap_interval_matches_normal_approximation():
    # 300 of 1000: the 95% interval is about 0.3 ± 1.96 * sqrt(0.3 * 0.7 / 1000) = ± 0.0284.
    r = bootstrap_rate([True] * 300 + [False] * 700, n_boot=4000, seed=1)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 1000)
    assert r.low == pytest.approx(0.3 - half, abs=0.006)
    assert r.high == pytest.approx(0.3 + half, abs=0.006)
    assert bootstrap_rate([True] * 300 + [False] * 700, n_boot=4000, seed=1) == r  # seeded


def test_empty_and_degenerate_rates():
    empty = bootstrap_rate([])
    assert (empty.value, empty.denominator) == (None, 0) and "n/a" in str(empty)
    assert bootstrap_rate([True, True]).low == 1.0
    with pytest.raises(ValueError, match="`level` must be in"):
        bootstrap_rate([True], level=1.5)


def test_intervals_overlap():
    a = bootstrap_rate([True] * 5 + [False] * 95, seed=0)
    b = bootstrap_rate([True] * 60 + [False] * 40, seed=0)
    assert not intervals_overlap(a, b)
    assert intervals_overlap(a, a)


def test_docstring_examples_run():
    import grounded.answers as s
    import grounded.evaluation.metrics as m

    for mod in (m, s):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0
