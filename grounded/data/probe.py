"""The closed-book probe: which KB pairs a pretrained base already answers correctly.

Before any training, the base answers one question per pair with no evidence, through the
evaluator's own path (:meth:`grounded.model.GroundedModel.answer`: the same prompt format,
batched greedy generation, :func:`grounded.answers.parse_generation`) and is scored by the
evaluator's scorer (:func:`grounded.answers.score_answer`). Pairs it gets right are the
``known`` group, the others ``unknown`` (:func:`grounded.data.groups.build_groups`).

Probing costs a generation per pair, so at most ``max_pairs`` pairs are probed: a sample
drawn with the seed, the same on every run. The question of a pair uses one of its
relation's training templates (never a held-out one), drawn with the seed.

This module imports no torch; :func:`model_prober` loads the model code when called.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from grounded.answers import score_answer
from grounded.data.groups import ClosedBookProbe, Pair, Prober
from grounded.data.prompts import SYSTEM_PROMPT

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase

Answerer = Callable[[list[str]], list[str]]
"""Answers (parsed text) for a list of questions, closed-book."""

DEFAULT_PROBE_PAIRS = 300
"""Pairs probed by default: 1 to 2 minutes of batched generation for SmolLM2-135M on 2 idle
CPU cores (0.25 to 0.4 s an answer of up to 24 tokens, batch 32); the known and unknown
groups then hold about the evaluation's default questions between them."""


def probe_closed_book(
    kb: KnowledgeBase,
    pairs: Sequence[Pair],
    answer: Answerer,
    *,
    max_pairs: int = DEFAULT_PROBE_PAIRS,
    seed: int = 0,
    heldout_templates: Mapping[str, Sequence[int]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ClosedBookProbe:
    """Ask ``answer`` about at most ``max_pairs`` of ``pairs`` and score each closed-book.

    Args:
        kb: the knowledge base (templates and the scorer's graph).
        pairs: the candidate pairs.
        answer: the base's closed-book answerer.
        max_pairs: pairs probed at most (a seeded sample); 0 probes none.
        seed: seed of the sample and of each question's template.
        heldout_templates: relation → template indices the probe must not ask with.
        settings: recorded with the probe (prompt format, answer length, ...).

    Raises:
        ValueError: ``max_pairs`` < 0, or ``answer`` returns another number of answers.

    Example:
        >>> probe = probe_closed_book(kb, [("Mongolia", "capital")],
        ...     lambda qs: ["Ulaanbaatar."] * len(qs))  # doctest: +SKIP
        >>> probe.known  # doctest: +SKIP
        [('Mongolia', 'capital')]
    """
    if max_pairs < 0:
        raise ValueError(f"`probe_pairs` must be >= 0 (0: no probe), got {max_pairs}")
    rng = random.Random(f"grounded-probe-{seed}")
    chosen = sorted(pairs)
    if len(chosen) > max_pairs:
        chosen = sorted(rng.sample(chosen, max_pairs))
    graph = kb.graph
    held = heldout_templates or {}
    questions = []
    for s, r in chosen:
        rel = graph.schema[r]
        allowed = [i for i in range(len(rel.questions)) if i not in set(held.get(r, ()))]
        questions.append(rel.question(s, rng.choice(allowed or [0])))
    answers = answer(questions) if questions else []
    if len(answers) != len(questions):
        raise ValueError(f"the answerer gave {len(answers)} answers to {len(questions)} questions")
    rows, known = [], []
    for (s, r), q, a in zip(chosen, questions, answers, strict=True):
        outcome = score_answer(graph, s, r, a).outcome
        rows.append([s, r, q, a, outcome])
        if outcome == "correct":
            known.append((s, r))
    record = {"max_pairs": max_pairs, "seed": seed}  # no time: the file is deterministic
    record.update(settings or {})
    return ClosedBookProbe(known=known, answers=rows, n_pairs=len(pairs), settings=record)


def prober(
    kb: KnowledgeBase,
    answer: Answerer,
    *,
    max_pairs: int = DEFAULT_PROBE_PAIRS,
    seed: int = 0,
    heldout_templates: Mapping[str, Sequence[int]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Prober:
    """:func:`probe_closed_book` with everything but the pairs fixed (what
    :func:`grounded.data.groups.build_groups` takes)."""
    return lambda pairs: probe_closed_book(
        kb, pairs, answer, max_pairs=max_pairs, seed=seed,
        heldout_templates=heldout_templates, settings=settings,
    )  # fmt: skip


def model_prober(
    kb: KnowledgeBase,
    lm: Any,
    tokenizer: Any,
    *,
    prompt_format: str = "auto",
    max_pairs: int = DEFAULT_PROBE_PAIRS,
    seed: int = 0,
    batch_size: int = 32,
    max_new_tokens: int = 24,
    heldout_templates: Mapping[str, Sequence[int]] | None = None,
    system_prompt: str | None = SYSTEM_PROMPT,
) -> Prober:
    """A :data:`Prober` that asks the base model ``lm`` (in memory, no adapter yet) as the
    evaluation's ``base`` variant asks it: no evidence, the resolved ``prompt_format`` (and
    ``system_prompt``, recorded as ``grounding.json`` records it, for the chat format),
    batched greedy generation of at most ``max_new_tokens``."""
    from grounded.data.prompts import resolve_prompt_format
    from grounded.injection.layer import InjectionConfig, KnowledgeInjection
    from grounded.model.generate import GroundedModel
    from grounded.model.grounding import GroundingModel

    fmt = resolve_prompt_format(prompt_format, tokenizer)
    grounding = {
        "settings": {"max_new_tokens": max_new_tokens},
        "prompt_format": {
            "format": fmt,
            "evidence_in_prompt": False,
            "system": system_prompt or None,
        },
    }
    model = GroundedModel(
        GroundingModel(lm, KnowledgeInjection(InjectionConfig(modes=[]))), tokenizer, kb, grounding
    )

    def answer(questions: list[str]) -> list[str]:
        out = model.answer(questions, batch_size=batch_size, max_new_tokens=max_new_tokens)
        return [a.text for a in out]

    settings = {
        "prompt_format": fmt,
        "system_prompt": model.batcher.system_prompt,  # the one the template took
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "path": "closed-book greedy generation (GroundedModel.answer), score_answer",
    }
    return prober(
        kb, answer, max_pairs=max_pairs, seed=seed,
        heldout_templates=heldout_templates, settings=settings,
    )  # fmt: skip
