"""Evaluation: questions from the entity groups, answers scored against the graph, rates with
bootstrap intervals, and the grounded-versus-ungrounded report (``grounded evaluate``)."""

from grounded.evaluation.metrics import Rate, bootstrap_rate, intervals_overlap, outcome_rates
from grounded.evaluation.questions import EvalQuestion, build_questions
from grounded.evaluation.report import (
    ablation_findings,
    render_markdown,
    render_summary,
    summarize,
    write_report,
)
from grounded.evaluation.runner import EvalResult, EvaluateConfig, evaluate
from grounded.evaluation.targets import Target, check_targets, load_targets

__all__ = [
    "EvalQuestion",
    "EvalResult",
    "EvaluateConfig",
    "Rate",
    "Target",
    "ablation_findings",
    "bootstrap_rate",
    "build_questions",
    "check_targets",
    "evaluate",
    "intervals_overlap",
    "load_targets",
    "outcome_rates",
    "render_markdown",
    "render_summary",
    "summarize",
    "write_report",
]
