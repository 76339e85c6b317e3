"""The symbolic check: does the graph support, contradict, or say nothing about a claim?"""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.graph import KnowledgeGraph
from kg.normalize import normalize
from kg.types import CheckResult, EntityId


@dataclass(frozen=True)
class Check:
    """The graph's judgement of one (subject, relation, object) claim.

    Attributes:
        result: ``supported``, ``contradicted`` or ``unknown``.
        subject: the entity the claim's subject resolved to (None if unresolved).
        relation: the claim's relation.
        claimed: the object as claimed.
        kb_objects: what the graph holds for (subject, relation).
        reason: one sentence a person reads.
    """

    result: CheckResult
    subject: EntityId | None
    relation: str
    claimed: str
    kb_objects: tuple[EntityId, ...] = field(default=())
    reason: str = ""


def _matches(kg: KnowledgeGraph, claimed: str, kb_object: EntityId) -> bool:
    if claimed == kb_object or kb_object in kg.resolve(claimed):
        return True
    key = normalize(claimed)
    return bool(key) and (
        key == normalize(kb_object)
        or any(key == normalize(a) for a in kg.aliases.get(kb_object, ()))
    )


def check_claim(kg: KnowledgeGraph, subject: str, relation: str, obj: str) -> Check:
    """Judge ``(subject, relation, obj)`` against the graph.

    Names resolve through aliases, case- and accent-insensitively. A functional relation
    with another object contradicts; a many-valued relation contradicts only when marked
    ``closed`` in the schema (its list of objects is complete), else a missing object is
    ``unknown``. A subject naming several entities is supported if any supports it and
    contradicted only if all contradict; candidates without any fact of ``relation`` are set aside
    when another candidate has one.

    Raises:
        KeyError: ``relation`` is not in the schema.

    Example:
        >>> from kg.schema import Relation, Schema
        >>> from kg.types import Triple
        >>> kg = KnowledgeGraph([Triple("Australia", "capital", "Canberra")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> check_claim(kg, "australia", "capital", "Sydney").result
        'contradicted'
    """
    rel = kg.schema[relation]
    candidates = kg.resolve(subject)
    if not candidates:
        return Check(
            "unknown", None, relation, obj, (), f"{subject!r} is not an entity of the graph"
        )
    # A name shared by several entities (the country Mexico, a town called Mexico) is read as
    # every entity that has facts of this relation; the others cannot be what the claim means.
    with_relation = [s for s in candidates if kg.objects(s, relation)]
    checks = []
    for s in with_relation or candidates:
        kb_objects = tuple(kg.objects(s, relation))
        if not kb_objects:
            checks.append(
                Check("unknown", s, relation, obj, (), f"the graph has no {relation!r} for {s!r}")
            )
        elif any(_matches(kg, obj, o) for o in kb_objects):
            checks.append(
                Check(
                    "supported",
                    s,
                    relation,
                    obj,
                    kb_objects,
                    f"the graph holds {relation!r} of {s!r} = {obj!r}",
                )
            )
        elif rel.functional or rel.closed:
            kind = "functional" if rel.functional else "closed"
            checks.append(
                Check(
                    "contradicted",
                    s,
                    relation,
                    obj,
                    kb_objects,
                    f"{relation!r} is {kind} and the graph holds {list(kb_objects)} for {s!r}",
                )
            )
        else:
            checks.append(
                Check(
                    "unknown",
                    s,
                    relation,
                    obj,
                    kb_objects,
                    f"{relation!r} is many-valued and open: {obj!r} is not listed for {s!r}",
                )
            )
    for wanted in ("supported",):
        for c in checks:
            if c.result == wanted:
                return c
    if all(c.result == "contradicted" for c in checks):
        return checks[0]
    return next(c for c in checks if c.result == "unknown")
