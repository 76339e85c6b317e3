"""The entity groups of a training run, decided before any training, and the size of its
out-of-KB training set (:mod:`grounded.data.groups`, :mod:`grounded.data.probe`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.data.groups import EntityGroups, build_groups

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.training.config import TrainConfig

logger = logging.getLogger(__name__)


def n_out_of_kb(kb: KnowledgeBase, groups: EntityGroups, config: TrainConfig) -> int:
    """Out-of-KB training examples: ``out_of_kb_examples`` × the seen pairs' questions."""
    share = config.data.out_of_kb_examples
    if not share or not config.modes:
        return 0
    graph = kb.graph
    per_pair = [len(groups.templates(r, len(graph.schema[r].questions))) for _, r in groups.seen]
    if config.data.questions_per_pair:
        per_pair = [min(n, config.data.questions_per_pair) for n in per_pair]
    return round(share * sum(per_pair))


def _reused_groups(path: Path, kb: KnowledgeBase, config: TrainConfig) -> EntityGroups:
    """The groups in ``path`` (``groups_file``), checked against this run.

    Raises:
        ValueError: they were drawn from another KB, or with another seed or seen_fraction.
    """
    groups = EntityGroups.load(path)
    if groups.kb_checksum and groups.kb_checksum != kb.checksum:
        raise ValueError(
            f"`groups_file` {path} was drawn from another knowledge base (checksum "
            f"{groups.kb_checksum[:12]}… vs {kb.checksum[:12]}…); leave `groups_file` empty "
            "to draw the groups for this one"
        )
    for name, want in (("seed", config.seed), ("seen_fraction", config.data.seen_fraction)):
        if getattr(groups, name) != want:
            raise ValueError(
                f"`groups_file` {path} was drawn with {name} {getattr(groups, name)!r}, this "
                f"run has {want!r}; use the same `{name}` or leave `groups_file` empty"
            )
    return groups


def decide_groups(
    kb: KnowledgeBase, base: str | Path, lm: Any, tokenizer: Any, config: TrainConfig
) -> EntityGroups:
    """The entity groups of a run, before any training: a base from ``grounded pretrain``
    keeps its pretrain split; any other base is probed closed-book (at most
    ``probe_pairs`` pairs, through the evaluator's path and scorer) to decide known and
    unknown (:mod:`grounded.data.probe`)."""
    from grounded.data.groups import heldout_templates
    from grounded.data.probe import model_prober
    from grounded.model.artifacts import load_pretrain_split

    if config.data.groups_file:
        return _reused_groups(Path(config.data.groups_file), kb, config)
    split = load_pretrain_split(base)
    prober = None
    if split is None and config.data.probe_pairs > 0:
        prober = model_prober(
            kb, lm, tokenizer,
            prompt_format=config.data.prompt_format,
            max_pairs=config.data.probe_pairs,
            seed=config.seed,
            max_new_tokens=config.feedback.max_new_tokens,
            heldout_templates=heldout_templates(kb.graph, seed=config.seed),
            system_prompt=config.data.system_prompt,  # the chat format's, as training reads it
        )  # fmt: skip
    t0 = time.perf_counter()
    groups = build_groups(
        kb,
        split,
        seed=config.seed,
        seen_fraction=config.data.seen_fraction,
        out_of_kb=config.data.out_of_kb,
        counterfactual=config.data.counterfactual,
        prober=prober,
    )
    if groups.probe:
        logger.info(
            "closed-book probe: %d of %d probed pairs known (%.1fs)",
            groups.probe["n_known"], groups.probe["n_probed"], time.perf_counter() - t0,
        )  # fmt: skip
    return groups
