"""Reading the user's input files: TSV, CSV and JSONL rows with line-numbered errors.

Every reader collects bad lines instead of stopping at the first, so a user fixes a file in
one pass; the caller raises them together as :class:`SourceFileError`.

Formats, chosen by the file's suffix:

- **TSV** (``.tsv``, ``.tab``, ``.txt``): cells split at tabs, nothing else is special, so
  ``"Weird" Land`` keeps its quotes. A value cannot hold a tab or a line break.
- **CSV** (``.csv``): standard quoting: ``"Washington, D.C."`` is one value (spaces after a
  comma are ignored, so ``a, "b, c"`` reads ``b, c``); a quoted value may span lines.
- **JSONL** (``.jsonl``, ``.ndjson``): one JSON object per line.

A table's first line names its columns. Unknown columns and rows with more cells than the
header are errors (a value silently dropped is worse than a refusal). No value may be longer
than :data:`MAX_FIELD_CHARS` characters: a longer one almost always means a missing quote or
line break swallowed the rest of the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

MAX_ERRORS_SHOWN = 20
MAX_FIELD_CHARS = 100_000
"""Longest value of a table cell or triple field, in characters."""

TSV_SUFFIXES = (".tsv", ".tab", ".txt")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")

Errors = list[tuple[str, int, str]]
_JOINED = "a missing quote or line break may have joined lines: split or shorten the value"


class SourceFileError(ValueError):
    """One or more bad lines in an input file; ``errors`` holds ``(path, line, reason)``.

    Args:
        errors: ``(file, line, reason)`` of every bad line (line 0: the file as a whole).
        hint: one sentence printed after the list: the expected format, or the fix.
    """

    def __init__(self, errors: Errors, hint: str = "") -> None:
        self.errors = errors
        self.hint = hint
        shown = [
            f"  {p}:{n}: {reason}" if n else f"  {p}: {reason}"
            for p, n, reason in errors[:MAX_ERRORS_SHOWN]
        ]
        more = len(errors) - MAX_ERRORS_SHOWN
        if more > 0:
            shown.append(f"  ... and {more} more")
        if hint:
            shown.append(f"  {hint}")
        noun = "line" if len(errors) == 1 else "lines"
        super().__init__(f"{len(errors)} bad {noun}; nothing was written:\n" + "\n".join(shown))


def input_file(path: str | Path, what: str, expected: str = "") -> Path:
    """``path`` as a :class:`Path` after checking it is a readable file.

    Args:
        path: the file the user named.
        what: how the user named it, for the message (``"`--triples` file"``).
        expected: what the file should be, for the message (``"a .tsv, .csv or .jsonl file"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: ``path`` cannot be read.
    """
    path = Path(path)
    want = f"; give {expected}" if expected else ""
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist{want}")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, not a file{want}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{what} {path} is not readable; check its permissions")
    return path


def decoded_lines(path: Path, errors: Errors) -> Iterator[tuple[int, str]]:
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


def jsonl_objects(path: Path, errors: Errors) -> Iterator[tuple[int, dict]]:
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


def _csv_records(path: Path, errors: Errors) -> Iterator[tuple[int, str]]:
    """Logical CSV records ``(first line, text)``: a quoted value may span lines."""
    pending: list[str] = []
    first = 0
    for n, line in decoded_lines(path, errors):
        if not pending:
            first = n
        pending.append(line)
        if sum(part.count('"') for part in pending) % 2 == 0:
            yield first, "\n".join(pending)
            pending = []
    if pending:
        errors.append(
            (str(path), first, 'a quoted value is never closed; add the closing " or remove it')
        )


def _split(path: Path, errors: Errors) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of a TSV or CSV file, by suffix; blank lines skipped."""
    if path.suffix.lower() in CSV_SUFFIXES:
        for n, record in _csv_records(path, errors):
            if not record.strip():
                continue
            try:
                rows = list(csv.reader(io.StringIO(record), skipinitialspace=True, strict=True))
            except csv.Error as e:
                if "field larger than field limit" in str(e):
                    reason = (
                        f"a value holds more than {csv.field_size_limit():,} characters (limit "
                        f"{MAX_FIELD_CHARS:,}); {_JOINED}"
                    )
                else:
                    reason = (
                        f"bad CSV quoting ({e}); quote a value that holds a comma, and double a "
                        'quote inside a quoted value ("")'
                    )
                errors.append((str(path), n, reason))
                continue
            yield n, rows[0] if rows else []
    else:
        for n, line in decoded_lines(path, errors):
            if line.strip():
                yield n, line.split("\t")


def table_rows(
    path: Path,
    errors: Errors,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, {column: value})`` of a TSV or CSV table whose first line names its columns.

    Values are stripped; a missing optional cell is ``""``. Lines starting with ``#`` before
    the header are comments.

    Args:
        path: a .tsv/.tab/.txt (tab-separated, no quoting) or .csv (quoted) file.
        errors: where bad lines go (see :class:`SourceFileError`).
        required: columns the header must name.
        optional: further columns it may name; any other column is an error.
    """
    header: list[str] | None = None
    sep = "," if path.suffix.lower() in CSV_SUFFIXES else "<TAB>"
    allowed = [*required, *optional]
    for n, cells in _split(path, errors):
        if header is None:
            if cells and cells[0].lstrip().startswith("#"):
                continue
            header = [c.strip().lower() for c in cells]
            missing = [c for c in required if c not in header]
            unknown = [c for c in header if c not in allowed]
            twice = sorted({c for c in header if header.count(c) > 1})
            problems = []
            if missing:
                problems.append(f"lacks column(s) {_short(missing, 200)}")
            if unknown:
                problems.append(f"has unknown column(s) {_short(unknown, 200)}")
            if twice:
                problems.append(f"names column(s) {_short(twice, 200)} twice")
            if problems:
                errors.append(
                    (
                        str(path),
                        n,
                        f"header {' and '.join(problems)}; the first line must name the "
                        f"columns {sep.join(required)}"
                        + (f" and may add {', '.join(optional)}" if optional else ""),
                    )
                )
                return
            continue
        while len(cells) > len(header) and not cells[-1].strip():
            cells.pop()  # trailing empty cells (a trailing tab or comma) hold nothing
        if len(cells) > len(header):
            extra = [c for c in cells[len(header) :]]
            fix = (
                "quote a value that holds a comma"
                if sep == ","
                else "a value cannot hold a tab; remove the extra cells"
            )
            errors.append(
                (
                    str(path),
                    n,
                    f"{len(cells)} cells but the header names {len(header)} columns "
                    f"({', '.join(header)}); extra {_short(extra)}: {fix}",
                )
            )
            continue
        need = max(header.index(c) for c in required) + 1 if required else 0
        if len(cells) < need:
            errors.append(
                (
                    str(path),
                    n,
                    f"expected at least {need} columns ({sep.join(header[:need])}), found "
                    f"{len(cells)}: {_short(sep.join(cells))}",
                )
            )
            continue
        long = [
            (c, len(v)) for c, v in zip(header, cells, strict=False) if len(v) > MAX_FIELD_CHARS
        ]
        if long:
            col, size = long[0]
            errors.append(
                (
                    str(path),
                    n,
                    f"column {col!r} holds {size:,} characters (limit {MAX_FIELD_CHARS:,}); "
                    + _JOINED,
                )
            )
            continue
        row = {c: "" for c in header}
        row.update({c: v.strip() for c, v in zip(header, cells, strict=False)})
        yield n, row


def _short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 10 MB value must not fill the screen)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
