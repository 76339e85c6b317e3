"""The evaluation questions: one per (subject, relation) pair of each entity group.

Every variant answers the same list, built deterministically from (kb, groups, seed). A
pair's question is one of its relation's question templates, drawn with the seed, so a
large question set covers the phrasing variety the templates have. Where a relation has
held-out templates (never seen in training), half of its questions use them (``phrasing``
``heldout``), so the report can tell reading from template matching.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from grounded.data.groups import GROUPS

if TYPE_CHECKING:
    from grounded.data.groups import EntityGroups
    from kg import KnowledgeGraph


@dataclass(frozen=True)
class EvalQuestion:
    """A question about ``(subject, relation)``; ``gold`` holds the KB objects (none: out of
    the KB, where the right answer is the abstention phrase; in the counterfactual group,
    the object its evidence states instead)."""

    id: int
    group: str
    subject: str
    relation: str
    question: str
    gold: tuple[str, ...]
    phrasing: str = "train"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gold"] = list(self.gold)
        return out


def build_questions(
    graph: KnowledgeGraph, groups: EntityGroups, *, per_group: int = 0, seed: int = 0
) -> list[EvalQuestion]:
    """The evaluation questions of ``groups``, ``per_group`` at most from each group.

    Args:
        graph: the knowledge graph (templates and gold objects).
        groups: the entity groups the models were trained with.
        per_group: questions drawn per group (a seeded sample of its pairs); 0 takes all.
        seed: seed of the sample and of the template choice.

    Raises:
        ValueError: ``per_group`` < 0, or a pair's relation is missing from the schema or has
            no question template.

    Example:
        >>> qs = build_questions(kb.graph, groups, per_group=50)  # doctest: +SKIP
        >>> qs[0].group, qs[0].question  # doctest: +SKIP
        ('seen', 'What is the capital of Mongolia?')
    """
    if per_group < 0:
        raise ValueError(f"`per_group` must be >= 0 (0: every pair), got {per_group}")
    rng = random.Random(f"grounded-eval-questions-{seed}")
    out: list[EvalQuestion] = []
    counterfactual = groups.counterfactual_objects()
    for group in GROUPS:
        pairs = sorted(groups.pairs(group))
        if per_group and len(pairs) > per_group:
            pairs = sorted(rng.sample(pairs, per_group))
        for subject, relation in pairs:
            if relation not in graph.schema:
                raise ValueError(
                    f"group {group!r} asks about relation {relation!r}, which the knowledge "
                    "base's schema lacks; evaluate against the KB the models were trained on"
                )
            templates = graph.schema[relation].questions
            if not templates:
                raise ValueError(
                    f"relation {relation!r} has no question template; add one to relations.json"
                )
            held = groups.templates(relation, len(templates), "heldout")
            phrasing = "heldout" if held and rng.random() < 0.5 else "train"
            choices = held if phrasing == "heldout" else groups.templates(relation, len(templates))
            question = graph.schema[relation].question(subject, rng.choice(choices))
            if group == "counterfactual":  # the object its evidence states instead
                gold = (counterfactual[(subject, relation)],)
            else:
                gold = tuple(graph.objects(subject, relation)) if group != "out_of_kb" else ()
            out.append(EvalQuestion(len(out), group, subject, relation, question, gold, phrasing))
    return out
