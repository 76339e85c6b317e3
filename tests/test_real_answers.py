"""The scorer agrees with a person reading real answers (tests/data/README.md).

``real_answers.jsonl``: 270 answers of SmolLM2-135M-Instruct (zero-shot and with retrieved
facts) to the evaluator's questions on the countries preset, labelled by reading them before
the scorer ran on them. ``hand_answers.jsonl``: hand-written edge cases of a books KB built
here. The scorer reads what the evaluator reads: ``parse_generation`` of the generation,
with no subject for an out-of-KB question.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from grounded.answers import UNANSWERED, parse_generation, score_answer
from kg import KnowledgeGraph, Relation, Schema, Triple

DATA = Path(__file__).parent / "data"
LABELS = ("correct", "hallucination", "abstention", "unreadable")
OUTCOME_OF_LABEL = {
    "correct": "correct",
    "abstention": "abstain",
    "hallucination": "hallucination",
    "unreadable": "hallucination",  # states nothing about the pair: no abstention, not correct
}
MIN_AGREEMENT = 0.98

BOOKS = Schema(
    [
        Relation(
            "author",
            "{subject} was written by {object}.",
            functional=False,
            questions=["Who wrote {subject}?", "Who is the author of {subject}?"],
        ),
        Relation(
            "year",
            "{subject} was first published in {object}.",
            questions=["When was {subject} first published?"],
        ),
        Relation(
            "language",
            "The original language of {subject} is {object}.",
            questions=["What is the original language of {subject}?"],
        ),
    ]
)
BOOK_FACTS = [
    ("The Glass Orchard", "author", "Mira Tal"),
    ("The Glass Orchard", "year", "1987"),
    ("The Glass Orchard", "language", "Hebrew"),
    ("Salt Roads", "author", "Ana Ruiz"),
    ("Salt Roads", "author", "Tomas Berg"),
    ("Salt Roads", "year", "2004"),
    ("Salt Roads", "language", "Spanish"),
    ("Night Ferry", "author", "Jon Vale"),
    ("Night Ferry", "year", "1999"),
    ("Night Ferry", "language", "English"),
]


def _rows(name: str) -> list[dict]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def countries() -> KnowledgeGraph:
    from kg.presets import get_preset

    src = get_preset("countries")
    return KnowledgeGraph(src.triples, src.schema, src.aliases)


@pytest.fixture(scope="module")
def books() -> KnowledgeGraph:
    return KnowledgeGraph([Triple(*f) for f in BOOK_FACTS], BOOKS)


def _score(graph: KnowledgeGraph, row: dict) -> tuple[str, str]:
    """(outcome, the label the scorer's reading stands for) of a row, as the evaluator reads
    it: the parsed generation, no subject for an out-of-KB question."""
    subject = None if row["group"] == "out_of_kb" else row["subject"]
    scored = score_answer(graph, subject, row["relation"], parse_generation(row["answer"]))
    label = {"correct": "correct", "abstain": "abstention"}.get(scored.outcome, "hallucination")
    if scored.read_as in UNANSWERED:
        label = "unreadable"
    return scored.outcome, label


def _agreement(graph: KnowledgeGraph, rows: list[dict]) -> tuple[float, list[str]]:
    misses = []
    for row in rows:
        outcome, _ = _score(graph, row)
        if outcome != OUTCOME_OF_LABEL[row["label"]]:
            misses.append(f"{row['id']} [{row['label']} → {outcome}] {row['answer']!r}")
    return 1 - len(misses) / len(rows), misses


def test_the_labelled_files_are_what_the_readme_says():
    real, hand = _rows("real_answers.jsonl"), _rows("hand_answers.jsonl")
    assert len(real) >= 200 and len({r["id"] for r in real + hand}) == len(real) + len(hand)
    assert {r["label"] for r in real + hand} == set(LABELS)
    assert {r["source"] for r in real} == {"base", "rag"}
    assert len({r["relation"] for r in real}) == 8  # every relation of the countries schema
    assert Counter(r["group"] for r in real)["out_of_kb"] >= 60


def test_scorer_agrees_with_the_labels_of_real_answers(countries):
    # 270 answers the scorer was developed on and 120 labelled after it was written (each
    # file's figure is in the report: python tests/test_real_answers.py)
    rows = _rows("real_answers.jsonl") + _rows("real_answers_heldout.jsonl")
    rate, misses = _agreement(countries, rows)
    assert rate >= MIN_AGREEMENT, f"agreement {rate:.3f}; disagreements:\n" + "\n".join(misses)
    # the costly mistake never happens: a wrong or unreadable answer scored correct
    credited = [m for m in misses if "→ correct]" in m]
    assert not credited, "\n".join(credited)


def test_scorer_agrees_with_the_labels_of_hand_written_answers(books):
    rate, misses = _agreement(books, _rows("hand_answers.jsonl"))
    assert rate >= MIN_AGREEMENT, f"agreement {rate:.3f}; disagreements:\n" + "\n".join(misses)


def test_agreement_counts_by_hand(countries):
    # the agreement of three rows checked by hand: one right, one wrong outcome
    rows = [
        {"id": "a", "group": "seen", "subject": "Mongolia", "relation": "capital",
         "answer": "The capital of Mongolia is Ulaanbaatar.", "label": "correct"},
        {"id": "b", "group": "seen", "subject": "Mongolia", "relation": "capital",
         "answer": "The capital of China is Beijing.", "label": "unreadable"},
        {"id": "c", "group": "seen", "subject": "Mongolia", "relation": "capital",
         "answer": "Beijing.", "label": "correct"},
    ]  # fmt: skip
    rate, misses = _agreement(countries, rows)
    assert rate == pytest.approx(2 / 3) and len(misses) == 1 and misses[0].startswith("c ")
    assert _score(countries, rows[1]) == ("hallucination", "unreadable")


if __name__ == "__main__":  # the figures of the report: python tests/test_real_answers.py
    from kg.presets import get_preset

    src = get_preset("countries")
    world = KnowledgeGraph(src.triples, src.schema, src.aliases)
    graphs = {
        "real_answers.jsonl": world,
        "real_answers_heldout.jsonl": world,
        "hand_answers.jsonl": KnowledgeGraph([Triple(*f) for f in BOOK_FACTS], BOOKS),
    }
    for name, graph in graphs.items():
        rows = _rows(name)
        rate, misses = _agreement(graph, rows)
        four = sum(_score(graph, r)[1] == r["label"] for r in rows)
        print(
            f"{name}: outcome agreement {rate:.4f} ({len(rows) - len(misses)}/{len(rows)}); "
            f"four-label agreement {four}/{len(rows)}"
        )
        print("\n".join("  " + m for m in misses))
