"""Splitting text into the clauses a claim reader judges one by one, and stripping markup.

A model's answer is rarely one clean sentence: it adds a second clause ("..., and the capital
of Peru is Tokyo"), a parenthesis, a dash, markup (``<b>``, ``**``, ``</claim>``) or a numbered
list. Every clause is judged on its own and the answer's verdict is the worst of them, so a
false clause can never hide behind a true one. This module does the part that needs no
knowledge base: markup, numbered and bulleted lists, and the explicit separators (sentence
ends, semicolons, dashes, parentheses, line breaks). The clauses that need the templates
(coordinated "and the capital of X is Y", relative "which ...", text left after a reading)
are split by :meth:`kg.claims.ClaimReader.clauses`.

Names are never cut: spans given as ``protect`` (the linker's mentions, so "Washington, D.C."
or "Mexico (Philippines)" stay whole) hold no separator.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from kg.text import _after_abbreviation, _inside

ClauseKind = Literal["sentence", "coordinated", "relative", "rest"]
"""How a clause was split off: at an explicit separator (``sentence``), before a coordinated
clause with its own subject (``coordinated``), as a relative clause with its antecedent put
back (``relative``), or as text a reading left unread (``rest``)."""


@dataclass(frozen=True)
class Clause:
    """One clause of a text, as the reader judges it.

    Attributes:
        text: the clause (markup stripped; a relative clause starts with its antecedent).
        kind: how it was split off (:data:`ClauseKind`).
    """

    text: str
    kind: ClauseKind = "sentence"


# Inline tags format a word; any other tag (``</claim>``, ``<p>``, ``<br>``) ends a clause.
_INLINE_TAGS = frozenset(
    "a abbr b bdi bdo cite code data dfn em font i kbd mark q s samp small span strong sub "
    "sup time tt u var del ins".split()
)
_TAG = re.compile(r"<\s*/?\s*([A-Za-z][\w:.-]*)(?:\s[^<>]*)?/?\s*>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MD_IMAGE_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|~~|`+)")
_MD_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_MD_LINE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?)", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*[-*+•·][ \t]+(?=\S)", re.MULTILINE)
_NUMBER = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=:))\(?(\d{1,2})[.)](?=\s+\S)\s+")

# Explicit clause separators: a sentence end (any case follows: models write ". the capital
# ..."), a semicolon, a dash between spaces, an em dash, a line break.
_SEPARATOR = re.compile(
    r"(?P<end>[.!?…]+[\"'”’)\]]*)(?=\s)|;|\s[-–—]{1,2}\s|—|–(?=\s)|\n+|\s*\|\s*"
)
_CONTENT = re.compile(r"[^\W_]")
_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
# Words that state nothing on their own: a clause of these alone is not a claim.
_FILLER = re.compile(
    r"\b(?:i\s+(?:think|believe|guess|recall|suppose)|as\s+far\s+as\s+i\s+know|if\s+i\s+"
    r"(?:recall|remember)(?:\s+correctly)?|i'?m\s+(?:not\s+)?(?:sure|certain)|not\s+sure|"
    r"probably|possibly|maybe|perhaps|likely|right|of\s+course|in\s+fact|actually|indeed|"
    r"really|so|well|yes|though|too|as\s+well|also|then|etc|and|but|or|ok|okay|sure|"
    r"correct|true|thanks?|hope\s+(?:this|that)\s+helps|hmm+|um+|uh+|the\s+answer)\b",
    re.IGNORECASE,
)


def is_filler(text: str) -> bool:
    """True when ``text`` states nothing: punctuation and hedges ("I think", "right?") only.

    Example:
        >>> is_filler(", I think, right?"), is_filler("which borders Atlantis")
        (True, False)
    """
    return not _CONTENT.search(_FILLER.sub(" ", text))


def _abbreviation(text: str, dot: int) -> bool:
    """A full stop after an initial, a common abbreviation or an initialism ("D.C.")."""
    if _after_abbreviation(text, dot):
        return True
    i = dot
    while i > 0 and (text[i - 1].isalpha() or text[i - 1] == "."):
        i -= 1
    return bool(_INITIALISM.fullmatch(text[i:dot]))


def strip_markup(text: str) -> str:
    """``text`` without HTML/XML tags, Markdown emphasis, headings, links and entities.

    An inline tag (``<b>``, ``<em>``, ``<a>``) is dropped; any other tag (``</claim>``,
    ``<verdict>``, ``<p>``) becomes a line break, so what it held is a clause of its own.
    Bulleted lines keep a line break and lose their bullet.

    Example:
        >>> strip_markup("It is **Ulaanbaatar**.</claim><verdict>ok</verdict> <b>Lima</b>")
        'It is Ulaanbaatar.\\n\\nok\\n Lima'
    """
    text = _COMMENT.sub("\n", text)

    def tag(m: re.Match) -> str:
        return "" if m.group(1).lower() in _INLINE_TAGS else "\n"

    text = _TAG.sub(tag, text)
    text = html.unescape(text)
    text = _MD_IMAGE_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub("", text)
    text = _MD_STAR.sub(r"\1", text)
    text = _MD_LINE.sub("", text)
    return text


def join_enumeration(text: str) -> str:
    """A numbered ("1. China 2. Russia") or bulleted list rewritten as "China, Russia".

    Numbers count up by one from the first; fewer than two numbered items, or numbers that
    do not count up, leave the text as it is. A colon before the list is dropped
    ("Mongolia borders: 1. China 2. Russia" reads "Mongolia borders China, Russia").

    Example:
        >>> join_enumeration("1. China 2. Russia 3. Atlantis")
        'China, Russia, Atlantis'
        >>> join_enumeration("It borders:\\n- China\\n- Russia")
        'It borders China, Russia'
    """
    bullets = list(_BULLET.finditer(text))
    if len(bullets) >= 2:
        text = _join(text, [(m.start(), m.end()) for m in bullets])
    marks = list(_NUMBER.finditer(text))
    run: list[re.Match] = []
    for m in marks:
        if run and int(m.group(1)) == int(run[-1].group(1)) + 1:
            run.append(m)
        elif len(run) < 2:
            run = [m]
    if len(run) >= 2:
        text = _join(text, [(m.start(), m.end()) for m in run])
    return text


def _join(text: str, marks: Sequence[tuple[int, int]]) -> str:
    """Replace list markers at ``marks`` by commas between items (no line breaks inside)."""
    lead = text[: marks[0][0]].rstrip()
    if lead.endswith(":"):
        lead = lead[:-1].rstrip()
    items = []
    for i, (_, b) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        item = text[b:end]
        if i + 1 < len(marks):
            item = item.strip().rstrip(".,;").strip()
        else:
            item = item.strip()
            # The last item runs to the end of its line; what follows is the next clause.
            line_end = item.find("\n")
            rest = item[line_end:] if line_end >= 0 else ""
            item = (item[:line_end] if line_end >= 0 else item).strip()
            items.append(item)
            body = ", ".join(x for x in items if x)
            return (f"{lead} " if lead else "") + body + rest
        items.append(item)
    return text  # pragma: no cover - the loop always returns


def split_clauses(text: str, *, protect: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The clauses of ``text`` at its explicit separators, in order.

    Separators: sentence ends (whatever case follows), semicolons, dashes between words,
    line breaks, and parentheses: a parenthesis is a clause of its own and the text around it
    is one clause ("The capital of Mongolia (a country) is Ulaanbaatar" gives "The capital of
    Mongolia is Ulaanbaatar" and "a country"). No separator is placed inside a ``protect``
    span, after an initial ("J. R. R.") or a common abbreviation ("e.g."). Clauses without a
    letter or digit are dropped.

    Args:
        text: markup-free text (see :func:`strip_markup`).
        protect: ``(start, end)`` spans of names that must stay whole.

    Example:
        >>> split_clauses("Chad's capital is N'Djamena (and Japan's is Lima); it is big.")
        ["Chad's capital is N'Djamena", "and Japan's is Lima", 'it is big.']
    """
    protected = sorted(protect)
    outer, inner = _parentheses(text, protected)
    if inner:
        protected = []  # offsets moved when parentheses were taken out; initials still hold
    out: list[str] = []
    for piece in [outer, *inner]:
        start = 0
        for m in _SEPARATOR.finditer(piece):
            if m.group("end") is not None:
                if _abbreviation(piece, m.start()) or (
                    piece is outer and _inside(m.start(), protected)
                ):
                    continue
                cut = m.end()
            else:
                if piece is outer and _inside(m.start(), protected):
                    continue
                cut = m.start()
            out.append(piece[start:cut])
            start = m.end()
        out.append(piece[start:])
    clauses = [" ".join(c.split()) for c in out]
    return [c for c in clauses if _CONTENT.search(c)]


def _parentheses(text: str, protected: list[tuple[int, int]]) -> tuple[str, list[str]]:
    """``text`` with its (unprotected) parentheses and brackets taken out, and their contents.

    Offsets in the returned outer text shift, so protection holds only where nothing was
    taken out before a span; names with parentheses are whole mentions and are not taken.
    """
    inner: list[str] = []
    keep: list[str] = []
    depth, start, last = 0, 0, 0
    opener = ""
    for i, ch in enumerate(text):
        if ch in "([" and depth == 0 and not _inside(i, protected):
            depth, start, opener = 1, i, ch
            keep.append(text[last:i])
        elif depth and ch == opener:
            depth += 1
        elif depth and ch == {"(": ")", "[": "]"}[opener]:
            depth -= 1
            if depth == 0:
                inner.append(text[start + 1 : i])
                last = i + 1
                keep.append(" ")
    if depth:  # unclosed: the rest is the parenthesis
        inner.append(text[start + 1 :])
        last = len(text)
    keep.append(text[last:])
    outer = "".join(keep)
    if not inner:
        return text, []
    return " ".join(outer.split()).replace(" ,", ",").replace(" .", "."), inner


# Before a coordinated clause with its own subject ("..., and the capital of Peru is Tokyo")
# or a comma splice; before a relative clause ("..., which borders Atlantis").
_COORDINATION = re.compile(
    r"\s*,\s*(?:(?:and|but|while|whereas|although|though|yet|so)\s+(?:also\s+)?)?"
    r"|\s+(?:and|but|while|whereas|although|though|yet)\s+(?:also\s+)?",
    re.IGNORECASE,
)
_RELATIVE = re.compile(r"\s*,?\s+(?:which|who)\s+", re.IGNORECASE)
_LEADING_JOINER = re.compile(
    r"^\s*(?:[,;:.\-–—]\s*)*(?:(?:and|but|or|so|while|whereas|although|though|yet|also|"
    r"which|who|that)\b\s*)*",
    re.IGNORECASE,
)


def coordinated(
    text: str,
    readable: Callable[[str], bool],
    antecedent: Callable[[str], str | None],
    *,
    protect: Sequence[tuple[int, int]] = (),
    first_is_answer: bool = False,
) -> list[Clause]:
    """``text`` split before coordinated and relative clauses that a template reads.

    A split before "and"/"but"/a comma happens only when the right side is a statement of
    its own (``readable``) and the left side is too, or is the short answer that opens an
    answer (``first_is_answer``): "Zulu and English is spoken in South Africa" is one clause,
    "The capital of Chad is N'Djamena and the capital of Japan is Lima" two. A relative
    clause ("..., which borders Atlantis") gets its antecedent (``antecedent`` of the left
    side: its last object or last named entity) in place of "which".

    Args:
        text: one clause of :func:`split_clauses`.
        readable: does a statement template read this text?
        antecedent: what "which" refers back to in this (left) text, or None.
        protect: spans of names in ``text`` (never split inside).
        first_is_answer: the text opens an answer to a question (its first part may be a
            bare object).
    """
    protected = sorted(protect)
    for m in _RELATIVE.finditer(text):
        if _inside(m.start(), protected) or not _CONTENT.search(text[: m.start()]):
            continue
        left, right = text[: m.start()], text[m.end() :]
        ante = antecedent(left)
        if ante is None or not _CONTENT.search(right):
            continue
        comma = right.find(",")
        if comma > 0 and not readable(left) and _CONTENT.search(right[comma + 1 :]):
            # embedded: "Mongolia, which borders Atlantis, is in Asia" is "Mongolia is in
            # Asia" and "Mongolia borders Atlantis"
            main = f"{left} {right[comma + 1 :].strip()}"
            head = coordinated(
                main, readable, antecedent, protect=protect, first_is_answer=first_is_answer
            )
            return [*head, Clause(f"{ante} {right[:comma]}", "relative")]
        head = coordinated(
            left, readable, antecedent, protect=protect, first_is_answer=first_is_answer
        )
        return [*head, Clause(f"{ante} {right}", "relative")]
    for m in _COORDINATION.finditer(text):
        if _inside(m.start(), protected) or _inside(m.end() - 1, protected):
            continue
        left, right = text[: m.start()], text[m.end() :]
        if not (_CONTENT.search(left) and _CONTENT.search(right)) or not readable(right):
            continue
        if not (readable(left) or first_is_answer):
            continue
        shift = m.end()
        tail = coordinated(
            right,
            readable,
            antecedent,
            protect=[(a - shift, b - shift) for a, b in protected if a >= shift],
        )
        return [
            Clause(left),
            *(Clause(c.text, c.kind if c.kind != "sentence" else "coordinated") for c in tail),
        ]
    return [Clause(text)]


def strip_joiner(text: str) -> str:
    """``text`` without a leading conjunction or punctuation ("and also ...", ", which")."""
    return _LEADING_JOINER.sub("", text, count=1).strip()
