"""`KnowledgeGraph`: facts on a networkx MultiDiGraph, with queries and verbalization."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from kg.io import atomic_write_json
from kg.linker import EntityLinker
from kg.schema import Schema
from kg.source import KnowledgeSource
from kg.types import EntityId, Triple

GRAPH_FORMAT_VERSION = 1


class KnowledgeGraph:
    """Facts as a directed multigraph: nodes are entities, edges are relations (keyed by name).

    Args:
        triples: the facts (duplicates collapse).
        schema: every relation used by ``triples``.
        aliases: surface names per entity, used by :attr:`linker` and :meth:`resolve`.

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
    ) -> None:
        self.schema = schema
        self.aliases: dict[EntityId, list[str]] = {k: list(v) for k, v in (aliases or {}).items()}
        self.graph = nx.MultiDiGraph()
        for t in triples:
            if t.relation not in schema:
                raise ValueError(
                    f"triple {t.key!r} uses relation {t.relation!r}, which is not in the schema "
                    f"(known: {sorted(schema.names)})"
                )
            self.graph.add_edge(
                t.subject, t.object, key=t.relation, source=t.source, confidence=t.confidence
            )
        self._linker: EntityLinker | None = None
        self._pools: dict[str, tuple[EntityId, ...]] | None = None

    @classmethod
    def from_source(cls, source: KnowledgeSource) -> KnowledgeGraph:
        return cls(source.triples, source.schema, source.aliases)

    # -- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of facts."""
        return self.graph.number_of_edges()

    def __contains__(self, entity: object) -> bool:
        return entity in self.graph

    @property
    def entities(self) -> list[EntityId]:
        return list(self.graph.nodes)

    def _triple(self, s: str, o: str, r: str, data: dict) -> Triple:
        return Triple(s, r, o, data.get("source"), data.get("confidence"))

    def triples(self) -> list[Triple]:
        """Every fact, in insertion order."""
        return [self._triple(s, o, r, d) for s, o, r, d in self.graph.edges(keys=True, data=True)]

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
        of relations with that subject type). Negatives, swaps and type checks draw from it.

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
        return KnowledgeGraph(triples, self.schema, {e: self.aliases.get(e, []) for e in keep})

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
            self._linker = EntityLinker(names)
        return self._linker

    def resolve(self, name: str) -> tuple[EntityId, ...]:
        """Entities whose name or alias equals ``name`` (case- and accent-insensitive)."""
        found = self.linker.lookup(name)
        if name in self.graph and name not in found:
            found = (name, *found)
        return found

    def stats(self) -> dict:
        """Counts of facts, entities and per-relation facts and subjects."""
        rel_facts = Counter(r for _, _, r in self.graph.edges(keys=True))
        rel_subjects = {
            r: len({s for s, _, k in self.graph.edges(keys=True) if k == r}) for r in rel_facts
        }
        degrees = [d for _, d in self.graph.degree()]
        return {
            "facts": len(self),
            "entities": self.graph.number_of_nodes(),
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
        }

    # -- persistence (node-link JSON; never pickle) -----------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``graph.json``: node-link data plus schema and aliases."""
        data = nx.node_link_data(self.graph, edges="edges")
        return atomic_write_json(
            path,
            {
                "format_version": GRAPH_FORMAT_VERSION,
                "graph": data,
                "schema": self.schema.to_dict(),
                "aliases": self.aliases,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeGraph:
        """Read ``graph.json`` written by :meth:`save`.

        Raises:
            ValueError: not a graph file, or written by a newer grounded.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        if not isinstance(data, dict) or "graph" not in data or "schema" not in data:
            raise ValueError(f"{path} is not a grounded graph file (no 'graph' and 'schema' keys)")
        version = data.get("format_version", 0)
        if version > GRAPH_FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {version}, newer than this grounded supports "
                f"({GRAPH_FORMAT_VERSION}); upgrade grounded"
            )
        g = nx.node_link_graph(data["graph"], directed=True, multigraph=True, edges="edges")
        schema = Schema.from_dict(data["schema"], origin=str(path))
        kg = cls([], schema, data.get("aliases") or {})
        kg.graph = g
        return kg
