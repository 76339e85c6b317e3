"""Documents in, sentences out: the text a knowledge base is extracted from.

``DOCS`` may be text or Markdown files, a folder of them (``*.txt``, ``*.md``, read in
sorted order, sub-folders included), or a passages file (``.jsonl`` with ``id`` and
``text``, or a ``.tsv``/``.csv`` table with ``id``, ``entity``, ``text``; see
:func:`kg.load_passages`). Every sentence keeps its document and number, and the line where
it starts, so a fact read from it can say where it came from (:attr:`Sentence.source`).

Markdown is read as prose: heading marks, list bullets, emphasis and link targets are
dropped, fenced code blocks skipped; a heading, a blank line or a list item ends a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kg.loaders import load_passages
from kg.tables import SourceFileError, input_file
from kg.text import split_sentences

DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown")
PASSAGE_SUFFIXES = (".jsonl", ".ndjson", ".tsv", ".csv")
DOCUMENT_FORMATS = (
    "text or Markdown files (.txt, .md), a folder of them, or a passages file (.jsonl with "
    '"id" and "text", or .tsv/.csv with columns id, entity, text)'
)

_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINE = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a document.

    Attributes:
        document: the document's id (a file name, relative to the folder given, or a
            passage id).
        index: the sentence's number in the document, from 1.
        text: the sentence.
        line: the line of the file where it starts (the passage's line for a passages file).
    """

    document: str
    index: int
    text: str
    line: int = 0

    @property
    def source(self) -> str:
        """``document#index``: the provenance a fact read from this sentence carries."""
        return f"{self.document}#{self.index}"


@dataclass(frozen=True)
class Document:
    """A document: its id, the file it came from, and its sentences."""

    id: str
    path: str
    sentences: tuple[Sentence, ...]


def _check_bytes(path: Path) -> str:
    """The file's text; a binary or non-UTF-8 file fails naming the line of the bad byte."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise SourceFileError(
            [(str(path), line, "a NUL byte: this is a binary file, not text")],
            f"give {DOCUMENT_FORMATS}",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise SourceFileError(
            [(str(path), line, f"not valid UTF-8 (byte 0x{raw[e.start]:02x})")],
            "re-save the file as UTF-8 text",
        ) from None
    if not text.strip():
        raise SourceFileError(
            [(str(path), 0, "the document is empty (no text)")],
            "remove it from DOCS or add its text",
        )
    return text


def _blocks(text: str, markdown: bool) -> list[tuple[int, str]]:
    """``(first line, text)`` of each paragraph; a sentence never crosses a block."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    fenced = False

    def flush() -> None:
        if current:
            out.append((start, " ".join(current)))
            current.clear()

    for n, line in enumerate(text.splitlines(), start=1):
        if markdown and _FENCE.match(line):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.strip():
            flush()
            continue
        if markdown:
            if _MD_LINE.match(line):
                flush()  # a heading, quote or list item starts a block of its own
                line = _MD_LINE.sub("", line, count=1)
            line = _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", line))
        if not current:
            start = n
        current.append(line.strip())
    flush()
    return out


def sentences_of(
    document: str, text: str, *, markdown: bool = False, first_line: int = 1
) -> list[Sentence]:
    """The sentences of ``text`` as :class:`Sentence` objects, numbered from 1.

    Example:
        >>> [s.text for s in sentences_of("d", "Dune was written by Frank Herbert. It sold.")]
        ['Dune was written by Frank Herbert.', 'It sold.']
    """
    out: list[Sentence] = []
    for line, block in _blocks(text, markdown):
        for a, b in split_sentences(block, keep_numbers=True):
            piece = block[a:b].strip()
            if piece:
                out.append(Sentence(document, len(out) + 1, piece, line + first_line - 1))
    return out


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
        )
        if not files:
            raise FileNotFoundError(
                f"DOCS folder {path} holds no .txt or .md file; give {DOCUMENT_FORMATS}"
            )
        return files
    input_file(path, "document", DOCUMENT_FORMATS)
    return [path]


def read_documents(paths: str | Path | Iterable[str | Path]) -> list[Document]:
    """Read documents and split them into sentences.

    Args:
        paths: files or folders (see the module docstring).

    Returns:
        The documents in the order given (a folder's files sorted); ids are unique.

    Raises:
        SourceFileError: an empty document, a binary or non-UTF-8 file (file and line), a
            bad passages line; all of them at once.
        FileNotFoundError, IsADirectoryError: a path does not exist, or a folder holds no
            document.
        ValueError: a suffix names no known format, or two documents share an id.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "dune.txt").write_text("Dune was written by Frank Herbert.\\n")
        >>> read_documents(d)[0].sentences[0].source
        'dune.txt#1'
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    docs: list[Document] = []
    errors: list[tuple[str, int, str]] = []
    for given in map(Path, paths):
        root = given if given.is_dir() else given.parent
        for path in _files(given):
            suffix = path.suffix.lower()
            if suffix in PASSAGE_SUFFIXES:
                for p in load_passages(path):
                    sents = sentences_of(p.id, p.text)
                    if not sents:
                        errors.append((str(path), 0, f"passage {p.id!r} holds no sentence"))
                    docs.append(Document(p.id, str(path), tuple(sents)))
                continue
            if suffix not in DOCUMENT_SUFFIXES:
                raise ValueError(
                    f"document {path}: unknown suffix {suffix!r}; give {DOCUMENT_FORMATS}"
                )
            try:
                text = _check_bytes(path)
            except SourceFileError as e:
                errors.extend(e.errors)
                continue
            doc_id = path.relative_to(root).as_posix()
            sents = sentences_of(doc_id, text, markdown=suffix != ".txt")
            if not sents:
                errors.append((str(path), 0, "the document holds no sentence (markup only)"))
                continue
            docs.append(Document(doc_id, str(path), tuple(sents)))
    if errors:
        raise SourceFileError(errors, f"DOCS must be {DOCUMENT_FORMATS}")
    seen: dict[str, str] = {}
    for d in docs:
        if d.id in seen:
            raise ValueError(
                f"two documents have the id {d.id!r} ({seen[d.id]} and {d.path}); rename one"
            )
        seen[d.id] = d.path
    return docs
