"""The model extractor's text format: the prompt it reads and the lines it writes.

Prompt (one sentence or a short passage)::

    Extract the triples.
    Sentence: Dune was written by Frank Herbert.
    Triples:

Target: one ``head | relation | tail`` line per triple, the relation a name of the schema
and head and tail spans copied from the sentence, or the single line ``none``; then the
tokenizer's end-of-sequence token::

    Dune | author | Frank Herbert

The relation names are not listed in the prompt: an extractor is trained for one schema,
which its folder records (``schema.json``), and a shorter prompt is cheaper on CPU.

:func:`parse_generation` reads a generation back and keeps only what the schema and the
sentence allow; what it drops is counted by reason in :class:`ParseCounts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kg.schema import Schema

PROMPT_HEAD = "Extract the triples.\nSentence: "
PROMPT_TAIL = "\nTriples:\n"
SEPARATOR = " | "
NONE = "none"
_STRIP = " \t\"'“”‘’«»()[]{},;:."


def format_prompt(text: str) -> str:
    """The prompt for ``text`` (newlines inside it become spaces).

    Example:
        >>> format_prompt("Dune was written by Frank Herbert.")
        'Extract the triples.\\nSentence: Dune was written by Frank Herbert.\\nTriples:\\n'
    """
    return f"{PROMPT_HEAD}{' '.join(text.split())}{PROMPT_TAIL}"


def format_target(triples: Iterable[tuple[str, str, str]]) -> str:
    """The lines a sentence's triples are written as (``none`` when there are none);
    duplicates are dropped, order kept.

    Example:
        >>> format_target([("Dune", "author", "Frank Herbert")])
        'Dune | author | Frank Herbert'
        >>> format_target([])
        'none'
    """
    lines = list(dict.fromkeys(SEPARATOR.join(t) for t in triples))
    return "\n".join(lines) if lines else NONE


@dataclass(frozen=True)
class ParsedTriple:
    """A triple read from a generation: the spans as they are written in the sentence.

    Attributes:
        subject, relation, object: the head span, the schema relation, the tail span.
        subject_start, object_start: character offsets of the head and the tail in the
            sentence (where an entity finder's mention of the same span starts).
        line: the line of the generation it was read from (0-based).
    """

    subject: str
    relation: str
    object: str
    subject_start: int
    object_start: int
    line: int


@dataclass
class ParseCounts:
    """What :func:`parse_generation` kept and dropped, by reason."""

    kept: int = 0
    none: int = 0
    malformed: int = 0
    unknown_relation: int = 0
    not_a_span: int = 0
    same_span: int = 0
    duplicate: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: ParseCounts) -> None:
        for name in ("kept", "none", "malformed", "unknown_relation", "not_a_span",
                     "same_span", "duplicate"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples.extend(other.examples[: max(0, 20 - len(self.examples))])

    def dropped(self) -> int:
        return self.malformed + self.unknown_relation + self.not_a_span + self.same_span

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "examples"}


def find_span(span: str, text: str) -> tuple[str, int] | None:
    """Where ``span`` is written in ``text``: (the span as written, its offset), or None.

    Surrounding quotes, brackets and punctuation of ``span`` are dropped; inner whitespace
    may differ; an exact match wins over a case-insensitive one. A span must start and end
    at a word boundary of ``text`` ("Ann" is no span of "Annecy").

    Example:
        >>> find_span("frank herbert.", "Dune was written by Frank Herbert.")
        ('Frank Herbert', 20)
        >>> find_span("Ann", "Annecy is in France.") is None
        True
    """
    words = span.strip(_STRIP).split()
    if not words:
        return None
    wanted = " ".join(words)
    flat = " ".join(text.split())
    # offsets map back to ``text`` only when it had single spaces; compute on ``flat``
    # and translate through the list of kept characters.
    for haystack, needle in ((flat, wanted), (flat.lower(), wanted.lower())):
        start = haystack.find(needle)
        while start >= 0:
            end = start + len(needle)
            left_ok = start == 0 or not flat[start - 1].isalnum()
            right_ok = end == len(flat) or not flat[end].isalnum()
            if left_ok and right_ok:
                return flat[start:end], _offset_in(text, start)
            start = haystack.find(needle, start + 1)
    return None


def _offset_in(text: str, flat_offset: int) -> int:
    """The offset in ``text`` of character ``flat_offset`` of ``" ".join(text.split())``."""
    i = j = 0
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    while j < flat_offset and i < n:
        if text[i].isspace():
            while i < n and text[i].isspace():
                i += 1
        else:
            i += 1
        j += 1
    return i


def _relation_name(name: str, schema: Schema) -> str | None:
    """The schema's relation ``name`` stands for: exact, else case and spaces forgiven."""
    name = name.strip().strip(_STRIP)
    if name in schema:
        return name
    folded = "_".join(name.lower().replace("-", " ").split())
    return folded if folded in schema else None


def parse_generation(
    generation: str, text: str, schema: Schema
) -> tuple[list[ParsedTriple], ParseCounts]:
    """The triples of a generation that the schema and the sentence allow.

    A line is ``head | relation | tail``; ``none`` (or an empty generation) means no
    triple. A line is dropped, and counted, when it has not three parts (``malformed``),
    its relation is not in ``schema`` (``unknown_relation``), its head or tail is not a
    span of ``text`` (``not_a_span``, see :func:`find_span`), head and tail are the same
    span (``same_span``), or it repeats a kept line (``duplicate``).

    Args:
        generation: the model's text after the prompt (without the end-of-sequence token).
        text: the sentence the model read.
        schema: the relations it may name.

    Example:
        >>> from kg.schema import Relation, Schema
        >>> schema = Schema([Relation("author", "{subject} was written by {object}.")])
        >>> gen = "Dune | author | Frank Herbert\\nDune | genre | novel\\nDune | author | Tolkien"
        >>> triples, counts = parse_generation(gen, "Dune was written by Frank Herbert.", schema)
        >>> [(t.subject, t.relation, t.object) for t in triples]
        [('Dune', 'author', 'Frank Herbert')]
        >>> counts.unknown_relation, counts.not_a_span
        (1, 1)
    """
    counts = ParseCounts()
    out: list[ParsedTriple] = []
    seen: set[tuple[str, str, str]] = set()
    lines = [ln.strip() for ln in generation.strip().splitlines() if ln.strip()]
    if not lines or (len(lines) == 1 and lines[0].lower().strip(_STRIP) == NONE):
        counts.none = 1
        return out, counts
    for i, line in enumerate(lines):
        if line.lower().strip(_STRIP) == NONE:
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            counts.malformed += 1
            counts.examples.append(f"malformed: {line!r}")
            continue
        relation = _relation_name(parts[1], schema)
        if relation is None:
            counts.unknown_relation += 1
            counts.examples.append(f"unknown relation: {line!r}")
            continue
        head, tail = find_span(parts[0], text), find_span(parts[2], text)
        if head is None or tail is None:
            counts.not_a_span += 1
            counts.examples.append(f"not a span: {line!r}")
            continue
        if head[0].lower() == tail[0].lower():
            counts.same_span += 1
            continue
        k = (head[0], relation, tail[0])
        if k in seen:
            counts.duplicate += 1
            continue
        seen.add(k)
        out.append(ParsedTriple(head[0], relation, tail[0], head[1], tail[1], i))
        counts.kept += 1
    return out, counts


def line_confidences(pieces: Sequence[str], probs: Sequence[float]) -> list[float]:
    """Confidence of each generated line: the geometric mean of its tokens' probabilities.

    Args:
        pieces: the generated tokens as text, in order.
        probs: the probability the model gave each of them.

    Returns:
        One value per line of ``"".join(pieces)`` that holds text (blank lines skipped), in
        the order :func:`parse_generation` numbers lines; a token ending a line (``\\n``)
        counts for that line.

    Example:
        >>> [round(c, 3) for c in line_confidences(["a", " b", "\\n", "c"], [0.5, 0.5, 1, 0.8])]
        [0.63, 0.8]
    """
    import math

    lines: list[list[float]] = [[]]
    text = [""]
    for piece, p in zip(pieces, probs, strict=True):
        lines[-1].append(math.log(max(float(p), 1e-12)))
        text[-1] += piece
        for _ in range(piece.count("\n")):
            lines.append([])
            text.append("")
    return [
        math.exp(sum(lp) / len(lp)) for lp, t in zip(lines, text, strict=True) if lp and t.strip()
    ]
