"""`KnowledgeGraph`: facts on a networkx MultiDiGraph, with queries and verbalization."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx

from kg.io import atomic_write_json
from kg.linker import EntityLinker
from kg.manifest import check_record, read_json
from kg.schema import Schema
from kg.source import KnowledgeSource
from kg.types import EntityId, Triple

GRAPH_FORMAT_VERSION = 2
"""2: edge endpoints are written ``from``/``to``, so an edge's ``source`` (the provenance of
the fact: ``document#sentence``) is kept; 1 wrote them ``source``/``target``, which
overwrote it."""
_ENDPOINTS = {"source": "from", "target": "to"}


class KnowledgeGraph:
    """Facts as a directed multigraph: nodes are entities, edges are relations (keyed by name).

    Args:
        triples: the facts (duplicates collapse).
        schema: every relation used by ``triples``.
        aliases: surface names per entity, used by :attr:`linker` and :meth:`resolve`.
        entity_types: entity → type (an entities file); see :meth:`entity_type`.

    Raises:
        ValueError: a triple's relation is missing from the schema.

    Example:
        >>> from kg.schema import Relation, Schema
        >>> schema = Schema([Relation("capital", "The capital of {subject} is {object}.")])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], schema)
        >>> g.objects("Mongolia", "capital")
        ['Ulaanbaatar']
        >>> g.verbalize(g.facts("Mongolia")[0])
        'The capital of Mongolia is Ulaanbaatar.'
    """

    def __init__(
        self,
        triples: Iterable[Triple],
        schema: Schema,
        aliases: dict[EntityId, list[str]] | None = None,
        entity_types: Mapping[EntityId, str] | None = None,
    ) -> None:
        self.schema = schema
        self.aliases: dict[EntityId, list[str]] = {k: list(v) for k, v in (aliases or {}).items()}
        self.entity_types: dict[EntityId, str] = dict(entity_types or {})
        self.graph = nx.MultiDiGraph()
        for t in triples:
            if t.relation not in schema:
                raise ValueError(
                    f"triple {t.key!r} uses relation {t.relation!r}, which is not in the schema "
                    f"(known: {sorted(schema.names)})"
                )
            self.graph.add_edge(
                t.subject,
                t.object,
                key=t.relation,
                source=t.source,
                confidence=t.confidence,
                extractor=t.extractor,
            )
        self._linker: EntityLinker | None = None
        self._pools: dict[str, tuple[EntityId, ...]] | None = None

    @classmethod
    def from_source(cls, source: KnowledgeSource) -> KnowledgeGraph:
        """The graph of a source; entities named only by passages are linkable too."""
        aliases = {k: list(v) for k, v in source.aliases.items()}
        for p in source.passages:
            for e in p.entities:
                aliases.setdefault(e, [])
        return cls(source.triples, source.schema, aliases, source.entity_types)

    # -- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of facts."""
        return self.graph.number_of_edges()

    def __contains__(self, entity: object) -> bool:
        return entity in self.graph

    @property
    def entities(self) -> list[EntityId]:
        """Every node: entities and literal values alike (see :meth:`is_entity`)."""
        return list(self.graph.nodes)

    def entity_type(self, entity: EntityId) -> str | None:
        """The type of ``entity``: from the entities file, else from the schema.

        The schema gives a type when ``entity`` is the subject of a relation with a
        ``subject_type`` or the object of one with an ``object_type``. None when neither
        says.
        """
        if entity in self.entity_types:
            return self.entity_types[entity]
        if entity not in self.graph:
            return None
        for _, _, r in self.graph.out_edges(entity, keys=True):
            if self.schema[r].subject_type:
                return self.schema[r].subject_type
        for _, _, r in self.graph.in_edges(entity, keys=True):
            if self.schema[r].object_type:
                return self.schema[r].object_type
        return None

    def _all_types(self) -> dict[EntityId, str]:
        """:meth:`entity_type` of every typed name, in one pass over the edges."""
        from_subject: dict[EntityId, str] = {}
        from_object: dict[EntityId, str] = {}
        for s, o, r in self.graph.edges(keys=True):
            rel = self.schema[r]
            if rel.subject_type:
                from_subject.setdefault(s, rel.subject_type)
            if rel.object_type:
                from_object.setdefault(o, rel.object_type)
        return {**from_object, **from_subject, **self.entity_types}

    @property
    def types(self) -> dict[str, list[EntityId]]:
        """Type → its entities (sorted), over every typed node and entities-file entry."""
        out: dict[str, list[EntityId]] = {}
        for e, kind in self._all_types().items():
            out.setdefault(kind, []).append(e)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def is_entity(self, name: EntityId) -> bool:
        """True for an entity, False for a literal value or an unknown name.

        An entity is a subject of some fact, or a name with a type (entities file, or the
        object of a relation that declares an ``object_type``); any other object
        ("55.85", "1990") is a literal value.
        """
        if name in self.entity_types:
            return True
        if name not in self.graph:
            return False
        return self.graph.out_degree(name) > 0 or self.entity_type(name) is not None

    def _triple(self, s: str, o: str, r: str, data: dict) -> Triple:
        return Triple(s, r, o, data.get("source"), data.get("confidence"), data.get("extractor"))

    def triples(self) -> list[Triple]:
        """Every fact, in insertion order."""
        return [self._triple(s, o, r, d) for s, o, r, d in self.graph.edges(keys=True, data=True)]

    def fact(self, subject: EntityId, relation: str, obj: EntityId) -> Triple | None:
        """The fact with its provenance (source, confidence, extractor); None if absent."""
        data = self.graph.get_edge_data(subject, obj, key=relation)
        return None if data is None else self._triple(subject, obj, relation, data)

    def has_fact(self, subject: EntityId, relation: str, obj: EntityId) -> bool:
        return self.graph.has_edge(subject, obj, key=relation)

    def objects(self, subject: EntityId, relation: str) -> list[EntityId]:
        """Objects of ``(subject, relation)``, in insertion order; ``[]`` if none."""
        if subject not in self.graph:
            return []
        return [o for _, o, r in self.graph.out_edges(subject, keys=True) if r == relation]

    def subjects(self, relation: str, obj: EntityId) -> list[EntityId]:
        """Subjects that have ``obj`` as object of ``relation``."""
        if obj not in self.graph:
            return []
        return [s for s, _, r in self.graph.in_edges(obj, keys=True) if r == relation]

    def facts(self, subject: EntityId | None = None, relation: str | None = None) -> list[Triple]:
        """Facts whose subject (and relation) match; both None gives every fact."""
        if subject is None:
            edges = self.graph.edges(keys=True, data=True)
        elif subject in self.graph:
            edges = self.graph.out_edges(subject, keys=True, data=True)
        else:
            return []
        return [self._triple(s, o, r, d) for s, o, r, d in edges if relation in (None, r)]

    def object_pool(self, relation: str) -> tuple[EntityId, ...]:
        """The objects of the right type for ``relation``, sorted: its own objects, plus every
        entity of its ``object_type`` (objects of relations with that object type, subjects
        of relations with that subject type, entities of that type in the entities file).
        Negatives, swaps and type checks draw from it.

        Raises:
            KeyError: ``relation`` is not in the schema.

        Example:
            >>> from kg.schema import Relation, Schema
            >>> schema = Schema([
            ...     Relation("capital", "The capital of {subject} is {object}.",
            ...              subject_type="country", object_type="city"),
            ...     Relation("largest_city", "The largest city of {subject} is {object}.",
            ...              object_type="city")])
            >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar"),
            ...     Triple("Australia", "largest_city", "Sydney")], schema)
            >>> g.object_pool("capital")
            ('Sydney', 'Ulaanbaatar')
        """
        rel = self.schema[relation]
        if self._pools is None:
            by_relation: dict[str, set[EntityId]] = {r.name: set() for r in self.schema}
            by_type: dict[str, set[EntityId]] = {}
            for s, o, r in self.graph.edges(keys=True):
                by_relation[r].add(o)
                r_def = self.schema[r]
                if r_def.object_type:
                    by_type.setdefault(r_def.object_type, set()).add(o)
                if r_def.subject_type:
                    by_type.setdefault(r_def.subject_type, set()).add(s)
            for entity, kind in self.entity_types.items():  # the user's entities file
                by_type.setdefault(kind, set()).add(entity)
            self._pools = {
                r.name: tuple(sorted(by_relation[r.name] | by_type.get(r.object_type or "", set())))
                for r in self.schema
            }
        return self._pools[rel.name]

    def facts_about(self, entity: EntityId) -> list[Triple]:
        """Facts where ``entity`` is subject or object."""
        if entity not in self.graph:
            return []
        out = self.graph.out_edges(entity, keys=True, data=True)
        inc = self.graph.in_edges(entity, keys=True, data=True)
        return [self._triple(s, o, r, d) for s, o, r, d in (*out, *inc)]

    def neighbourhood(self, entity: EntityId, hops: int = 1) -> list[Triple]:
        """Facts within ``hops`` edges of ``entity``, in either direction."""
        return self.subgraph([entity], hops=hops).triples()

    def subgraph(self, entities: Iterable[EntityId], hops: int = 1) -> KnowledgeGraph:
        """The k-hop neighbourhood of ``entities`` (edges in both directions) as a new graph.

        The entities within ``hops`` edges of any of ``entities``, following edges either
        way (``nx.ego_graph`` on an undirected view), and every fact among them. Entities
        not in the graph are skipped.

        Raises:
            ValueError: ``hops`` is negative.
        """
        if hops < 0:
            raise ValueError(f"`hops` must be >= 0, got {hops}")
        # A view, not a copy: ego_graph(..., undirected=True) would copy the whole graph.
        both_ways = self.graph.to_undirected(as_view=True)
        keep: set[EntityId] = set()
        for e in entities:
            if e in self.graph:
                keep.update(nx.ego_graph(both_ways, e, radius=hops))
        sub = self.graph.subgraph(keep)
        triples = [self._triple(s, o, r, d) for s, o, r, d in sub.edges(keys=True, data=True)]
        return KnowledgeGraph(
            triples,
            self.schema,
            {e: self.aliases.get(e, []) for e in keep},
            {e: self.entity_types[e] for e in keep if e in self.entity_types},
        )

    # -- text ----------------------------------------------------------------------------
    def verbalize(self, triple: Triple) -> str:
        """The fact as a sentence from its relation's template."""
        return self.schema[triple.relation].statement(triple.subject, triple.object)

    def describe(self, entity: EntityId) -> list[str]:
        """One sentence per (relation) of ``entity``, many-valued objects joined."""
        by_rel: dict[str, list[str]] = {}
        for t in self.facts(entity):
            by_rel.setdefault(t.relation, []).append(t.object)
        return [self.schema[r].statement_many(entity, objs) for r, objs in by_rel.items()]

    @property
    def linker(self) -> EntityLinker:
        """An :class:`EntityLinker` over every entity and its aliases (built on first use)."""
        if self._linker is None:
            names = {e: self.aliases.get(e, []) for e in self.graph.nodes}
            for e, extra in self.aliases.items():
                names.setdefault(e, extra)
            for e in self.entity_types:
                names.setdefault(e, [])
            self._linker = EntityLinker(names)
        return self._linker

    def resolve(self, name: str) -> tuple[EntityId, ...]:
        """Entities whose name or alias equals ``name`` (case- and accent-insensitive; names
        of one or two characters and common words need their exact case, see
        :mod:`kg.linker`)."""
        found = self.linker.lookup(name)
        if name in self.graph and name not in found:
            found = (name, *found)
        return found

    def stats(self) -> dict:
        """Counts of facts, entities, values and per-relation facts and subjects.

        ``entities`` counts the nodes that are entities (:meth:`is_entity`: subjects, and
        objects with a type from the entities file or the schema); ``values`` counts the
        other nodes (literal objects such as "55.85"), so a table of numbers does not
        inflate the entity count. ``types`` counts entities per type.
        """
        rel_facts = Counter(r for _, _, r in self.graph.edges(keys=True))
        subjects_of: dict[str, set[EntityId]] = {}
        for s, _, r in self.graph.edges(keys=True):
            subjects_of.setdefault(r, set()).add(s)
        rel_subjects = {r: len(v) for r, v in subjects_of.items()}
        degrees = [d for _, d in self.graph.degree()]
        all_types = self._all_types()
        entities = {s for v in subjects_of.values() for s in v}
        entities |= {e for e in all_types if e in self.graph}
        nodes = self.graph.number_of_nodes()
        return {
            "facts": len(self),
            "entities": len(entities),
            "values": nodes - len(entities),
            "nodes": nodes,
            "types": dict(
                sorted(Counter(v for e, v in all_types.items() if e in self.graph).items())
            ),
            "relations": len(self.schema),
            "aliases": sum(len(v) for v in self.aliases.values()),
            "per_relation": {
                r: {
                    "facts": rel_facts.get(r, 0),
                    "subjects": rel_subjects.get(r, 0),
                    "functional": self.schema[r].functional,
                }
                for r in self.schema.names
            },
            "max_degree": max(degrees, default=0),
            "mean_degree": (sum(degrees) / len(degrees)) if degrees else 0.0,
            "provenance": self.provenance(),
        }

    def provenance(self) -> dict:
        """Where the facts came from: counts by extractor and by confidence band.

        ``by_extractor`` counts facts per extractor (``none``: given as triples, not read
        from a document); ``by_confidence`` counts facts per band of 0.1 (``0.9-1.0``, ...;
        ``none`` without a confidence); ``with_source`` counts facts that name a source.
        """
        by_extractor: Counter[str] = Counter()
        by_confidence: Counter[str] = Counter()
        with_source = 0
        for _, _, data in self.graph.edges(data=True):
            by_extractor[data.get("extractor") or "none"] += 1
            c = data.get("confidence")
            if c is None:
                by_confidence["none"] += 1
            else:
                lo = min(int(c * 10), 9) / 10
                by_confidence[f"{lo:.1f}-{lo + 0.1:.1f}"] += 1
            with_source += bool(data.get("source"))
        return {
            "by_extractor": dict(sorted(by_extractor.items())),
            "by_confidence": dict(sorted(by_confidence.items(), reverse=True)),
            "with_source": with_source,
        }

    # -- persistence (node-link JSON; never pickle) -----------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``graph.json``: node-link data plus schema and aliases."""
        data = nx.node_link_data(self.graph, edges="edges", **_ENDPOINTS)
        return atomic_write_json(
            path,
            {
                "format_version": GRAPH_FORMAT_VERSION,
                "graph": data,
                "schema": self.schema.to_dict(),
                "aliases": self.aliases,
                "entity_types": self.entity_types,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeGraph:
        """Read ``graph.json`` written by :meth:`save`.

        Raises:
            ValueError: not a graph file, or written by a newer grounded.
        """
        path = Path(path)
        data = read_json(path)
        if "graph" not in data or "schema" not in data:
            raise ValueError(f"{path} is not a grounded graph file (no 'graph' and 'schema' keys)")
        if "format_version" in data:  # the first graph files had none
            check_record(data, path, version=GRAPH_FORMAT_VERSION)
        endpoints = _ENDPOINTS if data.get("format_version", 1) >= 2 else {}
        g = nx.node_link_graph(
            data["graph"], directed=True, multigraph=True, edges="edges", **endpoints
        )
        schema = Schema.from_dict(data["schema"], origin=str(path))
        kg = cls([], schema, data.get("aliases") or {}, data.get("entity_types") or {})
        kg.graph = g
        return kg
