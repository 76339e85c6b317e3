"""The pretraining text: facts of the known subjects, said in several ways.

Every document is built from the graph alone, deterministically under a seed:

- each fact through its relation's statement template (``The capital of Mongolia is
  Ulaanbaatar.``), and many-valued facts of a subject once more through the plural template;
- each (subject, relation) pair as a question and answer in the prompt format fine-tuning
  uses (:data:`QA_TEMPLATE`), once per question template of the relation;
- two generic paraphrases per pair (``Mongolia's capital: Ulaanbaatar.``,
  ``Capital of Mongolia: Ulaanbaatar.``);
- one paragraph per subject from :meth:`kg.KnowledgeGraph.describe`;
- reading documents (:func:`reading_documents`): evidence lines about *made-up* entities, a
  question, and the answer copied from the evidence, in the grounded prompt format. Any
  pretrained LLM can read its context; these teach the small base the same skill without
  stating a single fact about a real entity, so unknown entities stay unknown.

This module never imports torch: the corpus can be inspected without a model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

from grounded.data.prompts import format_prompt
from grounded.types import ABSTAIN
from kg import EntityId, KnowledgeGraph, Relation

QA_TEMPLATE = "Question: {question}\nAnswer: {answer}"
"""How a question and its answer are written, in pretraining and in fine-tuning alike."""


def qa_prompt(question: str) -> str:
    """The prompt a model completes with its answer: ``"Question: ...\\nAnswer:"``.

    Example:
        >>> qa_prompt("What is the capital of Mongolia?")
        'Question: What is the capital of Mongolia?\\nAnswer:'
    """
    return QA_TEMPLATE.format(question=question, answer="").rstrip(" ")


def qa_text(question: str, answer: str) -> str:
    """A question with its answer in :data:`QA_TEMPLATE`.

    Example:
        >>> qa_text("What is the capital of Mongolia?", "Ulaanbaatar.")
        'Question: What is the capital of Mongolia?\\nAnswer: Ulaanbaatar.'
    """
    return QA_TEMPLATE.format(question=question, answer=answer)


def join_objects(objects: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C`` (the listing of :meth:`kg.Relation.statement_many`)."""
    if not objects:
        raise ValueError("`objects` is empty; an answer needs at least one object")
    if len(objects) == 1:
        return objects[0]
    return ", ".join(objects[:-1]) + " and " + objects[-1]


def answer_text(objects: Sequence[str]) -> str:
    """The answer to a (subject, relation) question: every object listed, ending with a period.

    Example:
        >>> answer_text(["Zulu", "English"])
        'Zulu and English.'
    """
    return join_objects(objects) + "."


def relation_label(relation: Relation) -> str:
    """A relation's name as words: ``official_language`` -> ``official language``."""
    return relation.name.replace("_", " ")


def question_templates(relation: Relation) -> list[str]:
    """The relation's question templates, or a generic one if the schema gives none."""
    return list(relation.questions) or [f"What is the {relation_label(relation)} of {{subject}}?"]


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
        answer = answer_text(objects)
        docs.extend(qa_text(q.format(subject=subject), answer) for q in question_templates(rel))
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
        >>> from kg import Schema, Triple
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
    frame: list[str] = [qa_prompt("?"), ABSTAIN, qa_text("?", ABSTAIN)]
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


# Syllables of made-up reading-document entities: disjoint from those of the evaluation's
# made-up out-of-KB subjects (grounded.data.groups), so no out-of-KB name is ever read here.
_READING_SYLLABLES = (
    "ab cor dex fim gon hul iks jor kel lum mox nir opa pim qua rul sen tok umb vor wix yal zeb"
).split()


def _made_up_name(rng: random.Random, real: set[str], avoid: str = "") -> str:
    """A made-up entity name: never a real entity's, and not ``avoid``.

    Names repeat across documents with other facts each time, on purpose: a document's
    answer can then only be read from its evidence, never remembered.
    """
    while True:
        name = "".join(rng.choice(_READING_SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = name.capitalize()
        if name.lower() not in real and name != avoid:
            return name


def reading_documents(graph: KnowledgeGraph, n: int, *, seed: int, k: int = 5) -> list[str]:
    """``n`` reading-comprehension documents about made-up entities.

    Each document is a grounded prompt (``Evidence:`` lines, ``Question:``, ``Answer:``)
    followed by the answer, which is copied from one evidence line. The entities are
    invented; their objects are real object strings of the relation (any subject's), so the
    model learns to copy every kind of answer it will meet, while no statement is true of a
    real entity. Distractor lines are other facts of the same made-up entity and the same
    relation of another made-up entity, as retrieval returns them.

    Args:
        graph: the knowledge graph (relations, templates, object strings).
        n: documents to write (0: none).
        seed: seed of every choice.
        k: evidence lines per document.

    Example:
        >>> from kg import Schema, Triple
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
    docs = []
    for _ in range(n):
        rel = rng.choice(asked)
        subject = _made_up_name(rng, real)
        other = _made_up_name(rng, real, avoid=subject)

        def objects(r: Relation) -> list[str]:
            m = min(rng.choice(sizes[r.name]), 3, len(pools[r.name]))
            return rng.sample(pools[r.name], m)

        answer = objects(rel)
        lines = [(rel.statement(subject, o)) for o in answer]
        lines.append(rel.statement(other, rng.choice(pools[rel.name])))
        others = [r for r in asked if r.name != rel.name]
        while len(lines) < k and others:
            r = rng.choice(others)
            lines.append(r.statement(rng.choice((subject, subject, other)), objects(r)[0]))
        lines = lines[: max(k, len(answer))]
        rng.shuffle(lines)
        question = (
            rel.question(subject, rng.randrange(len(rel.questions)))
            if rel.questions
            else (question_templates(rel)[0].format(subject=subject))
        )
        docs.append(f"{format_prompt(question, lines)} {answer_text(answer)}")
    return docs
