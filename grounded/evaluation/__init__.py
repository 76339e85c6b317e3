"""Evaluation: questions from the entity groups, answers scored against the graph, rates with
bootstrap intervals, and the grounded-versus-ungrounded report (``grounded evaluate``)."""

from grounded.evaluation.metrics import Rate, bootstrap_rate, intervals_overlap, outcome_rates
from grounded.evaluation.questions import EvalQuestion, build_questions
from grounded.evaluation.report import (
    ablation_findings,
    check_targets,
    render_markdown,
    render_summary,
    summarize,
    write_report,
)
from grounded.evaluation.runner import EvalResult, EvaluateConfig, evaluate

__all__ = [
    "EvalQuestion",
    "EvalResult",
    "EvaluateConfig",
    "Rate",
    "ablation_findings",
    "bootstrap_rate",
    "build_questions",
    "check_targets",
    "evaluate",
    "intervals_overlap",
    "outcome_rates",
    "render_markdown",
    "render_summary",
    "summarize",
    "write_report",
]
