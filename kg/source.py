"""`KnowledgeSource`: the raw material of a knowledge base, before graph and index.

:func:`review_source` looks over a source before it is built and records what a person
should know in its :class:`LoadReport`: names that merge entities, mixed-script names,
relations without question templates, typed triples that break their relation's types.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kg.linker import name_key
from kg.normalize import mixed_script
from kg.schema import Schema
from kg.types import EntityId, Passage, Triple

MAX_LISTED = 100
"""Longest list of one kind of finding kept in a report (the count is always kept)."""
SHOWN = 10
"""Findings of one kind written out as warnings; the rest are counted."""


@dataclass
class LoadReport:
    """What loading kept, dropped and flagged, for the build summary and manifest.

    Attributes:
        merges: names that point at several entities (see :func:`review_source`), each
            ``{"name", "entities", "kind", "where"}``; at most :data:`MAX_LISTED` of each
            kind, ``merge_counts`` has the count of each kind.
        mixed_script: names with a word that mixes Latin with Cyrillic or Greek letters.
        relations_without_questions: relations left out of training and evaluation
            questions, since they have no question template.
        type_violations: typed triples whose entity has another type than the relation
            declares, each ``{"triple", "role", "type", "expected"}`` (at most
            :data:`MAX_LISTED`; ``type_violation_count`` has them all).
        warnings: one line per finding a person should read, printed by ``kb build``.
    """

    files: list[str] = field(default_factory=list)
    lines_read: int = 0
    duplicates_dropped: int = 0
    # functional relations where one subject has several objects: (subject, relation, objects)
    multi_object_functional: list[tuple[str, str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merges: list[dict] = field(default_factory=list)
    merge_counts: dict[str, int] = field(default_factory=dict)
    mixed_script: list[str] = field(default_factory=list)
    relations_without_questions: list[str] = field(default_factory=list)
    type_violations: list[dict] = field(default_factory=list)
    type_violation_count: int = 0
    warnings: list[str] = field(default_factory=list)
    reviewed: bool = field(default=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "lines_read": self.lines_read,
            "duplicates_dropped": self.duplicates_dropped,
            "multi_object_functional": [
                {"subject": s, "relation": r, "objects": o}
                for s, r, o in self.multi_object_functional
            ],
            "notes": self.notes,
            "merges": self.merges,
            "merge_counts": self.merge_counts,
            "mixed_script": self.mixed_script,
            "relations_without_questions": self.relations_without_questions,
            "type_violations": self.type_violations,
            "type_violation_count": self.type_violation_count,
            "warnings": self.warnings,
        }


@dataclass
class KnowledgeSource:
    """Triples, their schema, aliases and optional passages: everything `kb build` consumes.

    Args:
        triples: deduplicated facts.
        schema: every relation used by ``triples``.
        aliases: extra surface names per entity (the entity's own name is implicit).
        passages: optional free-text passages indexed beside the facts.
        name: a short name of the source (``countries``), recorded in manifests.
        report: what the loader or converter kept, dropped and flagged.
        entity_types: entity → type, from an entities file (``--entities``); optional.
    """

    triples: list[Triple]
    schema: Schema
    aliases: dict[EntityId, list[str]] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    name: str = "custom"
    report: LoadReport = field(default_factory=LoadReport)
    entity_types: dict[EntityId, str] = field(default_factory=dict)


def entity_ids(
    triples: Iterable[Triple], schema: Schema, entity_types: Mapping[EntityId, str]
) -> set[EntityId]:
    """The names in ``triples`` that are entities rather than literal values.

    An entity is a subject of some fact, a name given a type in ``entity_types``, or an
    object of a relation whose schema declares an ``object_type``. Any other object
    ("55.85", "1990") is a value: it is matched as text but not counted as an entity.
    """
    out = set(entity_types)
    for t in triples:
        out.add(t.subject)
        if t.relation in schema and schema[t.relation].object_type:
            out.add(t.object)
    return out


def review_source(
    source: KnowledgeSource,
    *,
    where: Mapping[tuple[str, str], str] | None = None,
) -> list[dict]:
    """Record in ``source.report`` what a person should know before the source is built.

    Findings (each also one line in ``report.warnings``):

    - **merges**: a name that points at several entities after normalisation (case,
      accents, NFKC width, invisible characters, look-alike letters):

      - ``alias``: an alias of one entity is the name of another entity (``Russia`` given
        as an alias of Mongolia). Such a merge makes every mention of the other entity
        ambiguous, so :func:`kg.loaders.load_source` refuses it unless told to allow it;
      - ``names``: two entity names are the same name (``Ｍｏｎｇｏｌｉａ`` and
        ``Mongolia``);
      - ``shared``: one alias given to several entities (a deliberate ambiguity, listed).

    - **mixed_script**: names with a word mixing Latin with Cyrillic or Greek letters;
    - **relations_without_questions**: relations that no question will ask about;
    - **type_violations**: a triple whose subject or object has a type (``entity_types``)
      other than the one its relation declares.

    Args:
        source: the source to review; its ``report`` is filled in place.
        where: ``("alias", entity + "\\t" + alias)`` or ``("entity", name)`` → ``file:line``
            where it was read, for the messages.

    Returns:
        The ``alias`` merges (the ones :func:`kg.loaders.load_source` refuses by default).
    """
    where = where or {}
    report = source.report
    found: list[str] = []
    entities = entity_ids(source.triples, source.schema, source.entity_types)
    by_key: dict[tuple, set[EntityId]] = defaultdict(set)
    for e in entities:
        by_key[name_key(e)].add(e)
    merges: list[dict] = []
    for group in sorted(by_key.values(), key=sorted):
        if len(group) > 1:
            names = sorted(group)
            merges.append(
                {
                    "name": names[0],
                    "entities": names,
                    "kind": "names",
                    "where": [where[("entity", n)] for n in names if ("entity", n) in where],
                }
            )
    owners: dict[tuple, set[EntityId]] = defaultdict(set)
    alias_merges: list[dict] = []
    # An alias that is a value of the entity's own facts ("Carbon symbol C", alias "C") names
    # that value, not another thing: no conflict, unless the value is itself a subject or
    # was given a type in the entities file.
    subjects = {t.subject for t in source.triples}
    own_values: dict[EntityId, set[EntityId]] = defaultdict(set)
    for t in source.triples:
        if t.object not in subjects and t.object not in source.entity_types:
            own_values[t.subject].add(t.object)
    for entity, aliases in source.aliases.items():
        for alias in aliases:
            key = name_key(alias)
            owners[key].add(entity)
            others = sorted(by_key.get(key, set()) - {entity} - own_values[entity])
            if others:
                loc = where.get(("alias", f"{entity}\t{alias}"))
                alias_merges.append(
                    {
                        "name": alias,
                        "entities": sorted({entity, *others}),
                        "kind": "alias",
                        "where": [loc] if loc else [],
                        "alias_of": entity,
                    }
                )
    for key, group in owners.items():
        named = by_key.get(key, set())
        if len(group) > 1 and not (named - group):
            alias = next(a for e in sorted(group) for a in source.aliases[e] if name_key(a) == key)
            merges.append({"name": alias, "entities": sorted(group), "kind": "shared", "where": []})
    every = alias_merges + merges
    kinds = ("alias", "names", "shared")
    report.merge_counts = {k: sum(1 for m in every if m["kind"] == k) for k in kinds}
    report.merges = [m for k in kinds for m in [m for m in every if m["kind"] == k][:MAX_LISTED]]
    for kind in kinds:
        listed = [m for m in every if m["kind"] == kind]
        for m in listed[:SHOWN] if kind != "shared" else []:
            at = f" ({', '.join(m['where'])})" if m["where"] else ""
            if kind == "alias":
                others = ", ".join(repr(e) for e in m["entities"] if e != m["alias_of"])
                found.append(
                    f"alias {m['name']!r} of {m['alias_of']!r} is also the entity {others}{at}: "
                    "the name now means both"
                )
            else:
                found.append(
                    f"entity names {m['entities']} are the same name after normalisation{at}: "
                    "the linker cannot tell them apart"
                )
        if kind == "shared" and listed:
            found.append(
                f"{len(listed)} alias(es) are shared by several entities (e.g. "
                f"{listed[0]['name']!r}: {listed[0]['entities']}): they link to all of them"
            )
        elif len(listed) > SHOWN:
            found.append(f"... and {len(listed) - SHOWN} more {kind} merges (manifest.json)")

    names = sorted(entities | set(source.aliases))
    names += sorted({a for al in source.aliases.values() for a in al} - set(names))
    report.mixed_script = [n for n in names if mixed_script(n)]
    if report.mixed_script:
        shown = ", ".join(repr(n) for n in report.mixed_script[:10])
        found.append(
            f"{len(report.mixed_script)} name(s) mix Latin with Cyrillic or Greek letters "
            f"({shown}); they are matched as if written in Latin letters: check them"
        )
    report.mixed_script = report.mixed_script[:MAX_LISTED]

    used = {t.relation for t in source.triples}
    report.relations_without_questions = [
        r.name for r in source.schema if not r.questions and (r.name in used or not used)
    ]
    if report.relations_without_questions:
        found.append(
            f"relation(s) {report.relations_without_questions} have no question templates: "
            "they are left out of training and evaluation questions (add `questions`)"
        )

    violations = []
    if source.entity_types:
        for t in source.triples:
            if t.relation not in source.schema:
                continue
            rel = source.schema[t.relation]
            for role, name, expected in (
                ("subject", t.subject, rel.subject_type),
                ("object", t.object, rel.object_type),
            ):
                have = source.entity_types.get(name)
                if expected and have and have != expected:
                    violations.append(
                        {"triple": t.key, "role": role, "type": have, "expected": expected}
                    )
    report.type_violation_count = len(violations)
    report.type_violations = violations[:MAX_LISTED]
    if violations:
        v = violations[0]
        found.append(
            f"{len(violations)} triple(s) break their relation's types, e.g. "
            f"{v['triple'].replace(chr(9), ' / ')!r}: the {v['role']} has type {v['type']!r}, "
            f"the relation wants {v['expected']!r} (kept; fix the triple or the entities file)"
        )
    report.warnings = found
    report.reviewed = True
    return alias_merges
