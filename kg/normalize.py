"""Text normalization shared by the entity linker, the loaders and the symbolic check.

Every matcher of grounded compares names through this module, so a rule added here serves
all of them. Before any comparison, text is **cleaned**:

- Unicode NFKC: full-width ``Ｍｏｎｇｏｌｉａ``, ligatures (``ﬁ``) and superscripts (``km²``)
  become their plain forms;
- format characters (category Cf: zero-width space, zero-width joiner, soft hyphen,
  bidirectional marks) are dropped: they are invisible, so they must not split or change a
  name;
- inside a word that mixes Latin letters with Cyrillic or Greek ones, the Cyrillic and
  Greek letters that look like Latin letters are read as those Latin letters (``Mоngolia``
  with a Cyrillic ``о`` is ``Mongolia``). A word written wholly in Cyrillic or Greek is left
  alone (``Москва`` stays itself). :func:`mixed_script` finds such names so a build can
  report them.

Then matching is case- and accent-insensitive: ``"Zürich"``, ``"ZURICH"`` and ``"zurich"``
are the same name; thousands separators inside numbers are ignored by :func:`normalize`
(``1,564,110`` = ``1564110``).
"""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"\w+", re.UNICODE)
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f ](?=\d{3}\b)")

# Cyrillic and Greek letters that are drawn like a Latin letter (a subset of Unicode TR39
# confusables.txt, letters only). Applied only inside words that also hold Latin letters.
_LOOKALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ѕ": "s", "і": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ԁ": "D",
    "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I", "Ү": "Y",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKES)


def _script(char: str) -> str | None:
    """``LATIN``, ``CYRILLIC``, ``GREEK``, ... for a letter; None for anything else."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else None


def scripts(word: str) -> set[str]:
    """The scripts of the letters of ``word`` (``{"LATIN", "CYRILLIC"}``)."""
    return {s for s in map(_script, word) if s is not None}


def is_format_char(char: str) -> bool:
    """True for invisible format characters (Unicode category Cf, e.g. zero-width space)."""
    return unicodedata.category(char) == "Cf"


def clean_with_offsets(text: str) -> tuple[str, list[int]]:
    """``text`` in NFKC without format characters, and each output character's source index.

    NFKC is applied character by character, so every character of the result maps back to
    the character of ``text`` it came from (one source character may give several, as
    ``ﬁ`` gives ``fi``).

    Example:
        >>> clean_with_offsets("Ｍo\\u200bn")
        ('Mon', [0, 1, 3])
    """
    if text.isascii():
        return text, list(range(len(text)))
    out: list[str] = []
    offsets: list[int] = []
    for i, c in enumerate(text):
        if is_format_char(c):
            continue
        n = unicodedata.normalize("NFKC", c) if not c.isascii() else c
        out.append(n)
        offsets.extend([i] * len(n))
    return "".join(out), offsets


def clean(text: str) -> str:
    """``text`` in NFKC with format characters (zero-width space, soft hyphen...) removed.

    Example:
        >>> clean("Ｍｏｎ\\u200bｇｏｌｉａ")
        'Mongolia'
    """
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", "".join(c for c in text if not is_format_char(c)))


def unconfuse(word: str) -> str:
    """``word`` with Cyrillic/Greek look-alikes of Latin letters replaced, if it mixes scripts.

    Example:
        >>> unconfuse("M\\u043engolia"), unconfuse("Москва")
        ('Mongolia', 'Москва')
    """
    if word.isascii():
        return word
    found = scripts(word)
    if "LATIN" in found and found & {"CYRILLIC", "GREEK"}:
        return word.translate(_LOOKALIKE_TABLE)
    return word


def mixed_script(name: str) -> bool:
    """True when a word of ``name`` mixes Latin letters with Cyrillic or Greek ones.

    Such a name is almost always a typing or copy error (or a deliberate look-alike); the
    build lists them.

    Example:
        >>> mixed_script("M\\u043engolia"), mixed_script("Москва"), mixed_script("Mongolia")
        (True, False, False)
    """
    return any(
        "LATIN" in (s := scripts(m.group())) and bool(s & {"CYRILLIC", "GREEK"})
        for m in _TOKEN.finditer(clean(name))
    )


def shape(token: str) -> str:
    """A token as written, look-alikes read as Latin and accents dropped, case kept."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", unconfuse(token))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(token: str) -> str:
    """Casefold and strip accents (NFKD, combining marks dropped); look-alikes read as Latin."""
    return shape(token).casefold()


def tokens(text: str) -> list[str]:
    """Folded word tokens of ``text`` (cleaned first, punctuation dropped)."""
    return [fold(m.group()) for m in _TOKEN.finditer(_THOUSANDS.sub("", clean(text)))]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """``(folded token, start, end)`` with character offsets into ``text`` as given.

    The text is cleaned first (NFKC, format characters dropped), so ``"Mon\\u200bgolia"`` is
    one token spanning the zero-width space.

    Example:
        >>> token_spans("Mon\\u200bgolia's")
        [('mongolia', 0, 9), ('s', 10, 11)]
    """
    if text.isascii():
        return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    cleaned, offsets = clean_with_offsets(text)
    return [
        (fold(m.group()), offsets[m.start()], offsets[m.end() - 1] + 1)
        for m in _TOKEN.finditer(cleaned)
    ]


def shaped_tokens(text: str) -> tuple[str, ...]:
    """Tokens of ``text`` with their case kept (see :func:`shape`): for exact-case matching."""
    return tuple(shape(m.group()) for m in _TOKEN.finditer(clean(text)))


def normalize(text: str) -> str:
    """A comparison key: folded tokens joined by single spaces, a leading "the" dropped.

    Example:
        >>> normalize("The Gambia") == normalize("gambia")
        True
        >>> normalize("1,564,110 km²") == normalize("1564110 km2")
        True
        >>> normalize("Ｍｏｎｇ\\u200bｏｌｉａ") == normalize("M\\u043engolia") == "mongolia"
        True
    """
    toks = tokens(text)
    if len(toks) > 1 and toks[0] == "the":
        toks = toks[1:]
    return " ".join(toks)
