"""Text normalization shared by the entity linker and the symbolic check.

Matching is case- and accent-insensitive: ``"Zürich"``, ``"ZURICH"`` and ``"zurich"`` are
the same name; thousands separators inside numbers are ignored (``1,564,110`` = ``1564110``).
"""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"\w+", re.UNICODE)
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f ](?=\d{3}\b)")


def fold(token: str) -> str:
    """Casefold and strip accents (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tokens(text: str) -> list[str]:
    """Folded word tokens of ``text`` (punctuation dropped)."""
    return [fold(m.group()) for m in _TOKEN.finditer(_THOUSANDS.sub("", text))]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """``(folded token, start, end)`` with character offsets into ``text``."""
    return [(fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def normalize(text: str) -> str:
    """A comparison key: folded tokens joined by single spaces, a leading "the" dropped.

    Example:
        >>> normalize("The Gambia") == normalize("gambia")
        True
        >>> normalize("1,564,110 km²") == normalize("1564110 km2")
        True
    """
    toks = tokens(unicodedata.normalize("NFKC", text))
    if len(toks) > 1 and toks[0] == "the":
        toks = toks[1:]
    return " ".join(toks)
