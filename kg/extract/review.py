"""The files ``grounded kb extract`` writes, and reading back a review a person edited.

``triples.tsv``: the kept triples, with ``source`` (``document#sentence``), ``confidence``
and ``extractor`` columns; a triples file every loader reads (:func:`kg.load_triples`).

``review.tsv``: one row per candidate: ``keep`` (``yes``/``no``: a person edits it), the
triple, its confidence, extractor and source, the types of new entities, notes (a shared
name, a conflict with the existing KB), the sentence and the template statement the
checker read. :func:`read_review` turns the rows marked ``yes`` into triples.

``entities.tsv``: the type of each entity the schema types (an entities file for
``--entities``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kg.extract.base import Candidate
from kg.graph import KnowledgeGraph
from kg.io import atomic_write_text
from kg.normalize import normalize
from kg.schema import Schema
from kg.tables import SourceFileError, input_file, table_rows
from kg.types import EntityId, Triple

REVIEW_COLUMNS = (
    "keep", "subject", "relation", "object", "confidence", "extractor", "source",
    "subject_type", "object_type", "notes", "sentence", "statement",
)  # fmt: skip
_YES = frozenset({"yes", "y", "true", "1", "keep", "x"})
_NO = frozenset({"no", "n", "false", "0", "drop", ""})


def _cell(value: object) -> str:
    return " ".join(str(value if value is not None else "").split())


def flag_conflicts(candidates: Sequence[Candidate], graph: KnowledgeGraph) -> list[Candidate]:
    """Flag candidates that contradict a functional relation of an existing KB.

    A candidate (s, r, o) is flagged when ``r`` is functional in ``graph``'s schema and the
    graph gives ``s`` another object for ``r`` (names compared through aliases, case and
    accents ignored). A flagged candidate is written to the review with ``keep`` = no and a
    note naming the KB's object; it is never merged on its own. A candidate the KB already
    holds gets a note too.
    """
    out = []
    for c in candidates:
        if c.relation not in graph.schema:
            out.append(c)
            continue
        subjects = graph.resolve(c.subject) or ((c.subject,) if c.subject in graph else ())
        have = [o for s in subjects for o in graph.objects(s, c.relation)]
        if not have:
            out.append(c)
            continue
        mine = {normalize(c.object)} | {normalize(x) for x in graph.resolve(c.object)}
        names = {normalize(o) for o in have} | {
            normalize(a) for o in have for a in graph.aliases.get(o, ())
        }
        if mine & names:
            out.append(c.with_note("already in the KB"))
        elif graph.schema[c.relation].functional:
            out.append(
                c.with_note(
                    f"contradicts the KB: {c.relation}({subjects[0]}) = {' | '.join(have)}",
                    flagged=True,
                )
            )
        else:
            out.append(c)
    return out


def kept(candidates: Sequence[Candidate], min_confidence: float) -> list[Candidate]:
    """Candidates at or above ``min_confidence`` and not flagged, best first."""
    return sorted(
        (c for c in candidates if c.confidence >= min_confidence and not c.flagged),
        key=lambda c: -c.confidence,
    )


def entity_types(candidates: Sequence[Candidate]) -> dict[EntityId, str]:
    """The type of each new entity, from the relation slot it fills (first one wins)."""
    out: dict[EntityId, str] = {}
    for c in candidates:
        if c.subject_type:
            out.setdefault(c.subject, c.subject_type)
        if c.object_type:
            out.setdefault(c.object, c.object_type)
    return out


def write_triples(path: str | Path, triples: Sequence[Triple]) -> Path:
    """``triples.tsv`` with the provenance columns, one line per distinct triple."""
    lines = ["subject\trelation\tobject\tsource\tconfidence\textractor"]
    seen: set[Triple] = set()
    for t in triples:
        if t in seen:
            continue
        seen.add(t)
        conf = "" if t.confidence is None else repr(t.confidence)
        cells = (t.subject, t.relation, t.object, t.source or "", conf, t.extractor or "")
        lines.append("\t".join(map(_cell, cells)))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_review(
    path: str | Path, candidates: Sequence[Candidate], schema: Schema, min_confidence: float
) -> Path:
    """``review.tsv``: every candidate, ``keep`` set to yes for the kept ones."""
    lines = ["\t".join(REVIEW_COLUMNS)]
    for c in sorted(candidates, key=lambda c: (c.sentence.document, c.sentence.index)):
        keep = "yes" if c.confidence >= min_confidence and not c.flagged else "no"
        row = (
            keep, c.subject, c.relation, c.object, f"{c.confidence:.4f}", c.extractor,
            c.sentence.source, c.subject_type, c.object_type, "; ".join(c.notes),
            c.sentence.text, c.statement(schema),
        )  # fmt: skip
        lines.append("\t".join(map(_cell, row)))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_entities(path: str | Path, types: dict[EntityId, str]) -> Path:
    lines = ["entity\ttype", *(f"{_cell(e)}\t{_cell(t)}" for e, t in sorted(types.items()))]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_review(
    path: str | Path, schema: Schema | None = None
) -> tuple[list[Triple], dict[EntityId, str]]:
    """The triples a person kept in a ``review.tsv``, and the types of their new entities.

    Raises:
        SourceFileError: every bad row, with file and line: a ``keep`` that is neither yes
            nor no, a missing column or field, a relation missing from ``schema``, a bad
            confidence.
    """
    path = input_file(path, "review file", "a review.tsv written by `grounded kb extract`")
    errors: list[tuple[str, int, str]] = []
    triples: list[Triple] = []
    types: dict[EntityId, str] = {}
    required = ("keep", "subject", "relation", "object")
    optional = tuple(c for c in REVIEW_COLUMNS if c not in required)
    for n, row in table_rows(path, errors, required, optional):
        keep = (row.get("keep") or "").strip().lower()
        if keep not in _YES | _NO:
            errors.append((str(path), n, f"`keep` must be yes or no, got {row.get('keep')!r}"))
            continue
        if keep in _NO:
            continue
        s, r, o = (row.get(k, "").strip() for k in ("subject", "relation", "object"))
        if not (s and r and o):
            errors.append((str(path), n, "empty subject, relation or object"))
            continue
        if schema is not None and r not in schema:
            errors.append(
                (
                    str(path),
                    n,
                    f"relation {r!r} is not in the schema (known: {', '.join(schema.names)}); "
                    "fix the row or add the relation to the relations file",
                )
            )
            continue
        try:
            conf = float(row["confidence"]) if row.get("confidence") else None
        except ValueError:
            errors.append((str(path), n, f"confidence {row['confidence']!r} is not a number"))
            continue
        if conf is not None and not 0.0 <= conf <= 1.0:
            errors.append((str(path), n, f"confidence must be in [0, 1], got {conf}"))
            continue
        triples.append(
            Triple(s, r, o, row.get("source") or None, conf, row.get("extractor") or None)
        )
        for name, kind in ((s, row.get("subject_type")), (o, row.get("object_type"))):
            if kind:
                types.setdefault(name, kind)
    if errors:
        raise SourceFileError(errors, "keep is yes or no; the other columns as written")
    return triples, types
