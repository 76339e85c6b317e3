"""The entity groups of an evaluation without trained models (whose ``groups.json`` would
decide them): drawn as ``grounded train`` draws them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grounded.data.groups import EntityGroups, build_groups

if TYPE_CHECKING:
    from grounded.evaluation.runner import EvaluateConfig
    from grounded.kb import KnowledgeBase


def baseline_groups(
    kb: KnowledgeBase, base: str | Path, config: EvaluateConfig, *, prompt: tuple[str, str | None]
) -> EntityGroups:
    """The groups of an evaluation without trained models, drawn as ``grounded train`` draws
    them (its default settings): the pretrain split, or a closed-book probe of the base that
    reads ``prompt`` (prompt format, system prompt) as the ``base`` variant does."""
    from grounded.model.artifacts import load_pretrain_split

    split = load_pretrain_split(base)
    prober = None
    if split is None and config.probe_pairs:
        from grounded.data.groups import heldout_templates
        from grounded.data.probe import prober as make_prober
        from grounded.model.generate import GroundedModel

        fmt, system = prompt
        model = GroundedModel.from_base(
            base, kb, max_new_tokens=config.max_new_tokens, prompt_format=fmt,
            system_prompt=system,
        )  # fmt: skip

        def answer(questions: list[str]) -> list[str]:
            out = model.answer(
                questions, batch_size=config.batch_size, max_new_tokens=config.max_new_tokens
            )
            return [a.text for a in out]

        settings = {
            "prompt_format": model.batcher.prompt_format,
            "system_prompt": model.batcher.system_prompt,
            "max_new_tokens": config.max_new_tokens,
            "batch_size": config.batch_size,
            "path": "closed-book greedy generation (GroundedModel.answer), score_answer",
        }
        prober = make_prober(
            kb, answer, max_pairs=config.probe_pairs, seed=config.seed,
            heldout_templates=heldout_templates(kb.graph, seed=config.seed), settings=settings,
        )  # fmt: skip
    return build_groups(
        kb, split, seed=config.seed, counterfactual=config.counterfactual, prober=prober
    )
