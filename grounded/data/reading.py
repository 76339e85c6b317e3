"""Reading items: evidence about *made-up* entities, a question, and the answer in the evidence.

A small base model answers from what it memorized; the only way to answer a question about
an invented entity is to read the evidence. Reading items teach that skill without stating
a single fact about a real entity (the objects are real object strings of each relation, so
every kind of answer the model will meet is copied at least once). They serve twice:

- as pretraining text (:func:`grounded.pretrain.corpus.reading_documents`), and
- as fine-tuning examples mixed into the seen pairs' (``grounded train --reading-examples``),
  in the spirit of KAFT's counterfactual contexts (Li et al., 2022): with the answer lines
  first as a retriever ranks them (``gold_first``), and with unanswerable items whose
  evidence says nothing of the pair asked (``p_unanswerable``, target the abstention phrase
  :data:`grounded.answers.ABSTAIN`).

Names repeat across items with other facts each time, on purpose: an answer can only be read,
never remembered. No torch here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kg import KnowledgeGraph, Relation

__all__ = ["ReadingItem", "question_templates", "reading_items", "relation_label"]

# Syllables of made-up reading entities: disjoint from those of the evaluation's made-up
# out-of-KB subjects (grounded.data.groups), so no out-of-KB name is ever read in training.
_READING_SYLLABLES = (
    "ab cor dex fim gon hul iks jor kel lum mox nir opa pim qua rul sen tok umb vor wix yal zeb"
).split()


@dataclass(frozen=True)
class ReadingItem:
    """One reading item: ``objects`` is empty when the evidence does not answer."""

    question: str
    evidence: list[str]
    objects: list[str]
    subject: str
    relation: str


def relation_label(relation: Relation) -> str:
    """A relation's name as words: ``official_language`` -> ``official language``."""
    return relation.name.replace("_", " ")


def question_templates(relation: Relation) -> list[str]:
    """The relation's question templates, or a generic one if the schema gives none."""
    return list(relation.questions) or [f"What is the {relation_label(relation)} of {{subject}}?"]


def _made_up_name(rng: random.Random, real: set[str], avoid: tuple[str, ...] = ()) -> str:
    """A made-up entity name: never a real entity's, and none of ``avoid``."""
    while True:
        name = "".join(rng.choice(_READING_SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = name.capitalize()
        if name.lower() not in real and name not in avoid:
            return name


def reading_items(
    graph: KnowledgeGraph,
    n: int,
    *,
    seed: int,
    k: int = 5,
    gold_first: float = 0.0,
    p_unanswerable: float = 0.0,
) -> list[ReadingItem]:
    """``n`` reading items about made-up entities.

    Distractor lines are other facts of the same made-up entity and the same relation of
    another made-up entity, as retrieval returns them.

    Args:
        graph: the knowledge graph (relations, templates, object strings).
        n: items to write (0: none).
        seed: seed of every choice.
        k: evidence lines per item.
        gold_first: probability that the answer lines come first (the order of a retriever
            that ranks the gold fact on top); otherwise every line is shuffled.
        p_unanswerable: share of items whose evidence does not answer: the answer lines are
            dropped (half the time the question then asks about an entity the evidence never
            names), and the target is the abstention phrase.

    Raises:
        ValueError: a probability is outside [0, 1].

    Example:
        >>> from kg import Schema, Triple
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...                ["What is the capital of {subject}?"])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], Schema([rel]))
        >>> item = reading_items(g, 1, seed=0, k=2)[0]
        >>> item.objects, item.question.startswith("What is the capital of")
        (['Ulaanbaatar'], True)
    """
    for name, p in (("gold_first", gold_first), ("p_unanswerable", p_unanswerable)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {p}")
    if n <= 0:
        return []
    pools: dict[str, list[str]] = {}
    sizes: dict[str, list[int]] = {}
    for t in graph.triples():
        pools.setdefault(t.relation, []).append(t.object)
    for rel_name in pools:
        pools[rel_name] = sorted(set(pools[rel_name]))
        counts: dict[str, int] = {}
        for t in graph.triples():
            if t.relation == rel_name:
                counts[t.subject] = counts.get(t.subject, 0) + 1
        sizes[rel_name] = sorted(counts.values())
    asked = [r for r in graph.schema if r.name in pools]
    if not asked:
        return []
    rng = random.Random(f"grounded-reading-{seed}")
    real = {e.lower() for e in graph.entities}
    items = []
    for _ in range(n):
        rel = rng.choice(asked)
        subject = _made_up_name(rng, real)
        other = _made_up_name(rng, real, avoid=(subject,))

        def objects(r: Relation) -> list[str]:
            m = min(rng.choice(sizes[r.name]), 3, len(pools[r.name]))
            return rng.sample(pools[r.name], m)

        answer = objects(rel)
        gold = [rel.statement(subject, o) for o in answer]
        lines = [*gold, rel.statement(other, rng.choice(pools[rel.name]))]
        others = [r for r in asked if r.name != rel.name]
        while len(lines) < k and others:
            r = rng.choice(others)
            lines.append(r.statement(rng.choice((subject, subject, other)), objects(r)[0]))
        lines = lines[: max(k, len(answer))]
        rng.shuffle(lines)
        # Extra draws only when asked for, so the default items stay what they were.
        if p_unanswerable and rng.random() < p_unanswerable:
            lines = [line for line in lines if line not in gold]
            while len(lines) < k:
                lines.append(rel.statement(other, rng.choice(pools[rel.name])))
            if rng.random() < 0.5:
                subject = _made_up_name(rng, real, avoid=(subject, other))
            answer, gold = [], []
        if gold_first and gold and rng.random() < gold_first:
            lines = gold + [line for line in lines if line not in gold]
        templates = question_templates(rel)
        question = templates[rng.randrange(len(templates)) if rel.questions else 0]
        items.append(
            ReadingItem(question.format(subject=subject), lines, answer, subject, rel.name)
        )
    return items
