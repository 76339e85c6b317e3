"""The pretraining text: facts of the known subjects, said in several ways.

Every document is built from the graph alone, deterministically under a seed:

- each fact through its relation's statement template (``The capital of Mongolia is
  Ulaanbaatar.``), and many-valued facts of a subject once more through the plural template;
- each (subject, relation) pair as a question and answer in the prompt format fine-tuning
  uses (:data:`QA_TEMPLATE`), once per question template of the relation;
- two generic paraphrases per pair (``Mongolia's capital: Ulaanbaatar.``,
  ``Capital of Mongolia: Ulaanbaatar.``);
- one paragraph per subject from :meth:`kg.KnowledgeGraph.describe`;
- abstention documents (:func:`abstention_documents`): questions about *made-up* entities,
  with or without evidence that says nothing of them, answered with the abstention phrase:
  without them the phrase's tokens ("I", "don", "'t") are never trained, and an adapter,
  which does not train embeddings, can hardly learn to say it;

This module never imports torch: the corpus can be inspected without a model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from grounded.answers import ABSTAIN, format_answer
from grounded.data.groups import TRAINING_SYLLABLES
from grounded.data.prompts import format_example, format_prompt
from kg import EntityId, KnowledgeGraph, Relation


def subject_documents(graph: KnowledgeGraph, subject: EntityId) -> list[str]:
    """Every pretraining document about ``subject`` (empty if it is the subject of no fact)."""
    by_relation: dict[str, list[str]] = {}
    for t in graph.facts(subject):
        by_relation.setdefault(t.relation, []).append(t.object)
    docs: list[str] = []
    for name, objects in by_relation.items():
        rel = graph.schema[name]
        docs.extend(rel.statement(subject, o) for o in objects)
        if len(objects) > 1 and rel.plural_template:
            docs.append(rel.statement_many(subject, objects))
        answer = format_answer(objects)
        docs.extend(
            format_example(q.format(subject=subject), answer) for q in question_templates(rel)
        )
        label = relation_label(rel)
        docs.append(f"{subject}'s {label}: {answer}")
        docs.append(f"{label[:1].upper()}{label[1:]} of {subject}: {answer}")
    if by_relation:
        docs.append(" ".join(graph.describe(subject)))
    return docs


def build_corpus(graph: KnowledgeGraph, subjects: Iterable[EntityId], *, seed: int) -> list[str]:
    """The documents of every subject in ``subjects``, in a seeded shuffled order.

    Only facts whose subject is in ``subjects`` appear as statements, questions or
    paragraphs; other entities can still be named as objects (``Mongolia borders China.``
    names China even when China is unknown).

    Example:
        >>> from kg import Relation, Schema, Triple
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...                ["What is the capital of {subject}?"])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], Schema([rel]))
        >>> docs = build_corpus(g, ["Mongolia"], seed=0)
        >>> "Question: What is the capital of Mongolia?\\nAnswer: Ulaanbaatar." in docs
        True
    """
    docs = [d for s in sorted(set(subjects)) for d in subject_documents(graph, s)]
    random.Random(seed).shuffle(docs)
    return docs


def tokenizer_texts(graph: KnowledgeGraph, *, template_weight: int = 20) -> list[str]:
    """Texts to train the tokenizer on: every entity name and alias, templates, the QA frame.

    Every entity (known or not) is listed equally often, so the tokenizer splits unknown
    names no worse than known ones and does not leak the split. Templates and the prompt
    frame are repeated ``template_weight`` times so their words become whole tokens.
    """
    names = set(graph.entities)
    for entity, aliases in graph.aliases.items():
        names.add(entity)
        names.update(aliases)
    texts: list[str] = []
    for name in sorted(names):
        # Byte-level BPE tells a word at the start of a text from one after a space.
        texts += [name, " " + name]
    frame: list[str] = [format_prompt("?"), ABSTAIN, format_example("?", ABSTAIN)]
    for rel in graph.schema:
        label = relation_label(rel)
        patterns = [rel.template, *question_templates(rel), f"{{subject}}'s {label}: {{object}}."]
        patterns.append(f"{label[:1].upper()}{label[1:]} of {{subject}}: {{object}}.")
        if rel.plural_template:
            patterns.append(rel.plural_template)
        frame += [_strip_placeholders(p) for p in patterns]
    return texts + frame * template_weight


def _strip_placeholders(template: str) -> str:
    text = re.sub(r"\{(subject|object|objects)\}", " ", template)
    return re.sub(r" +", " ", text).strip()


def abstention_documents(graph: KnowledgeGraph, n: int, *, seed: int) -> list[str]:
    """``n`` questions about made-up entities answered with the abstention phrase.

    Every other one carries evidence that says nothing of the entity asked about (the
    unanswerable items of :func:`made_up_items`), in the grounded
    prompt format; the rest are plain questions (:data:`QA_TEMPLATE`).

    Example:
        >>> from kg import Relation, Schema, Triple
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...                ["What is the capital of {subject}?"])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], Schema([rel]))
        >>> docs = abstention_documents(g, 2, seed=0)
        >>> [d.endswith("Answer: " + ABSTAIN) for d in docs], docs[1].startswith("Question:")
        ([True, True], True)
    """
    items = made_up_items(graph, n, seed=seed, p_unanswerable=1.0)
    return [
        f"{format_prompt(it.question, it.evidence)} {ABSTAIN}"
        if i % 2 == 0
        else format_example(it.question, ABSTAIN)
        for i, it in enumerate(items)
    ]


# Disjoint from the evaluation's made-up out-of-KB subjects (grounded.data.groups).
_READING_SYLLABLES = TRAINING_SYLLABLES


@dataclass(frozen=True)
class MadeUpItem:
    """A question about a made-up entity with evidence lines; ``objects`` is empty when the
    evidence does not answer."""

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


def made_up_items(
    graph: KnowledgeGraph,
    n: int,
    *,
    seed: int,
    k: int = 5,
    gold_first: float = 0.0,
    p_unanswerable: float = 0.0,
) -> list[MadeUpItem]:
    """``n`` questions about made-up entities, with evidence lines about made-up entities.

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
        >>> item = made_up_items(g, 1, seed=0, k=2)[0]
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
    rng = random.Random(f"grounded-reading-{seed}")  # the name keeps old corpora identical
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
        items.append(MadeUpItem(question.format(subject=subject), lines, answer, subject, rel.name))
    return items
