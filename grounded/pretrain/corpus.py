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
- reading documents (:func:`reading_documents`): evidence lines about *made-up* entities, a
  question, and the answer copied from the evidence, in the grounded prompt format. Any
  pretrained LLM can read its context; these teach the small base the same skill without
  stating a single fact about a real entity, so unknown entities stay unknown.

This module never imports torch: the corpus can be inspected without a model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from grounded.answers import ABSTAIN, format_answer
from grounded.data.prompts import format_example, format_prompt
from grounded.data.reading import question_templates, reading_items, relation_label
from kg import EntityId, KnowledgeGraph


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


def reading_documents(graph: KnowledgeGraph, n: int, *, seed: int, k: int = 5) -> list[str]:
    """``n`` reading-comprehension documents about made-up entities.

    Each document is a grounded prompt (``Evidence:`` lines, ``Question:``, ``Answer:``)
    followed by the answer, which is copied from one evidence line: the items of
    :func:`grounded.data.reading.reading_items`, written out.

    Args:
        graph: the knowledge graph (relations, templates, object strings).
        n: documents to write (0: none).
        seed: seed of every choice.
        k: evidence lines per document.

    Example:
        >>> from kg import Relation, Schema, Triple
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...                ["What is the capital of {subject}?"])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], Schema([rel]))
        >>> print(reading_documents(g, 1, seed=0, k=2)[0])  # doctest: +ELLIPSIS
        Evidence:
        - The capital of ... is Ulaanbaatar.
        - The capital of ... is Ulaanbaatar.
        Question: What is the capital of ...?
        Answer: Ulaanbaatar.
    """
    return [
        format_example(it.question, format_answer(it.objects), it.evidence)
        for it in reading_items(graph, n, seed=seed, k=k)
    ]


def abstention_documents(graph: KnowledgeGraph, n: int, *, seed: int) -> list[str]:
    """``n`` questions about made-up entities answered with the abstention phrase.

    Every other one carries evidence that says nothing of the entity asked about (the
    unanswerable items of :func:`grounded.data.reading.reading_items`), in the grounded
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
    items = reading_items(graph, n, seed=seed, p_unanswerable=1.0)
    return [
        f"{format_prompt(it.question, it.evidence)} {ABSTAIN}"
        if i % 2 == 0
        else format_example(it.question, ABSTAIN)
        for i, it in enumerate(items)
    ]
