"""`GroundedTrainer`: a Hugging Face ``Trainer`` whose loss adds the constraint and feedback.

``compute_loss`` = LM loss on the gold answers' tokens (prompt tokens never count)
+ λ_c · knowledge-constraint loss (graph-contradicted negatives) + λ_f · feedback loss
(refuted generations from the latest feedback round). Each term is logged separately
(``loss_lm``, ``loss_constraint``, ``loss_feedback``) so their curves can be plotted.
Checkpoints hold the PEFT adapter and the injection layer (safetensors), so ``--resume``
restores both together with the optimizer, scheduler and data order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import Trainer

from grounded.losses.constraint import ConstraintLoss
from grounded.losses.functional import pair_logprobs
from grounded.model.batch import Batcher
from grounded.training.feedback import FeedbackLoop, FeedbackRound


class LossTerms(NamedTuple):
    lm: torch.Tensor
    constraint: torch.Tensor
    feedback: torch.Tensor


def loss_terms(
    token_logp: torch.Tensor,
    answer_ids: torch.Tensor,
    answer_mask: torch.Tensor,
    gold_rows: torch.Tensor,
    neg_rows: torch.Tensor,
    is_feedback: torch.Tensor,
    constraint: ConstraintLoss,
) -> LossTerms:
    """The three loss terms from per-token log-probabilities of every answer row.

    Args:
        token_logp: (R, A) log-probability of each answer token, 0 at padding.
        answer_ids, answer_mask: (R, A) the answer rows.
        gold_rows: (P,) the gold row of each prompt.
        neg_rows: (P, N) negative rows of each prompt, -1 for none.
        is_feedback: (P,) prompts drawn from the feedback bank (their gold rows are not in
            the LM loss; their negatives feed the feedback term).
        constraint: the constraint loss (also used for the feedback term).

    Returns:
        :class:`LossTerms`: the LM loss is the mean negative log-likelihood per gold token of
        the batch's own prompts.
    """
    main = ~is_feedback
    g = gold_rows[main]
    lm = -token_logp[g].sum() / answer_mask[g].sum().clamp(min=1)
    gold, neg, valid = pair_logprobs(
        token_logp, answer_ids, answer_mask, gold_rows, neg_rows,
        scope=constraint.scope, length_normalize=constraint.uses_mean(),
    )  # fmt: skip
    return LossTerms(
        lm,
        constraint(gold[main], neg[main], valid[main]),
        constraint(gold[is_feedback], neg[is_feedback], valid[is_feedback]),
    )


def collate_examples(features: Sequence[dict]) -> dict[str, list[dict]]:
    """The data collator: examples stay dicts; :class:`Batcher` tensorizes them in the step,
    after the feedback bank's examples have joined them."""
    return {"examples": [dict(f) for f in features]}


class GroundedTrainer(Trainer):
    """``Trainer`` for a :class:`~grounded.model.grounding.GroundingModel`.

    Args:
        batcher: turns examples into tensors.
        constraint: the constraint loss (also used for the feedback term).
        constraint_weight: λ_c; 0 skips the negatives entirely (no extra rows).
        feedback_weight: λ_f.
        feedback: the feedback loop, or None.
        generate_fn: ``(model, examples) -> texts`` used by feedback rounds.
        **kwargs: passed to ``Trainer`` (model, args, train_dataset, callbacks, ...).
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def __init__(
        self,
        *,
        batcher: Batcher,
        constraint: ConstraintLoss,
        constraint_weight: float,
        feedback_weight: float,
        feedback: FeedbackLoop | None = None,
        generate_fn: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("data_collator", collate_examples)
        super().__init__(**kwargs)
        self.batcher = batcher
        self.constraint = constraint
        self.constraint_weight = constraint_weight
        self.feedback_weight = feedback_weight
        self.feedback = feedback
        self.generate_fn = generate_fn
        self.feedback_history: list[dict[str, Any]] = []
        self.tokens_seen = 0
        self._terms: dict[str, float] = defaultdict(float)
        self._n_terms = 0

    # -- loss ---------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        examples = list(inputs["examples"])
        use_feedback = self.feedback is not None and self.feedback_weight > 0 and model.training
        extra = self.feedback.draw() if use_feedback else []
        batch = self.batcher(examples + extra, with_negatives=self.constraint_weight > 0)
        layout = {k: batch.pop(k) for k in ("gold_rows", "neg_rows", "is_feedback")}
        batch = self._prepare_input(batch)
        layout = self._prepare_input(layout)
        token_logp = model(**batch)  # (R, A)
        terms = loss_terms(
            token_logp, batch["answer_ids"], batch["answer_mask"], **layout,
            constraint=self.constraint,
        )  # fmt: skip
        loss = terms.lm
        if self.constraint_weight > 0:
            loss = loss + self.constraint_weight * terms.constraint
        if extra:
            loss = loss + self.feedback_weight * terms.feedback
        if model.training:
            main = ~layout["is_feedback"]
            self.tokens_seen += int(batch["prompt_mask"][main].sum()) + int(
                batch["answer_mask"][layout["gold_rows"][main]].sum()
            )
            for name, value in terms._asdict().items():
                self._terms[f"loss_{name}"] += float(value.detach())
            self._n_terms += 1
        return (loss, {"token_logp": token_logp}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss term since the last log line to training logs."""
        if "loss" in logs and self._n_terms:
            for name, total in self._terms.items():
                logs[name] = round(total / self._n_terms, 6)
            self._terms.clear()
            self._n_terms = 0
        super().log(logs, start_time)

    # -- feedback -----------------------------------------------------------------------------
    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        if self.feedback is not None and self.feedback.due(self.state.global_step):
            self.feedback_round(self.state.global_step)
        return super().training_step(model, inputs, num_items_in_batch)

    def feedback_round(self, step: int, *, update_bank: bool = True) -> FeedbackRound:
        """Run one feedback round on every process; log totals over all of them."""
        if self.feedback is None or self.generate_fn is None:
            raise ValueError("this trainer has no feedback loop (`feedback_every` is 0)")
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            result = self.feedback.run_round(
                step, lambda exs: self.generate_fn(model, exs), update_bank=update_bank
            )
        finally:
            model.train(was_training)
        names = ("n_generations", "n_refuted", "n_supported", "n_abstained")
        counts = torch.tensor([getattr(result, n) for n in names], device=self.args.device)
        if self.args.world_size > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        totals = dict(zip(names, (int(c) for c in counts.tolist()), strict=True))
        share = totals["n_refuted"] / max(totals["n_generations"], 1)
        self.feedback.write(result, totals)
        self.feedback_history.append(
            {"round": result.round, "step": step, **totals, "refuted_share": round(share, 6)}
        )
        self.log(
            {
                "feedback_refuted_share": round(share, 6),
                "feedback_refuted": totals["n_refuted"],
                "feedback_generations": totals["n_generations"],
            }
        )
        return result

    # -- checkpoints --------------------------------------------------------------------------
    def _save_rng_state(self, output_dir: str) -> None:
        """Every process saves its random states, and its feedback bank beside them: the
        bank and its draws are state too, or a resumed run would diverge."""
        super()._save_rng_state(output_dir)
        if self.feedback is not None:
            from kg.io import atomic_write_json

            path = Path(output_dir) / f"feedback_state_{self.args.process_index}.json"
            atomic_write_json(path, self.feedback.state_dict())

    def _load_rng_state(self, checkpoint: str | None) -> None:
        super()._load_rng_state(checkpoint)
        if self.feedback is None or checkpoint is None:
            return
        path = Path(checkpoint) / f"feedback_state_{self.args.process_index}.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{checkpoint} has no feedback state ({path.name}): it was written by a run "
                "without feedback rounds or by an older version; start over with `--overwrite`"
            )
        import json

        self.feedback.load_state_dict(json.loads(path.read_text(encoding="utf-8")))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Checkpoint = the PEFT adapter + the injection layer (no base weights)."""
        if not self.args.should_save:
            return
        from grounded.model.artifacts import save_weights

        save_weights(self.accelerator.unwrap_model(self.model), output_dir or self.args.output_dir)

    def _load_from_checkpoint(
        self, resume_from_checkpoint: str, model: torch.nn.Module | None = None
    ) -> None:
        from grounded.model.artifacts import load_weights

        load_weights(
            self.accelerator.unwrap_model(model or self.model), Path(resume_from_checkpoint)
        )
