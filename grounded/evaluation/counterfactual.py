"""The counterfactual group at evaluation (KAFT): evidence that states another object.

A counterfactual question's real facts about its pair are replaced, in the evidence every
evidence-reading variant is given, by the fact its group states
(:attr:`grounded.data.groups.EntityGroups.counterfactual_facts`); its answer is scored by
the same scorer against a graph that holds that fact: right when it follows the evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grounded.data.groups import EntityGroups
    from grounded.evaluation.questions import EvalQuestion
    from grounded.kb import KnowledgeBase
    from kg import KnowledgeGraph


def counterfactual_graph(graph: KnowledgeGraph, groups: EntityGroups) -> KnowledgeGraph | None:
    """``graph`` with each counterfactual pair's object replaced by the one its evidence
    states (what a counterfactual answer is scored against); None without such pairs."""
    from kg import KnowledgeGraph, Triple

    swaps = groups.counterfactual_objects()
    if not swaps:
        return None
    triples = [
        Triple(t.subject, t.relation, swaps[(t.subject, t.relation)])
        if (t.subject, t.relation) in swaps
        else t
        for t in graph.triples()
    ]
    return KnowledgeGraph(triples, graph.schema, graph.aliases, graph.entity_types)


def with_counterfactual_evidence(
    kb: KnowledgeBase, questions: list[EvalQuestion], evidence: list[list[Any]]
) -> list[list[Any]]:
    """``evidence`` with each counterfactual question's real facts about its pair replaced
    by the fact its group states (``gold`` holds that object): in the slot of the first real
    one, or first when the retriever missed it (the last item then drops out). The injected
    fact has index id -1: it reaches the model as text only.

    Example:
        >>> # a question about ("A", "capital") with gold ("Y",): "The capital of A is X."
        >>> # among the evidence becomes "The capital of A is Y."  # doctest: +SKIP
    """
    from grounded.retrieval import Evidence
    from kg import Triple

    out = []
    for q, items in zip(questions, evidence, strict=True):
        if q.group != "counterfactual":
            out.append(items)
            continue
        fake = Triple(q.subject, q.relation, q.gold[0])
        injected = Evidence(
            text=kb.graph.verbalize(fake), score=1.0, source="graph", kind="fact",
            triple=fake, id=-1, key=fake.key,
        )  # fmt: skip
        real = [
            i for i, e in enumerate(items)
            if e.triple is not None
            and (e.triple.subject, e.triple.relation) == (q.subject, q.relation)
        ]  # fmt: skip
        slot = real[0] if real else 0
        kept = [e for i, e in enumerate(items) if i not in set(real)]
        new = [*kept[:slot], injected, *kept[slot:]]
        out.append(new[: max(len(items), 1)])
    return out
