"""Read and write the knowledge-source files: triples, schema, aliases, passages, entities.

Triples come as TSV, CSV (header ``subject, relation, object[, source, confidence]``) or
JSONL (one object per line with those keys); passages as JSONL or a TSV/CSV table; entity
types as a TSV/CSV table. The formats are described in :mod:`kg.tables`. Every bad line is
collected and reported together, each with file, line number and reason, so a user fixes a
file in one pass; every path is checked (exists, is a file, readable) before any is parsed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from kg.io import atomic_write_text
from kg.schema import Schema
from kg.source import KnowledgeSource, LoadReport, review_source
from kg.tables import (
    CSV_SUFFIXES,
    JSONL_SUFFIXES,
    MAX_FIELD_CHARS,
    TSV_SUFFIXES,
    SourceFileError,
    decoded_lines,
    input_file,
    jsonl_objects,
    table_rows,
)
from kg.types import EntityId, Passage, Triple

__all__ = [
    "SourceFileError",
    "decoded_lines",
    "jsonl_objects",
    "load_aliases",
    "load_entities",
    "load_passages",
    "load_source",
    "load_triples",
    "write_source",
]

REQUIRED_COLUMNS = ("subject", "relation", "object")
OPTIONAL_COLUMNS = ("source", "confidence", "extractor")
MAX_PASSAGE_CHARS = 1_000_000
"""Longest passage text, in characters."""
TRIPLE_FORMATS = (
    ".tsv, .csv or .jsonl (columns subject, relation, object[, source, confidence, extractor])"
)
PASSAGE_FORMATS = (
    '.jsonl (one object a line: "id", "text"[, "entities", "source"]) or .tsv/.csv (columns '
    "id, entity, text[, source]; several entities separated by |)"
)
ENTITY_FORMATS = ".tsv or .csv with the columns entity, type"


def _rows(path: Path, errors: list[tuple[str, int, str]]) -> Iterator[tuple[int, dict]]:
    suffix = path.suffix.lower()
    if suffix in (*TSV_SUFFIXES, *CSV_SUFFIXES):
        return table_rows(path, errors, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    if suffix in JSONL_SUFFIXES:
        return _jsonl_rows(path, errors)
    raise ValueError(f"{path}: unknown triple file type {suffix!r}; use {TRIPLE_FORMATS}")


def _jsonl_rows(path: Path, errors: list[tuple[str, int, str]]) -> Iterator[tuple[int, dict]]:
    allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    for n, obj in jsonl_objects(path, errors):
        unknown = sorted(set(obj) - set(allowed))
        if unknown:
            errors.append(
                (str(path), n, f"unknown key(s) {unknown}; a triple has {', '.join(allowed)}")
            )
            continue
        yield n, obj


def _field(row: dict, name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    return str(value).strip()


def load_triples(
    paths: str | Path | Iterable[str | Path],
    schema: Schema | None = None,
    *,
    report: LoadReport | None = None,
    allow_empty: bool = False,
    where: dict | None = None,
) -> list[Triple]:
    """Load, validate and deduplicate triples from TSV, CSV or JSONL files.

    Args:
        paths: one file or several; the format follows the suffix (see :mod:`kg.tables`:
            TSV cells are split at tabs with no quoting; CSV follows standard quoting).
        schema: when given, every relation must be in it.
        report: filled with lines read, duplicates dropped and multi-object functional facts.
        allow_empty: accept a file that holds no triple (a KB of passages only).
        where: filled with ``("entity", name) → "file:line"`` of each name's first fact.

    Returns:
        The facts in file order, each once.

    Raises:
        SourceFileError: listing every bad line (file, line, reason): missing, unknown or
            extra column, empty field, a value over :data:`kg.tables.MAX_FIELD_CHARS`
            characters, relation missing from the schema, bad confidence, bad encoding; and
            a file that holds no triple at all (empty, blank or header only).
        FileNotFoundError, IsADirectoryError: a path does not exist or is a folder.
        ValueError: a file's suffix names no known format.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.tsv"
        >>> _ = p.write_text("subject\\trelation\\tobject\\nMongolia\\tcapital\\tUlaanbaatar\\n")
        >>> load_triples(p)
        [Triple(subject='Mongolia', relation='capital', object='Ulaanbaatar', ...)]
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    report = report if report is not None else LoadReport()
    errors: list[tuple[str, int, str]] = []
    seen: set[Triple] = set()
    triples: list[Triple] = []
    for path in map(Path, paths):
        input_file(path, "triple file", f"a {TRIPLE_FORMATS} file")
        report.files.append(str(path))
        errors_before, rows = len(errors), 0
        for n, row in _rows(path, errors):
            rows += 1
            report.lines_read += 1
            values = {c: _field(row, c) for c in REQUIRED_COLUMNS}
            bad = [c for c, v in values.items() if v is None]
            if bad:
                errors.append((str(path), n, f"missing field(s) {bad}"))
                continue
            empty = [c for c, v in values.items() if not v]
            if empty:
                errors.append((str(path), n, f"empty field(s) {empty}"))
                continue
            if any("\t" in v or "\n" in v for v in values.values()):
                errors.append((str(path), n, "a field contains a tab or newline"))
                continue
            long = [c for c, v in values.items() if len(v) > MAX_FIELD_CHARS]
            if long:
                errors.append(
                    (
                        str(path),
                        n,
                        f"field {long[0]!r} holds {len(values[long[0]]):,} characters (limit "
                        f"{MAX_FIELD_CHARS:,}); shorten it",
                    )
                )
                continue
            if schema is not None and values["relation"] not in schema:
                errors.append(
                    (
                        str(path),
                        n,
                        f"relation {values['relation']!r} is not in the schema "
                        f"(known: {', '.join(sorted(schema.names)) or 'none'}); add it to the "
                        "relations file (relations.json)",
                    )
                )
                continue
            confidence = None
            raw_conf = _field(row, "confidence")
            if raw_conf:
                try:
                    confidence = float(raw_conf)
                except ValueError:
                    confidence = math.nan
                if not 0.0 <= confidence <= 1.0:
                    errors.append(
                        (str(path), n, f"confidence must be a number in [0, 1], got {raw_conf!r}")
                    )
                    continue
            t = Triple(
                values["subject"],
                values["relation"],
                values["object"],
                source=_field(row, "source") or None,
                confidence=confidence,
                extractor=_field(row, "extractor") or None,
            )
            if t in seen:
                report.duplicates_dropped += 1
                continue
            seen.add(t)
            triples.append(t)
            if where is not None:
                for name in (t.subject, t.object):
                    where.setdefault(("entity", name), f"{path}:{n}")
        if rows == 0 and len(errors) == errors_before and not allow_empty:
            errors.append(
                (
                    str(path),
                    0,
                    "holds no triples (the file is empty, blank or has only a header); add "
                    "lines subject<TAB>relation<TAB>object, or build from passages alone "
                    "(`--passages` without `--triples`)",
                )
            )
    if errors:
        raise SourceFileError(errors)
    if schema is not None:
        report.multi_object_functional = multi_object_functional(triples, schema)
    return triples


def multi_object_functional(
    triples: Iterable[Triple], schema: Schema
) -> list[tuple[str, str, list[str]]]:
    """Subjects of functional relations that have several objects (accepted, but listed)."""
    objects: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in triples:
        if t.relation in schema and schema[t.relation].functional:
            objects[(t.subject, t.relation)].append(t.object)
    return [(s, r, objs) for (s, r), objs in objects.items() if len(objs) > 1]


def _alias_rows(path: str | Path) -> list[tuple[EntityId, str, int]]:
    """``(entity, alias, line)`` of an aliases file, in file order, each pair once."""
    path = input_file(path, "aliases file", "a .tsv file with the columns entity, alias")
    errors: list[tuple[str, int, str]] = []
    rows: list[tuple[EntityId, str, int]] = []
    seen: set[tuple[str, str]] = set()
    header_seen = False
    for n, line in decoded_lines(path, errors):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split("\t")
        if not header_seen:
            header_seen = True
            if [c.strip().lower() for c in cells[:2]] == ["entity", "alias"]:
                continue
        while len(cells) > 2 and not cells[-1].strip():
            cells.pop()
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            shown = line if len(line) <= 80 else line[:79] + "…"
            errors.append((str(path), n, f"expected 'entity<TAB>alias', got {shown!r}"))
            continue
        if max(map(len, cells)) > MAX_FIELD_CHARS:
            errors.append((str(path), n, f"a value is longer than {MAX_FIELD_CHARS:,} characters"))
            continue
        entity, alias = cells[0].strip(), cells[1].strip()
        if (entity, alias) not in seen:
            seen.add((entity, alias))
            rows.append((entity, alias, n))
    if errors:
        raise SourceFileError(errors)
    return rows


def load_aliases(path: str | Path) -> dict[EntityId, list[str]]:
    """Read ``aliases.tsv`` (header ``entity<TAB>alias``, one alias a line).

    Raises:
        SourceFileError: bad lines with file and line number.
        FileNotFoundError, IsADirectoryError: ``path`` is not a file.
    """
    aliases: dict[EntityId, list[str]] = defaultdict(list)
    for entity, alias, _ in _alias_rows(path):
        aliases[entity].append(alias)
    return dict(aliases)


def load_entities(path: str | Path) -> dict[EntityId, str]:
    """Read an entities file: a TSV/CSV table with the columns ``entity`` and ``type``.

    Types let ``kb stats`` tell entities from literal values, let a relation's
    ``subject_type`` / ``object_type`` be checked at build, and are kept in the KB folder
    (``entities.tsv``).

    Raises:
        SourceFileError: bad lines (missing column, empty value, an entity given two types),
            each with file and line.
        FileNotFoundError, IsADirectoryError: ``path`` is not a file.
        ValueError: ``path`` is neither .tsv nor .csv.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "entities.tsv"
        >>> _ = p.write_text("entity\\ttype\\nIron\\telement\\n")
        >>> load_entities(p)
        {'Iron': 'element'}
    """
    path = input_file(path, "entities file", f"a {ENTITY_FORMATS}")
    if path.suffix.lower() not in (*TSV_SUFFIXES, *CSV_SUFFIXES):
        raise ValueError(
            f"{path}: unknown entities file type {path.suffix!r}; use {ENTITY_FORMATS}"
        )
    errors: list[tuple[str, int, str]] = []
    types: dict[EntityId, str] = {}
    first: dict[EntityId, int] = {}
    for n, row in table_rows(path, errors, ("entity", "type")):
        entity, kind = row["entity"], row["type"]
        if not entity or not kind:
            errors.append((str(path), n, "each line needs an entity and a type"))
            continue
        if entity in types and types[entity] != kind:
            errors.append(
                (
                    str(path),
                    n,
                    f"entity {entity!r} has type {kind!r} here and {types[entity]!r} on line "
                    f"{first[entity]}; give one type per entity",
                )
            )
            continue
        types.setdefault(entity, kind)
        first.setdefault(entity, n)
    if errors:
        raise SourceFileError(errors, hint=f"an entities file is a {ENTITY_FORMATS}")
    return types


def load_passages(path: str | Path) -> list[Passage]:
    """Read passages: JSONL (``{"id", "text", "entities"?, "source"?}`` per line) or a TSV/CSV
    table (columns ``id``, ``entity``, ``text``, optional ``source``; ``entity`` may list
    several names separated by ``|`` and may be empty).

    Raises:
        SourceFileError: bad lines (missing id or text, duplicate id, invalid JSON) with file
            and line, followed by the expected format.
        FileNotFoundError, IsADirectoryError: ``path`` is not a file.
        ValueError: the suffix names no passage format.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "passages.tsv"
        >>> _ = p.write_text("id\\tentity\\ttext\\np1\\tIron\\tIron rusts in moist air.\\n")
        >>> load_passages(p)
        [Passage(id='p1', text='Iron rusts in moist air.', entities=('Iron',), source=None)]
    """
    path = input_file(path, "passages file", PASSAGE_FORMATS)
    suffix = path.suffix.lower()
    errors: list[tuple[str, int, str]] = []
    if suffix in JSONL_SUFFIXES:
        rows: Iterable[tuple[int, dict]] = jsonl_objects(path, errors)
    elif suffix in (*TSV_SUFFIXES, *CSV_SUFFIXES):
        rows = (
            (n, {**row, "entities": [e.strip() for e in row.pop("entity", "").split("|")]})
            for n, row in table_rows(path, errors, ("id", "text"), ("entity", "source"))
        )
    else:
        raise ValueError(f"{path}: unknown passages file type {suffix!r}; use {PASSAGE_FORMATS}")
    passages: list[Passage] = []
    ids: set[str] = set()
    for n, obj in rows:
        pid, text = obj.get("id"), obj.get("text")
        if pid is None or not str(pid).strip() or not isinstance(text, str) or not text.strip():
            errors.append((str(path), n, 'each passage needs a non-empty "id" and "text"'))
            continue
        if len(text) > MAX_PASSAGE_CHARS:
            errors.append(
                (
                    str(path),
                    n,
                    f"text holds {len(text):,} characters (limit {MAX_PASSAGE_CHARS:,}); split "
                    "it into several passages",
                )
            )
            continue
        if str(pid) in ids:
            errors.append((str(path), n, f"duplicate passage id {pid!r}"))
            continue
        ents = obj.get("entities") or []
        if not isinstance(ents, list):
            errors.append((str(path), n, f'"entities" must be a list, got {ents!r}'))
            continue
        source = obj.get("source")
        ids.add(str(pid))
        passages.append(
            Passage(
                str(pid).strip(),
                text.strip(),
                tuple(str(e).strip() for e in ents if str(e).strip()),
                str(source) if source not in (None, "") else None,
            )
        )
    if errors:
        raise SourceFileError(errors, hint=f"passages are {PASSAGE_FORMATS}")
    return passages


def load_source(
    triples: str | Path | Iterable[str | Path] | None = None,
    relations: str | Path | None = None,
    *,
    aliases: str | Path | None = None,
    passages: str | Path | None = None,
    entities: str | Path | None = None,
    name: str = "custom",
    allow_alias_merge: bool = False,
) -> KnowledgeSource:
    """Load a complete knowledge source from files, and review it (:func:`review_source`).

    Args:
        triples: triple files (see :func:`load_triples`); optional when ``passages`` are given.
        relations: the relation schema (JSON, YAML or a table, see :meth:`Schema.load`);
            required with ``triples``.
        aliases: ``entity<TAB>alias`` lines (optional).
        passages: passages (optional; see :func:`load_passages`).
        entities: an ``entity, type`` table (optional; see :func:`load_entities`).
        name: the source's name in manifests.
        allow_alias_merge: keep an alias that is another entity's name (the name then means
            both entities) instead of refusing it.

    Raises:
        SourceFileError: bad lines of any file; an alias naming another entity (each with
            the aliases file and line) unless ``allow_alias_merge``.
        ValueError: nothing to load, or triples without a schema.
        FileNotFoundError, IsADirectoryError: a path is missing or a folder.
    """
    if isinstance(triples, (str, Path)):
        triples = [triples]
    triples = list(triples or [])
    if not triples and not passages:
        raise ValueError("nothing to load: give triple files (with a relations file) or passages")
    if triples and relations is None:
        raise ValueError(
            "`relations` is required with triples: the schema that names each relation and its "
            "sentence template (.json, .yaml, .tsv or .csv)"
        )
    # Cheap checks first: every path must be a readable file before any is parsed.
    for path, what in [
        *((t, "triple file") for t in triples),
        (relations, "relation schema"),
        (aliases, "aliases file"),
        (passages, "passages file"),
        (entities, "entities file"),
    ]:
        if path is not None:
            input_file(path, what)
    schema = Schema.load(relations) if relations is not None else Schema([])
    report = LoadReport()
    where: dict = {}
    facts = (
        load_triples(triples, schema, report=report, allow_empty=bool(passages), where=where)
        if triples
        else []
    )
    alias_map: dict[EntityId, list[str]] = {}
    if aliases:
        for entity, alias, n in _alias_rows(aliases):
            alias_map.setdefault(entity, []).append(alias)
            where[("alias", f"{entity}\t{alias}")] = f"{aliases}:{n}"
    types = load_entities(entities) if entities else {}
    passage_list = load_passages(passages) if passages else []
    if not facts and passages:
        report.notes.append(f"no triples: a knowledge base of {len(passage_list)} passages")
    names = {t.subject for t in facts} | {t.object for t in facts}
    orphans = sorted(set(alias_map) - names)
    if orphans:
        report.notes.append(
            f"{len(orphans)} aliased entities have no fact (e.g. {orphans[:3]}); their aliases "
            "are kept for linking"
        )
    untyped = sorted(set(types) - names - set(alias_map))
    if untyped and facts:
        report.notes.append(
            f"{len(untyped)} typed entities have no fact (e.g. {untyped[:3]}); kept for linking"
        )
    source = KnowledgeSource(
        facts, schema, alias_map, passage_list, name=name, report=report, entity_types=types
    )
    refused = review_source(source, where=where)
    same_names = [m for m in source.report.merges if m["kind"] == "names"]
    if (refused or same_names) and not allow_alias_merge:
        raise SourceFileError(
            [
                (
                    *_split_where(m["where"][0] if m["where"] else str(aliases)),
                    f"alias {m['name']!r} of {m['alias_of']!r} is the name of the entity "
                    f"{', '.join(repr(e) for e in m['entities'] if e != m['alias_of'])}",
                )
                for m in refused
            ]
            + [
                (
                    *_split_where(m["where"][0] if m["where"] else str(triples[0])),
                    "entities "
                    + " and ".join(
                        f"{e!r}" + (f" ({w})" if w else "")
                        for e, w in zip(
                            m["entities"], _padded(m["where"], m["entities"]), strict=True
                        )
                    )
                    + " are the same name once width, case, accents and look-alike letters "
                    "are folded (NFKC): write one spelling",
                )
                for m in same_names
            ],
            hint="a name shared by two entities (an alias that names another entity, or two "
            "spellings of one name) makes every mention of it ambiguous; remove the alias or "
            "fix the spelling, or pass `--allow-alias-merge` (allow_alias_merge=True) to keep "
            "the name shared (claims on it are then judged not enough info when its entities "
            "disagree)",
        )
    return source


def _padded(values: list[str], like: list[str]) -> list[str]:
    return [*values, *[""] * (len(like) - len(values))]


def _split_where(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() else (where, 0)


def _tsv_cell(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")


def write_source(source: KnowledgeSource, folder: str | Path) -> list[str]:
    """Write ``triples.tsv``, ``relations.json``, ``aliases.tsv``, and when the source has
    them ``passages.jsonl`` and ``entities.tsv``.

    Returns:
        The file names written (relative to ``folder``).
    """
    folder = Path(folder)
    # The extractor column only when a fact has one: hand-made KBs keep their five columns.
    extracted = any(t.extractor for t in source.triples)
    lines = ["subject\trelation\tobject\tsource\tconfidence" + ("\textractor" * extracted)]
    for t in source.triples:
        conf = "" if t.confidence is None else repr(t.confidence)
        cells = (t.subject, t.relation, t.object, t.source or "", conf)
        if extracted:
            cells += (t.extractor or "",)
        lines.append("\t".join(map(_tsv_cell, cells)))
    atomic_write_text(folder / "triples.tsv", "\n".join(lines) + "\n")
    source.schema.save(folder / "relations.json")
    alias_lines = ["entity\talias"]
    for entity, names in sorted(source.aliases.items()):
        alias_lines.extend(f"{_tsv_cell(entity)}\t{_tsv_cell(a)}" for a in names)
    atomic_write_text(folder / "aliases.tsv", "\n".join(alias_lines) + "\n")
    written = ["triples.tsv", "relations.json", "aliases.tsv"]
    if source.passages:
        rows = [
            json.dumps(
                {"id": p.id, "text": p.text, "entities": list(p.entities), "source": p.source},
                ensure_ascii=False,
                sort_keys=True,
            )
            for p in source.passages
        ]
        atomic_write_text(folder / "passages.jsonl", "\n".join(rows) + "\n")
        written.append("passages.jsonl")
    if source.entity_types:
        entity_lines = ["entity\ttype"] + [
            f"{_tsv_cell(e)}\t{_tsv_cell(t)}" for e, t in sorted(source.entity_types.items())
        ]
        atomic_write_text(folder / "entities.tsv", "\n".join(entity_lines) + "\n")
        written.append("entities.tsv")
    return written
