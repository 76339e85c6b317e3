"""`TrainConfig`: every setting of grounded adapter fine-tuning (Python API, YAML and CLI).

A ``TrainConfig`` is composed of the real sub-configs, one per concept:

========== ======================================= =========================================
section    class                                   what it decides
========== ======================================= =========================================
data       :class:`DataConfig`                     entity groups and training examples
injection  :class:`grounded.injection.InjectionConfig`  evidence as text and soft tokens
adapter    :class:`grounded.training.AdapterConfig` the PEFT adapter (peft's names)
constraint :class:`ConstraintConfig`               the knowledge-constraint loss
feedback   :class:`FeedbackConfig`                 the fact-checker feedback rounds
optim      :class:`grounded.optim.OptimConfig`     the optimiser (``TrainingArguments``' names)
retrieval  :class:`grounded.retrieval.RetrievalConfig`  evidence retrieval
========== ======================================= =========================================

plus the run's own settings (seed, precision, checkpoints). Flags stay flat
(``--learning-rate``, ``--lora-r``, ``--feedback-every``); a YAML file may be flat or nested
(``optim: {learning_rate: 1e-4}``); :meth:`TrainConfig.to_dict` writes the nested form and
:meth:`TrainConfig.from_dict` reads both, so an older flat ``grounding.json`` still loads.
In Python::

    TrainConfig(optim=OptimConfig(max_steps=30), adapter=AdapterConfig(r=8))
    TrainConfig.from_dict({"max_steps": 30, "lora_r": 8})   # the same, by flat names

The evaluation variants are reachable through settings alone (see :data:`VARIANTS`):
ungrounded SFT is ``injection: none, constraint_weight: 0, feedback_every: 0``; RAFT-style
is ``injection: text, constraint_weight: 0, feedback_every: 0``; the grounded model is the
default (text + embedding injection, margin constraint, fact-checker feedback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grounded.config import config_from_dict, to_dict, update_config
from grounded.data.prompts import SYSTEM_PROMPT
from grounded.injection.config import InjectionConfig
from grounded.losses.registry import CONSTRAINTS
from grounded.optim import OptimConfig
from grounded.retrieval import RetrievalConfig
from grounded.training.adapters import AdapterConfig
from kg.io import OVERWRITE_NOTE

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCOPES = ("divergence", "sequence")  # as grounded.losses.functional.SCOPES (no torch here)
# As grounded.data.prompts.PROMPT_FORMATS (importing grounded.data loads the graph code).
PROMPT_FORMATS = ("auto", "plain", "chat")


@dataclass
class DataConfig:
    """How the entity groups and the fine-tuning examples are drawn from the knowledge base."""

    seen_fraction: float = field(
        default=0.5,
        metadata={"help": "Share of (subject, relation) pairs used in fine-tuning (group seen)."},
    )
    out_of_kb: int = field(
        default=100, metadata={"help": "Out-of-KB questions drawn for the out_of_kb group."}
    )
    questions_per_pair: int = field(
        default=0, metadata={"help": "Question templates per seen pair (0: all of them)."}
    )
    p_no_gold: float = field(
        default=0.2,
        metadata={
            "help": "Share of examples whose gold facts are removed from the evidence and "
            "whose target is the abstention phrase (RAFT / R-Tuning)."
        },
    )
    p_counterfactual: float = field(
        default=0.15,
        metadata={
            "help": "Share of answerable examples made counterfactual (KAFT): the gold facts "
            "in the evidence name another object of the right type and the target follows "
            "the evidence; the true objects become negatives. Never on subjects of the "
            "evaluation's counterfactual group."
        },
    )
    out_of_kb_examples: float = field(
        default=0.15,
        metadata={
            "help": "Out-of-KB training examples, as a share of the seen pairs' examples: "
            "made-up subjects and KB subjects asked a relation they lack (never the "
            "evaluation's out_of_kb pairs), with the retriever's evidence, target the "
            "abstention phrase; 0: none."
        },
    )
    p_closed_book: float = field(
        default=0.1,
        metadata={
            "help": "Share of the seen pairs' questions that add a closed-book example (no "
            "evidence, target the KB objects): a loss on closed-book pairs that keeps the "
            "base answering from memory when given nothing to read, so the known group "
            "(never trained on) keeps its answers; 0: none."
        },
    )
    counterfactual: int = field(
        default=100,
        metadata={
            "help": "Pairs in the evaluation's counterfactual group (KAFT): real pairs whose "
            "evidence states another object; the right answer follows the evidence (at most "
            "a third of the pairs not seen)."
        },
    )
    probe_pairs: int = field(
        default=300,
        metadata={
            "help": "For a base not made by `grounded pretrain`: pairs probed closed-book "
            "before training (a seeded sample; the evaluator's prompt format, generation and "
            "scorer) to decide the known (answered right) and unknown groups; about a "
            "1-2 minutes for SmolLM2-135M on 2 idle cores. 0: no probe, every pair unknown."
        },
    )
    groups_file: str = field(
        default="",
        metadata={
            "help": "A groups.json of an earlier run on the same KB, seed and seen_fraction "
            "to reuse instead of drawing (and probing) the groups again: the variants of one "
            "evaluation share their groups, and the closed-book probe runs once; empty: draw."
        },
    )
    n_negatives: int = field(
        default=2,
        metadata={
            "help": "Graph-contradicted negatives per example (each adds an answer-length row)."
        },
    )
    max_prompt_tokens: int = field(
        default=512, metadata={"help": "Prompts longer than this lose their first tokens."}
    )
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": f"One of {', '.join(PROMPT_FORMATS)}: plain writes Evidence:/Question:/"
            "Answer: lines; chat puts them in the base tokenizer's chat template (the answer "
            "is the assistant's turn); auto: chat when the tokenizer has a template."
        },
    )
    system_prompt: str = field(
        default=SYSTEM_PROMPT,
        metadata={
            "help": "The system turn of the chat format (the prompt format plain has none); "
            "'' gives none, leaving the chat template's own default. A template that refuses "
            "a system turn gets none. grounding.json records the one used."
        },
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.seen_fraction <= 1.0:
            raise ValueError(f"`seen_fraction` must be in (0, 1], got {self.seen_fraction}")
        if not 0.0 <= self.p_no_gold < 1.0:
            raise ValueError(f"`p_no_gold` must be in [0, 1), got {self.p_no_gold}")
        for name in ("p_counterfactual", "p_closed_book"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}")
        if self.out_of_kb_examples < 0:
            raise ValueError(
                f"`out_of_kb_examples` must be >= 0 (a share of the seen examples), got "
                f"{self.out_of_kb_examples}"
            )
        _choice("prompt_format", self.prompt_format, PROMPT_FORMATS)
        if self.max_prompt_tokens < 1:
            raise ValueError(f"`max_prompt_tokens` must be >= 1, got {self.max_prompt_tokens}")
        counts = ("out_of_kb", "questions_per_pair", "n_negatives", "counterfactual", "probe_pairs")
        for name in counts:
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")


@dataclass
class ConstraintConfig:
    """The knowledge-constraint loss: graph-contradicted answers pushed below the gold one."""

    name: str = field(
        default="margin",
        metadata={"help": f"Constraint loss: {CONSTRAINTS.describe()}.", "flag": "constraint"},
    )
    weight: float = field(
        default=0.5,
        metadata={
            "help": "Weight λ_c of the constraint term (0 turns it off).",
            "flag": "constraint_weight",
        },
    )
    margin: float = field(
        default=1.0, metadata={"help": "Margin in nats between gold and negative answers."}
    )
    scope: str = field(
        default="divergence",
        metadata={
            "help": "Where gold and negative answers are compared: divergence (at the first "
            "token where they differ; stable) or sequence (whole answers).",
            "flag": "constraint_scope",
            "choices": list(SCOPES),
        },
    )
    length_normalize: bool = field(
        default=False,
        metadata={"help": "With sequence scope: per-token mean log-probabilities, not sums."},
    )

    def __post_init__(self) -> None:
        CONSTRAINTS.check(self.name, "constraint")
        _choice("constraint_scope", self.scope, SCOPES)
        if self.weight < 0:
            raise ValueError(f"`constraint_weight` must be >= 0, got {self.weight}")
        if self.margin < 0:
            raise ValueError(f"`margin` must be >= 0, got {self.margin}")


@dataclass
class FeedbackConfig:
    """Fact-checker feedback: rounds in which the model answers, a judge flags refuted
    answers, and those are pushed down."""

    every: int = field(
        default=50,
        metadata={
            "help": "Steps between feedback rounds (0 turns feedback off).",
            "flag": "feedback_every",
        },
    )
    samples: int = field(
        default=32,
        metadata={
            "help": "Training prompts answered and judged per round.",
            "flag": "feedback_samples",
        },
    )
    weight: float = field(
        default=0.5,
        metadata={"help": "Weight λ_f of the feedback term.", "flag": "feedback_weight"},
    )
    batch_size: int = field(
        default=1,
        metadata={
            "help": "Refuted examples from the bank added to each step (each adds a prompt: "
            "the step costs about 1 + this / batch size times more).",
            "flag": "feedback_batch_size",
        },
    )
    max_new_tokens: int = field(
        default=24,
        metadata={
            "help": "Tokens generated per answer in feedback rounds (and the trained model's "
            "default answer length)."
        },
    )
    dpo_export: bool = field(
        default=True,
        metadata={
            "help": "Write refuted/gold pairs to dpo_pairs.jsonl (prompt, chosen, rejected)."
        },
    )

    def __post_init__(self) -> None:
        for name, flag in (("samples", "feedback_samples"), ("max_new_tokens", "max_new_tokens")):
            if getattr(self, name) < 1:
                raise ValueError(f"`{flag}` must be >= 1, got {getattr(self, name)}")
        for name, flag in (("every", "feedback_every"), ("weight", "feedback_weight"),
                           ("batch_size", "feedback_batch_size")):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"`{flag}` must be >= 0, got {getattr(self, name)}")


@dataclass
class TrainConfig:
    """Settings of ``grounded train`` and :func:`grounded.training.train`, by section.

    Raises:
        ValueError: a setting is out of range; the message names the setting and the fix.

    Example:
        >>> config = TrainConfig.from_dict({"learning_rate": "1e-4", "lora_r": 8})
        >>> config.optim.learning_rate, config.adapter.r, config.injection.name
        (0.0001, 8, 'text+embedding')
    """

    data: DataConfig = field(
        default_factory=DataConfig,
        metadata={"help": "entity groups and training examples"},
    )
    injection: InjectionConfig = field(
        default_factory=InjectionConfig,
        metadata={"help": "evidence as prompt text and as soft tokens"},
    )
    adapter: AdapterConfig = field(
        default_factory=AdapterConfig, metadata={"help": "the PEFT adapter (peft's names)"}
    )
    constraint: ConstraintConfig = field(
        default_factory=ConstraintConfig,
        metadata={"help": "graph-contradicted answers pushed down"},
    )
    feedback: FeedbackConfig = field(
        default_factory=FeedbackConfig,
        metadata={"help": "the model's refuted answers pushed down"},
    )
    optim: OptimConfig = field(
        default_factory=OptimConfig,
        metadata={"help": "the optimiser (transformers.TrainingArguments' names)"},
    )
    retrieval: RetrievalConfig = field(
        default_factory=RetrievalConfig,
        metadata={"help": "evidence retrieved for each training question"},
    )
    seed: int = field(default=0, metadata={"help": "Seed of groups, data, init and order."})
    precision: str = field(
        default="auto",
        metadata={
            "help": f"One of {', '.join(PRECISIONS)}; auto: bf16 (else fp16) on a CUDA GPU, "
            "fp32 on the CPU.",
            "choices": list(PRECISIONS),
        },
    )
    save_steps: int = field(default=200, metadata={"help": "Steps between checkpoints."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    checkpoint_dir: str = field(
        default="", metadata={"help": "Checkpoint folder (default: OUT.checkpoints)."}
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue from the last checkpoint in checkpoint_dir."}
    )
    keep_checkpoints: bool = field(
        default=False, metadata={"help": "Keep checkpoint_dir after a successful run."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": f"Replace an existing OUT folder. {OVERWRITE_NOTE}"}
    )

    def __post_init__(self) -> None:
        _choice("precision", self.precision, PRECISIONS)
        for name in ("save_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")

    @property
    def modes(self) -> tuple[str, ...]:
        """The canonical injection modes (empty for ``none``)."""
        return tuple(self.injection.modes)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, nested by section, JSON-ready (what ``grounding.json`` records)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> TrainConfig:
        """Rebuild from :meth:`to_dict` output, or from the flat settings older versions
        wrote (``epochs``, ``batch_size``, ``lora_r``, ...); unknown keys warn.

        Raises:
            ValueError: a value of the wrong type or out of range (naming ``origin``).
        """
        return config_from_dict(cls, data, origin=origin, unknown="warn")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}")


VARIANTS: dict[str, dict[str, Any]] = {
    "sft": {
        "injection": "none",
        "constraint_weight": 0.0,
        "feedback_every": 0,
        "p_no_gold": 0.0,
        "p_counterfactual": 0.0,
        "out_of_kb_examples": 0.0,
        "p_closed_book": 0.0,
    },
    "raft": {
        "injection": "text",
        "constraint_weight": 0.0,
        "feedback_every": 0,
        # RAFT: retrieved context with distractors (and gold-free ones); the KAFT and
        # out-of-KB additions are grounded's.
        "p_counterfactual": 0.0,
        "out_of_kb_examples": 0.0,
        "p_closed_book": 0.0,
    },
    "grounded": {},
    "no_constraint": {"constraint_weight": 0.0},
    "no_feedback": {"feedback_every": 0},
    "no_embedding": {"injection": "text"},
}
"""Settings (flat names, as flags) that turn the default (grounded) config into each
evaluation variant."""


def variant_config(name: str, base: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """``base`` (default settings if None) with the settings of variant ``name`` applied,
    then ``overrides`` (flat names, e.g. ``max_steps=30``, or sections).

    Raises:
        ValueError: ``name`` is not in :data:`VARIANTS`, or an override is unknown.

    Example:
        >>> config = variant_config("raft")
        >>> config.injection.name, config.constraint.weight
        ('text', 0.0)
    """
    if name not in VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(VARIANTS)}, got {name!r}")
    config = update_config(base or TrainConfig(), VARIANTS[name], origin=f"variant {name!r}")
    return update_config(config, overrides, origin="overrides") if overrides else config
