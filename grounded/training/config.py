"""`TrainConfig`: every setting of grounded adapter fine-tuning (Python API, YAML and CLI).

The evaluation variants are reachable through settings alone (see :data:`VARIANTS`):
ungrounded SFT is ``injection: none, constraint_weight: 0, feedback_every: 0``; RAFT-style
is ``injection: text, constraint_weight: 0, feedback_every: 0``; the grounded model is the
default (text + embedding injection, margin constraint, fact-checker feedback).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from grounded.injection.registry import INJECTIONS, injection_name, parse_injection
from grounded.losses.registry import CONSTRAINTS
from grounded.training.adapters import ADAPTERS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCOPES = ("divergence", "sequence")  # as grounded.losses.functional.SCOPES (no torch here)
SCHEDULERS = ("linear", "cosine", "constant_with_warmup")
# As grounded.data.prompts.PROMPT_FORMATS (importing grounded.data loads the graph code).
PROMPT_FORMATS = ("auto", "plain", "chat")


@dataclass
class TrainConfig:
    """Settings of ``grounded train`` and :func:`grounded.training.train`."""

    # -- data ------------------------------------------------------------------------------
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
    reading_examples: int = field(
        default=0,
        metadata={
            "help": "Fine-tuning examples about made-up entities added to the seen pairs' "
            "(text injection only): evidence, a question, the answer copied from the "
            "evidence (the answer lines first 4 times in 5, as a retriever ranks them; 1 in 5 "
            "unanswerable, target the abstention phrase). They teach a "
            "small base to read its context; 0: none."
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
    # -- injection -------------------------------------------------------------------------
    injection: str = field(
        default="text+embedding",
        metadata={
            "help": f"Injection modes joined by + or , from: {INJECTIONS.describe()}; or none "
            "(ungrounded SFT)."
        },
    )
    soft_tokens_per_fact: int = field(
        default=1, metadata={"help": "Soft tokens per evidence vector (embedding injection)."}
    )
    injection_hidden: int = field(
        default=256, metadata={"help": "Hidden width of the evidence-projection MLP."}
    )
    entity_vectors: bool = field(
        default=False,
        metadata={"help": "Add entity vectors at linked-mention tokens (ERNIE-style)."},
    )
    # -- knowledge constraint --------------------------------------------------------------
    constraint: str = field(
        default="margin",
        metadata={"help": f"Constraint loss: {CONSTRAINTS.describe()}."},
    )
    constraint_weight: float = field(
        default=0.5, metadata={"help": "Weight λ_c of the constraint term (0 turns it off)."}
    )
    margin: float = field(
        default=1.0, metadata={"help": "Margin in nats between gold and negative answers."}
    )
    constraint_scope: str = field(
        default="divergence",
        metadata={
            "help": "Where gold and negative answers are compared: divergence (at the first "
            "token where they differ; stable) or sequence (whole answers)."
        },
    )
    length_normalize: bool = field(
        default=False,
        metadata={"help": "With sequence scope: per-token mean log-probabilities, not sums."},
    )
    # -- fact-checker feedback -------------------------------------------------------------
    feedback_every: int = field(
        default=50,
        metadata={"help": "Steps between feedback rounds (0 turns feedback off)."},
    )
    feedback_samples: int = field(
        default=32, metadata={"help": "Training prompts answered and judged per round."}
    )
    feedback_weight: float = field(
        default=0.5, metadata={"help": "Weight λ_f of the feedback term."}
    )
    feedback_batch_size: int = field(
        default=1,
        metadata={
            "help": "Refuted examples from the bank added to each step (each adds a prompt: "
            "the step costs about 1 + this / batch_size times more)."
        },
    )
    max_new_tokens: int = field(
        default=24, metadata={"help": "Tokens generated per answer in feedback rounds."}
    )
    dpo_export: bool = field(
        default=True,
        metadata={
            "help": "Write refuted/gold pairs to dpo_pairs.jsonl (prompt, chosen, rejected)."
        },
    )
    # -- adapter ---------------------------------------------------------------------------
    adapter: str = field(default="lora", metadata={"help": f"PEFT adapter: {ADAPTERS.describe()}."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={
            "help": "Modules LoRA and IA3 wrap: names, or all-linear (every linear layer but "
            "the output head: reading evidence is a new skill for a small base, and "
            "attention-only LoRA barely learns it); empty: PEFT's default for the model."
        },
    )
    num_virtual_tokens: int = field(
        default=8, metadata={"help": "Virtual tokens of prefix and prompt tuning."}
    )
    # -- optimisation ----------------------------------------------------------------------
    learning_rate: float = field(
        default=1e-3,
        metadata={"help": "Peak learning rate (suits the small default base; lower it for 1B+)."},
    )
    lr_scheduler: str = field(
        default="cosine", metadata={"help": f"Schedule after warm-up: {', '.join(SCHEDULERS)}."}
    )
    warmup_ratio: float = field(
        default=0.05, metadata={"help": "Share of the steps spent warming up linearly."}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    epochs: float = field(default=3.0, metadata={"help": "Passes over the training examples."})
    max_steps: int = field(
        default=-1, metadata={"help": "Optimizer steps; overrides `epochs` when > 0."}
    )
    batch_size: int = field(default=8, metadata={"help": "Examples per device per step."})
    grad_accum: int = field(default=1, metadata={"help": "Gradient accumulation steps."})
    precision: str = field(
        default="auto",
        metadata={
            "help": f"One of {', '.join(PRECISIONS)}; auto: bf16 (else fp16) on a CUDA GPU, "
            "fp32 on the CPU."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of groups, data, init and order."})
    logging_steps: int = field(default=10, metadata={"help": "Steps between log lines."})
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
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing OUT folder."})

    def __post_init__(self) -> None:
        self.injection = injection_name(parse_injection(self.injection))
        CONSTRAINTS.check(self.constraint, "constraint")
        ADAPTERS.check(self.adapter, "adapter")
        _choice("precision", self.precision, PRECISIONS)
        _choice("prompt_format", self.prompt_format, PROMPT_FORMATS)
        _choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _choice("constraint_scope", self.constraint_scope, SCOPES)
        for name in ("seen_fraction",):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in (0, 1], got {getattr(self, name)}")
        for name in ("p_no_gold", "warmup_ratio", "lora_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}")
        for name in (
            "soft_tokens_per_fact", "injection_hidden", "feedback_samples", "max_new_tokens",
            "lora_r", "lora_alpha", "num_virtual_tokens", "batch_size", "grad_accum",
            "logging_steps", "save_steps", "save_total_limit", "max_prompt_tokens",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in (
            "out_of_kb", "questions_per_pair", "reading_examples", "n_negatives",
            "constraint_weight", "margin",
            "feedback_every", "feedback_weight", "feedback_batch_size", "weight_decay",
        ):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise ValueError(
                f"`learning_rate` and `max_grad_norm` must be > 0, got {self.learning_rate} "
                f"and {self.max_grad_norm}"
            )
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ValueError(
                f"set `epochs` > 0 or `max_steps` > 0 (got epochs={self.epochs}, "
                f"max_steps={self.max_steps})"
            )
        if self.reading_examples and "text" not in self.modes:
            raise ValueError(
                f"`reading_examples` are read as text; `injection` is {self.injection!r}: use "
                "`text` or `text+embedding`, or set `reading_examples` to 0"
            )
        if self.entity_vectors and "embedding" not in self.modes:
            raise ValueError(
                f"`entity_vectors` needs the embedding injection; `injection` is "
                f"{self.injection!r}: use `text+embedding` or turn `entity_vectors` off"
            )

    @property
    def modes(self) -> tuple[str, ...]:
        """The canonical injection modes (empty for ``none``)."""
        return parse_injection(self.injection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored with a warning."""
        import warnings

        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            warnings.warn(f"unknown training settings {unknown} ignored", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in names})


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}")


VARIANTS: dict[str, dict[str, Any]] = {
    "sft": {
        "injection": "none",
        "constraint_weight": 0.0,
        "feedback_every": 0,
        "p_no_gold": 0.0,
        "reading_examples": 0,
    },
    "raft": {
        "injection": "text",
        "constraint_weight": 0.0,
        "feedback_every": 0,
        "reading_examples": 0,
    },
    "grounded": {},
    "no_constraint": {"constraint_weight": 0.0},
    "no_feedback": {"feedback_every": 0},
    "no_embedding": {"injection": "text"},
}
"""Settings that turn the default (grounded) config into each evaluation variant."""


def variant_config(name: str, base: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """``base`` (default settings if None) with the settings of variant ``name`` applied.

    Raises:
        ValueError: ``name`` is not in :data:`VARIANTS`.

    Example:
        >>> variant_config("raft").injection, variant_config("raft").constraint_weight
        ('text', 0.0)
    """
    if name not in VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(VARIANTS)}, got {name!r}")
    return dataclasses.replace(base or TrainConfig(), **{**VARIANTS[name], **overrides})
