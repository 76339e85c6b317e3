"""The graph's decision on a reading of a claim: supported, contradicted or unknown.

Each claimed object is checked with :func:`kg.check_claim` and the checks are combined by
:func:`kg.check.judge_checks`, the one graph judge: with several objects ("A, B and C"), one
contradicted object refutes the claim, all supported support it, a listed object the graph
does not hold beside ones it does refutes it, anything else is unknown. A claimed object
that names a known entity of another type never contradicts ("Mongolia is located in Eastern
Asia", read with ``region`` whose objects are continents, is about a subregion; "The capital
of Mongolia is China" names a country): the graph leaves it unknown and the neural checker
judges it on retrieved evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from kg import Check, EntityId, Triple, check_claim
from kg.check import judge_checks
from kg.claims import ClaimReader, Reading
from kg.types import CheckResult


@dataclass(frozen=True)
class GraphDecision:
    """What the graph says about one reading.

    Attributes:
        result: ``supported``, ``contradicted`` or ``unknown``.
        reading: the reading that was checked.
        relation: the relation checked.
        checks: one :class:`kg.Check` per claimed object.
        facts: the graph's facts for the checked (subject, relation) pairs: the evidence.
        reason: one sentence a person reads.
        incompatible: claimed objects, not supported, that name an entity of a type the
            relation cannot take (a contradicted check on one is set to ``unknown``).
    """

    result: CheckResult
    reading: Reading
    relation: str
    checks: tuple[Check, ...]
    facts: tuple[Triple, ...]
    reason: str
    incompatible: tuple[str, ...] = ()

    @property
    def silent(self) -> bool:
        """The graph read the claim fully, and no fact it holds decides the claim.

        True when the result is ``unknown``, every check resolved its subject, and for each
        claimed object the graph either has no fact of the relation for that subject, or the
        relation is many-valued and open and does not list the object. An object that names
        an entity of the wrong type (the claim was likely misread) is not silence.
        """
        if self.result != "unknown" or not self.checks:
            return False
        return not self.incompatible and all(c.subject is not None for c in self.checks)

    @property
    def subject(self) -> EntityId | None:
        """The entity the checks resolved the subject to (the first that did)."""
        return next((c.subject for c in self.checks if c.subject is not None), None)


def decide(reader: ClaimReader, reading: Reading) -> GraphDecision:
    """Check every object of ``reading`` against the graph and combine the results.

    Raises:
        KeyError: the reading's relation is not in the schema.
        ValueError: the reading has no objects.

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema
        >>> kg = KnowledgeGraph([Triple("Australia", "capital", "Canberra")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> reader = ClaimReader(kg)
        >>> decide(reader, reader.read("The capital of Australia is Sydney.")[0]).result
        'contradicted'
    """
    if not reading.objects:
        raise ValueError(f"`reading` has no objects to check: {reading}")
    kg = reader.kg
    checks = []
    incompatible = []
    # An answer read in the context of its question (or of a given pair) has its subject and
    # relation from the question: when the graph holds the pair's objects, an entity of a
    # type the relation cannot take is not one of them. Not when the graph is silent on the
    # pair: a value it lacks ("Czech" for a demonym) may share its name with an entity of
    # another type (the language). A statement's incompatible object is more likely a
    # misreading.
    answered = reading.via in ("question", "given")
    for obj in reading.objects:
        check = check_claim(kg, reading.subject, reading.relation, obj)
        if check.result != "supported" and reader.compatible(reading.relation, obj) is False:
            incompatible.append(obj)
        if answered and obj in incompatible and check.subject is not None and check.kb_objects:
            check = Check(
                "contradicted",
                check.subject,
                reading.relation,
                obj,
                check.kb_objects,
                f"{obj!r} names an entity that cannot be a {reading.relation!r} object, so it "
                "does not answer the question",
            )
        elif check.result == "contradicted" and obj in incompatible:
            check = Check(
                "unknown",
                check.subject,
                reading.relation,
                obj,
                check.kb_objects,
                f"{obj!r} names an entity that cannot be a {reading.relation!r} object",
            )
        checks.append(check)
    # Incompatible objects of a statement are likely misreadings: the list rule spares them.
    judgement = judge_checks(checks, exempt=() if answered else incompatible)
    checks, result, reason = list(judgement.checks), judgement.result, judgement.reason
    facts: dict[str, Triple] = {}
    for c in checks:
        if c.subject is not None:
            for t in kg.facts(c.subject, c.relation):
                facts.setdefault(t.key, t)
    return GraphDecision(
        result,
        reading,
        reading.relation,
        tuple(checks),
        tuple(facts.values()),
        reason,
        tuple(incompatible),
    )
