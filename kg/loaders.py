"""Read and write the knowledge-source files: triples, aliases, passages.

Triples come as TSV, CSV (header ``subject, relation, object[, source, confidence]``) or
JSONL (one object per line with those keys). Every bad line is collected and reported
together, each with file, line number and reason, so a user fixes a file in one pass.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from kg.io import atomic_write_text
from kg.schema import Schema
from kg.source import KnowledgeSource, LoadReport
from kg.types import EntityId, Passage, Triple

REQUIRED_COLUMNS = ("subject", "relation", "object")
OPTIONAL_COLUMNS = ("source", "confidence")
MAX_ERRORS_SHOWN = 20


class SourceFileError(ValueError):
    """One or more bad lines in an input file; ``errors`` holds ``(path, line, reason)``."""

    def __init__(self, errors: list[tuple[str, int, str]]) -> None:
        self.errors = errors
        shown = [f"  {p}:{n}: {reason}" for p, n, reason in errors[:MAX_ERRORS_SHOWN]]
        more = len(errors) - MAX_ERRORS_SHOWN
        if more > 0:
            shown.append(f"  ... and {more} more")
        noun = "line" if len(errors) == 1 else "lines"
        super().__init__(f"{len(errors)} bad {noun}; nothing was written:\n" + "\n".join(shown))


def decoded_lines(path: Path, errors: list[tuple[str, int, str]]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 file (a leading BOM is dropped, line ends cut).

    Undecodable lines become errors instead of aborting: each appends ``(path, line,
    reason)`` to ``errors``, which the caller raises as :class:`SourceFileError` so every bad
    line is reported at once.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = f.write_bytes("ok\\n".encode() + "São\\n".encode("latin-1"))
        >>> errors = []
        >>> list(decoded_lines(f, errors)), errors[0][1:]
        ([(1, 'ok')], (2, 'not valid UTF-8 (byte 0xe3 at column 2); re-save the file as UTF-8'))
    """
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                errors.append(
                    (
                        str(path),
                        n,
                        f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                        "re-save the file as UTF-8",
                    )
                )
                continue
            yield n, line.rstrip("\r\n")


def _rows_delimited(
    path: Path, delimiter: str, errors: list[tuple[str, int, str]]
) -> Iterator[tuple[int, dict[str, str]]]:
    header: list[str] | None = None
    for n, line in decoded_lines(path, errors):
        if not line.strip() or (header is None and line.lstrip().startswith("#")):
            continue
        # csv handles quoting for both formats; a TSV line never spans several lines here.
        cells = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        if header is None:
            header = [c.strip().lower() for c in cells]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                sep = "<TAB>" if delimiter == "\t" else delimiter
                errors.append(
                    (
                        str(path),
                        n,
                        f"header lacks column(s) {missing}; the first line must name the columns, "
                        f"e.g. subject{sep}relation{sep}object",
                    )
                )
                return
            continue
        if len(cells) < len(REQUIRED_COLUMNS):
            errors.append(
                (
                    str(path),
                    n,
                    f"expected at least {len(header)} columns, found {len(cells)}: {line!r}",
                )
            )
            continue
        yield n, dict(zip(header, cells, strict=False))


def jsonl_objects(path: Path, errors: list[tuple[str, int, str]]) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each JSON-object line of ``path``; blank lines skipped.

    Bad lines (not UTF-8, invalid JSON, not an object) are appended to ``errors`` as
    ``(file, line, reason)`` and skipped, so every bad line is reported at once.
    """
    for n, line in decoded_lines(path, errors):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append((str(path), n, f"invalid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(obj, dict):
            errors.append((str(path), n, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        yield n, obj


def _rows(path: Path, errors: list[tuple[str, int, str]]) -> Iterator[tuple[int, dict]]:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab", ".txt"):
        return _rows_delimited(path, "\t", errors)
    if suffix == ".csv":
        return _rows_delimited(path, ",", errors)
    if suffix in (".jsonl", ".ndjson"):
        return jsonl_objects(path, errors)
    raise ValueError(
        f"{path}: unknown triple file type {suffix!r}; use .tsv, .csv or .jsonl "
        "(columns subject, relation, object[, source, confidence])"
    )


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
) -> list[Triple]:
    """Load, validate and deduplicate triples from TSV, CSV or JSONL files.

    Args:
        paths: one file or several; the format follows the suffix.
        schema: when given, every relation must be in it.
        report: filled with lines read, duplicates dropped and multi-object functional facts.

    Returns:
        The facts in file order, each once.

    Raises:
        SourceFileError: listing every bad line (file, line, reason): missing column, empty
            field, relation missing from the schema, bad confidence, bad encoding.
        FileNotFoundError: a path does not exist.

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
        if not path.is_file():
            raise FileNotFoundError(f"triple file {path} does not exist")
        report.files.append(str(path))
        for n, row in _rows(path, errors):
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
            if schema is not None and values["relation"] not in schema:
                errors.append(
                    (
                        str(path),
                        n,
                        f"relation {values['relation']!r} is not in the schema "
                        f"(known: {', '.join(sorted(schema.names))}); add it to relations.json",
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
            )
            if t in seen:
                report.duplicates_dropped += 1
                continue
            seen.add(t)
            triples.append(t)
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


def load_aliases(path: str | Path) -> dict[EntityId, list[str]]:
    """Read ``aliases.tsv`` (header ``entity<TAB>alias``, one alias a line).

    Raises:
        SourceFileError: bad lines with file and line number.
    """
    path = Path(path)
    errors: list[tuple[str, int, str]] = []
    aliases: dict[EntityId, list[str]] = defaultdict(list)
    header_seen = False
    for n, line in decoded_lines(path, errors):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split("\t")
        if not header_seen:
            header_seen = True
            if [c.strip().lower() for c in cells[:2]] == ["entity", "alias"]:
                continue
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            errors.append((str(path), n, f"expected 'entity<TAB>alias', got {line!r}"))
            continue
        entity, alias = cells[0].strip(), cells[1].strip()
        if alias not in aliases[entity]:
            aliases[entity].append(alias)
    if errors:
        raise SourceFileError(errors)
    return dict(aliases)


def load_passages(path: str | Path) -> list[Passage]:
    """Read ``passages.jsonl``: ``{"id", "text", "entities"?, "source"?}`` per line.

    Raises:
        SourceFileError: bad lines (missing id or text, duplicate id) with file and line.
    """
    path = Path(path)
    errors: list[tuple[str, int, str]] = []
    passages: list[Passage] = []
    ids: set[str] = set()
    for n, obj in jsonl_objects(path, errors):
        pid, text = obj.get("id"), obj.get("text")
        if pid is None or not str(pid).strip() or not isinstance(text, str) or not text.strip():
            errors.append((str(path), n, 'each passage needs a non-empty "id" and "text"'))
            continue
        if str(pid) in ids:
            errors.append((str(path), n, f"duplicate passage id {pid!r}"))
            continue
        ents = obj.get("entities") or []
        if not isinstance(ents, list):
            errors.append((str(path), n, f'"entities" must be a list, got {ents!r}'))
            continue
        ids.add(str(pid))
        passages.append(Passage(str(pid), text.strip(), tuple(map(str, ents)), obj.get("source")))
    if errors:
        raise SourceFileError(errors)
    return passages


def load_source(
    triples: str | Path | Iterable[str | Path],
    relations: str | Path,
    *,
    aliases: str | Path | None = None,
    passages: str | Path | None = None,
    name: str = "custom",
) -> KnowledgeSource:
    """Load a complete knowledge source from files (see :func:`load_triples`)."""
    schema = Schema.load(relations)
    report = LoadReport()
    facts = load_triples(triples, schema, report=report)
    alias_map = load_aliases(aliases) if aliases else {}
    entities = {t.subject for t in facts} | {t.object for t in facts}
    orphans = sorted(set(alias_map) - entities)
    if orphans:
        report.notes.append(
            f"{len(orphans)} aliased entities have no fact (e.g. {orphans[:3]}); their aliases "
            "are kept for linking"
        )
    return KnowledgeSource(
        facts,
        schema,
        alias_map,
        load_passages(passages) if passages else [],
        name=name,
        report=report,
    )


def _tsv_cell(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")


def write_source(source: KnowledgeSource, folder: str | Path) -> list[str]:
    """Write ``triples.tsv``, ``relations.json``, ``aliases.tsv`` and ``passages.jsonl``.

    Returns:
        The file names written (relative to ``folder``).
    """
    folder = Path(folder)
    lines = ["subject\trelation\tobject\tsource\tconfidence"]
    for t in source.triples:
        conf = "" if t.confidence is None else repr(t.confidence)
        cells = (t.subject, t.relation, t.object, t.source or "", conf)
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
    return written
