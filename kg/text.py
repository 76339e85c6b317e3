"""Text handling for claims: sentence splitting, chunking, answer lead-ins, list items.

The one listing of several names (:func:`join_items`, ``A, B and C``) and the one split of a
listed text (:func:`list_items`) live here, so the verbalizer, the answer format
(:mod:`grounded.answers`) and the claim reader agree.

Nothing here knows a knowledge base: entity spans that must not be cut come in as
``protect`` offsets (the auditor passes the linker's mentions, so "Washington, D.C." or
"St. John's" stay whole).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by whitespace and an
# uppercase letter, a digit or an opening quote; or at a line break.
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-Þ])|\n+")
_ABBREVIATIONS = frozenset("e.g i.e mr mrs ms dr st mt ft no vs approx ca cf fig jr sr".split())
_HAS_LETTER = re.compile(r"[^\W\d_]")
_HAS_DIGIT = re.compile(r"\d")

# Phrases that introduce a short answer ("It is Canberra.", "I think it's Canberra.").
_LEAD_IN = re.compile(
    r"^\s*(?:(?:i\s+(?:think|believe|guess)|probably|maybe|perhaps)\s*,?\s*)?"
    r"(?:it\s+is|it's|it\s+was|they\s+are|they're|that\s+is|that's|that\s+would\s+be|"
    r"the\s+answer(?:\s+to\s+(?:this|the|your)\s+question)?\s+is\s*:?|answer\s*:)\s+",
    re.IGNORECASE,
)
_LIST_SEPARATOR = re.compile(
    r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&|as\s+well\s+as|along\s+with|together\s+with)\s+"
    r"|\s*;\s*|\s*/\s*",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(r"\s*(?:[,;:]|\.(?=\s)|\s\(|\s[-–—]\s)\s*")


def split_sentences(
    text: str,
    *,
    protect: Sequence[tuple[int, int]] = (),
    max_chars: int = 500,
    keep_numbers: bool = False,
) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, in order.

    A sentence break is never placed inside a ``protect`` span, after a single letter
    ("J. R. R.") or after a common abbreviation ("e.g."). Sentences of punctuation alone
    ("---") are dropped, and so are sentences without a letter ("1.", a list number) unless
    ``keep_numbers``: an answer "2006." or "1,234 km2" states something. A sentence longer
    than ``max_chars`` is cut into chunks at whitespace, so very long text is processed piece
    by piece instead of refused.

    Args:
        text: any text (may be empty).
        protect: ``(start, end)`` spans that must stay inside one sentence.
        max_chars: longest sentence kept whole.
        keep_numbers: keep sentences that have a digit but no letter.

    Raises:
        ValueError: ``max_chars`` < 20.

    Example:
        >>> t = "The capital of Australia is Sydney. It has 5 million people."
        >>> [t[a:b] for a, b in split_sentences(t)]
        ['The capital of Australia is Sydney.', 'It has 5 million people.']
        >>> split_sentences("2006."), split_sentences("2006.", keep_numbers=True)
        ([], [(0, 5)])
    """
    if max_chars < 20:
        raise ValueError(f"`max_chars` must be >= 20, got {max_chars}")
    protected = sorted(protect)
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        cut = m.end() if not m.group().startswith("\n") else m.start()
        if not m.group().startswith("\n") and (
            _inside(m.start(), protected) or _after_abbreviation(text, m.start())
        ):
            continue
        spans.append((start, cut))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        content = _HAS_LETTER.search(text, a, b) or (keep_numbers and _HAS_DIGIT.search(text, a, b))
        if a < b and content:
            out.extend(_chunks(text, a, b, max_chars))
    return out


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    # Spans are few per sentence boundary; a linear scan over the sorted list is enough.
    for a, b in spans:
        if a > pos:
            return False
        if a <= pos < b:
            return True
    return False


def _after_abbreviation(text: str, dot: int) -> bool:
    i = dot
    while i > 0 and (text[i - 1].isalpha() or text[i - 1] == "."):
        i -= 1
    if i > 0 and text[i - 1] in "'’":  # "John's." is a possessive, not an initial
        return False
    word = text[i:dot].lower()
    # "U.S." and "D.C." are initials too: a dot inside the word
    return len(word) == 1 or "." in word or word in _ABBREVIATIONS


def _chunks(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    out = []
    while b - a > max_chars:
        cut = text.rfind(" ", a + 1, a + max_chars)
        if cut <= a:
            cut = a + max_chars
        out.append((a, cut))
        a = cut
        while a < b and text[a].isspace():
            a += 1
    if a < b:
        out.append((a, b))
    return out


def strip_lead_in(answer: str) -> str:
    """The answer without a lead-in such as "It is" or "I think it's".

    Example:
        >>> strip_lead_in("I think it is Canberra.")
        'Canberra.'
    """
    return _LEAD_IN.sub("", answer, count=1).strip()


def strip_end(text: str) -> str:
    """``text`` without surrounding whitespace and trailing sentence punctuation."""
    return text.strip().rstrip(".!?…").strip()


def join_items(items: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``: the one listing of several names.

    Raises:
        ValueError: ``items`` is empty.

    Example:
        >>> join_items(["Pashto", "Uzbek", "Turkmen"])
        'Pashto, Uzbek and Turkmen'
    """
    if not items:
        raise ValueError("`items` is empty; a listing needs at least one item")
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def list_items(text: str) -> list[str]:
    """Split an enumeration ("A, B and C", "A; B", "A/B") at its separators; merging names
    that contain a separator ("Bosnia and Herzegovina") is the caller's job.

    Example:
        >>> list_items("Pashto, Uzbek and Turkmen"), list_items("Zulu/English")
        (['Pashto', 'Uzbek', 'Turkmen'], ['Zulu', 'English'])
    """
    return [p for p in _LIST_SEPARATOR.split(text) if p.strip()]


def list_separators(text: str) -> list[tuple[int, int]]:
    """Spans of the enumeration separators of ``text`` (see :func:`list_items`)."""
    return [m.span() for m in _LIST_SEPARATOR.finditer(text)]


def boundaries(text: str) -> list[tuple[int, int]]:
    """Spans of clause boundaries (comma, semicolon, colon, full stop, parenthesis, dash)."""
    return [m.span() for m in _BOUNDARY.finditer(text)]


def list_pieces(
    sentence: str, max_chars: int, mentions: Sequence[tuple[int, int]] = ()
) -> list[str]:
    """A long listing sentence cut between its items, each piece with the sentence's lead.

    The lead is the text before the first item: the first item is the linked mention
    (``mentions``: character spans in ``sentence``) that ends at the first list separator,
    so a name of several words ("South Korea") stays whole; else the last word before it.
    Returns ``[]`` when the sentence lists fewer than three items.

    Example:
        >>> list_pieces("Mongolia borders China, Russia and Atlantis.", 40)
        ['Mongolia borders China and Russia.', 'Mongolia borders Atlantis.']
    """
    seps = list_separators(sentence)
    if len(seps) < 2:
        return []
    first = seps[0][0]
    start = sentence.rfind(" ", 0, first) + 1
    start = min(
        (a for a, b in mentions if a < start < b or (a < first and b == first)), default=start
    )
    if start <= 0:
        return []
    lead = sentence[:start]
    items = [strip_end(i).strip() for i in list_items(sentence[start:])]
    items = [i for i in items if i]
    if len(items) < 3:
        return []
    pieces, group = [], []
    for item in items:
        if group and len(lead) + len(join_items([*group, item])) + 1 > max_chars:
            pieces.append(f"{lead}{join_items(group)}.")
            group = []
        group.append(item)
    pieces.append(f"{lead}{join_items(group)}.")
    return pieces
