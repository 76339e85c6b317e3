"""Evaluation: score answers against the graph, rates with bootstrap intervals, reports."""

from grounded.evaluation.metrics import Rate, bootstrap_rate, intervals_overlap, outcome_rates
from grounded.evaluation.scoring import (
    OUTCOMES,
    Outcome,
    Scored,
    answer_items,
    is_abstention,
    score_answer,
)

__all__ = [
    "OUTCOMES",
    "Outcome",
    "Rate",
    "Scored",
    "answer_items",
    "bootstrap_rate",
    "intervals_overlap",
    "is_abstention",
    "outcome_rates",
    "score_answer",
]
