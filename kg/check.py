"""The symbolic check: does the graph support, contradict, or say nothing about a claim?

:func:`check_claim` judges one object; :func:`judge_objects` (and :func:`judge_checks` for
checks a caller adjusted) combines the checks of every object a claim or an answer states.
Every path that judges against the graph (the evaluator, the feedback judge, the verifier,
the checker's training labels) goes through these two, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
        ambiguous: the entities the subject's name means when several hold facts of the
            relation and they disagree on the claim (the result is then ``unknown``).
    """

    result: CheckResult
    subject: EntityId | None
    relation: str
    claimed: str
    kb_objects: tuple[EntityId, ...] = field(default=())
    reason: str = ""
    ambiguous: tuple[EntityId, ...] = ()


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
    ``unknown``. A subject naming several entities is read as those that have facts of
    ``relation`` (the others are set aside); when several have and they disagree (one
    supports, another contradicts), the claim is ``unknown`` and ``ambiguous`` names them.

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
    if len(with_relation) > 1 and len({c.result for c in checks}) > 1:
        # A merged name ("Mongolia" and a look-alike "Mоngolia", kept with
        # --allow-alias-merge) whose entities disagree: no reading of it can be trusted.
        return Check(
            "unknown",
            None,
            relation,
            obj,
            tuple(dict.fromkeys(o for c in checks for o in c.kb_objects)),
            f"ambiguous: {subject!r} names {len(with_relation)} entities with {relation!r} "
            f"facts ({', '.join(repr(s) for s in with_relation[:4])}) that disagree on {obj!r}",
            tuple(with_relation),
        )
    for wanted in ("supported",):
        for c in checks:
            if c.result == wanted:
                return c
    if all(c.result == "contradicted" for c in checks):
        return checks[0]
    return next(c for c in checks if c.result == "unknown")


@dataclass(frozen=True)
class Judgement:
    """The graph's combined judgement of every object a claim states.

    Attributes:
        result: ``contradicted`` when any object is contradicted, ``supported`` when all are
            supported, ``unknown`` otherwise.
        checks: one :class:`Check` per object, in order (after the list rule).
        reason: one sentence a person reads.
    """

    result: CheckResult
    checks: tuple[Check, ...]
    reason: str

    @property
    def supported_objects(self) -> tuple[str, ...]:
        """The claimed objects the graph holds."""
        return tuple(c.claimed for c in self.checks if c.result == "supported")

    @property
    def unsupported_objects(self) -> tuple[str, ...]:
        """The claimed objects the graph does not hold."""
        return tuple(c.claimed for c in self.checks if c.result != "supported")


def judge_checks(checks: Sequence[Check], *, exempt: Collection[str] = ()) -> Judgement:
    """Combine per-object checks into one judgement.

    The list rule: when a claim lists several objects and the graph holds the subject's list
    for the relation, an object the graph does not hold is contradicted, even for an open
    many-valued relation ("China, Russia and Atlantis" for the borders of Mongolia): a listed
    answer that adds one invented item is a hallucination. A single object of an open
    relation that the graph does not list stays ``unknown``. Objects in ``exempt`` (a
    caller's likely misreadings) keep their check.

    Raises:
        ValueError: ``checks`` is empty.
    """
    if not checks:
        raise ValueError("`checks` is empty; a judgement needs at least one claimed object")
    if len(checks) > 1 and any(c.result == "supported" for c in checks):
        checks = [
            Check(
                "contradicted",
                c.subject,
                c.relation,
                c.claimed,
                c.kb_objects,
                f"the graph lists {list(c.kb_objects)} as {c.relation!r} of {c.subject!r}; "
                f"{c.claimed!r} is not among them",
            )
            if c.result == "unknown"
            and c.subject is not None
            and c.kb_objects
            and c.claimed not in exempt
            else c
            for c in checks
        ]
    results = [c.result for c in checks]
    if "contradicted" in results:
        result: CheckResult = "contradicted"
        reason = next(c.reason for c in checks if c.result == "contradicted")
    elif all(r == "supported" for r in results):
        result = "supported"
        reason = "; ".join(dict.fromkeys(c.reason for c in checks))
    else:
        result = "unknown"
        reason = next(c.reason for c in checks if c.result == "unknown")
    return Judgement(result, tuple(checks), reason)


def judge_objects(
    kg: KnowledgeGraph, subject: str, relation: str, objects: Sequence[str]
) -> Judgement:
    """Judge every object of a claim about ``(subject, relation)`` (see :func:`judge_checks`).

    Raises:
        KeyError: ``relation`` is not in the schema.
        ValueError: ``objects`` is empty.

    Example:
        >>> from kg.schema import Relation, Schema
        >>> from kg.types import Triple
        >>> kg = KnowledgeGraph([Triple("Mongolia", "borders", "China"),
        ...     Triple("Mongolia", "borders", "Russia")],
        ...     Schema([Relation("borders", "{subject} borders {object}.", functional=False)]))
        >>> judge_objects(kg, "Mongolia", "borders", ["China", "Russia"]).result
        'supported'
        >>> judge_objects(kg, "Mongolia", "borders", ["China", "Atlantis"]).result
        'contradicted'
        >>> judge_objects(kg, "Mongolia", "borders", ["Atlantis"]).result
        'unknown'
    """
    return judge_checks([check_claim(kg, subject, relation, o) for o in objects])
