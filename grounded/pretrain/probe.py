"""Probes of a base model: what it memorized (KB questions).

Greedy answers, scored by exact match."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from grounded.answers import format_answer
from grounded.data.prompts import format_prompt
from grounded.pretrain.corpus import question_templates
from kg import EntityId, KnowledgeGraph

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def greedy_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 64,
) -> list[str]:
    """Greedy completions of ``format_prompt(question)``, cut at the first newline and stripped.

    Example:
        >>> greedy_answers(model, tok, ["What is the capital of Mongolia?"])  # doctest: +SKIP
        ['Ulaanbaatar.']
    """
    prompts = [format_prompt(q) for q in questions]
    return greedy_completions(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )


def greedy_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 64,
) -> list[str]:
    """Greedy completions of ``prompts``, cut at the first newline and stripped.

    Prompts are left-padded in batches; the model is put in eval mode.
    """
    import torch

    model.eval()
    answers: list[str] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(
            list(prompts[i : i + batch_size]),
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
        enc = enc.to(model.device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        for text in tokenizer.batch_decode(new, skip_special_tokens=True):
            answers.append(text.split("\n", 1)[0].strip())
    return answers


def probe_questions(
    graph: KnowledgeGraph,
    subjects: Iterable[EntityId],
    *,
    max_pairs: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One question per (subject, relation) pair of ``subjects``, with its expected answer.

    The question template is drawn per pair with ``seed``; ``max_pairs`` samples that many
    pairs (sorted first, so the sample is reproducible).
    """
    rng = random.Random(seed)
    wanted = set(subjects)
    pairs = sorted({(t.subject, t.relation) for t in graph.triples() if t.subject in wanted})
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(rng.sample(pairs, max_pairs))
    items = []
    for s, r in pairs:
        rel = graph.schema[r]
        template = rng.choice(question_templates(rel))
        items.append(
            {
                "subject": s,
                "relation": r,
                "question": template.format(subject=s),
                "expected": format_answer(graph.objects(s, r)),
            }
        )
    return items


def probe_exact_match(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    graph: KnowledgeGraph,
    subjects: Iterable[EntityId],
    *,
    max_pairs: int | None = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact-match accuracy of greedy answers on (subject, relation) questions of ``subjects``.

    Returns:
        ``{"accuracy", "correct", "total", "per_relation": {rel: {"correct", "total"}},
        "examples": [first 10 {question, expected, answer}]}``.
    """
    items = probe_questions(graph, subjects, max_pairs=max_pairs, seed=seed)
    answers = greedy_answers(model, tokenizer, [it["question"] for it in items])
    per_relation: dict[str, dict[str, int]] = {}
    correct = 0
    for it, ans in zip(items, answers, strict=True):
        it["answer"] = ans
        ok = ans == it["expected"]
        correct += ok
        rel = per_relation.setdefault(it["relation"], {"correct": 0, "total": 0})
        rel["correct"] += ok
        rel["total"] += 1
    return {
        "accuracy": correct / len(items) if items else 0.0,
        "correct": correct,
        "total": len(items),
        "per_relation": per_relation,
        "examples": [{k: it[k] for k in ("question", "expected", "answer")} for it in items[:10]],
    }
