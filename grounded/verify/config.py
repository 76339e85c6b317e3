"""Settings of the combined verifier (:class:`grounded.verify.verifier.Verifier`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grounded.factcheck.checker import DEFAULT_EVIDENCE_K


@dataclass
class VerifierConfig:
    """Settings of :class:`Verifier`."""

    evidence_k: int | None = field(
        default=None,
        metadata={
            "help": "Retrieved evidence items the checker reads (default: what the checker "
            f"was trained with, else {DEFAULT_EVIDENCE_K})."
        },
    )
    alias_notes: bool | None = field(
        default=None,
        metadata={
            "help": "Start the checker's evidence with a note for each other name the claim "
            "uses (default: as the checker was trained; off for a checker that records none)."
        },
    )
    use_graph: bool = field(
        default=True,
        metadata={"help": "Let the graph decide claims it can read (off: checker only)."},
    )
    require_entity: bool = field(
        default=True,
        metadata={"help": "A claim that names no known entity is not enough info, unchecked."},
    )
    relation_fallback: bool = field(
        default=True,
        metadata={
            "help": "When no template reads a claim, detect its relation from the masked "
            "sentence and let the graph judge the linked entities."
        },
    )
    min_relation_prob: float = field(
        default=0.6,
        metadata={"help": "Relation-detection probability the fallback needs to decide."},
    )
    silence_is_nei: bool = field(
        default=True,
        metadata={
            "help": "When the graph reads a claim fully and holds no fact that decides it (no "
            "fact of the relation for the subject, or an open relation not listing the object) "
            "and the retrieved evidence holds no passage, answer not enough info without the "
            "checker (off: the checker judges such claims)."
        },
    )
    min_confidence: float | None = field(
        default=None,
        metadata={
            "help": "Override the checker's decision rule's min_confidence: the top "
            "probability a supported or refuted verdict needs (default: the rule stored with "
            "the checker, 0.5 when it stores none; grounded.factcheck.decision)."
        },
    )
    checker_batch_size: int = field(
        default=64, metadata={"help": "(claim, evidence) pairs per checker batch."}
    )

    def __post_init__(self) -> None:
        if self.evidence_k is not None and self.evidence_k < 1:
            raise ValueError(f"`evidence_k` must be >= 1 or None, got {self.evidence_k}")
        if not 0 <= self.min_relation_prob <= 1:
            raise ValueError(f"`min_relation_prob` must be in [0, 1], got {self.min_relation_prob}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise ValueError(
                f"`min_confidence` must be in [0, 1], got {self.min_confidence}: the checker's "
                "top probability is compared with it"
            )
        if self.checker_batch_size < 1:
            raise ValueError(f"`checker_batch_size` must be >= 1, got {self.checker_batch_size}")
