"""Entity linking: find mentions of known entities in text by longest alias match.

Policy (each rule has a test in ``tests/test_kg.py``):

1. **Longest match, case- and accent-insensitive.** Names and aliases are compared through
   :mod:`kg.normalize`: NFKC, invisible format characters dropped, Cyrillic/Greek look-alike
   letters inside Latin words read as Latin, accents and case ignored. The longest name
   starting at a word wins; mentions never overlap.
2. **A shared name is never a silent guess.** A name of several entities gives one mention
   with every candidate (:attr:`Mention.ambiguous`).
3. **Possessive endings are ignored.** ``Manganese's`` links Manganese; the ``s`` of ``'s``
   (and any letter glued to a word by an apostrophe, as in ``O'Neill`` or ``don't``) is never
   a mention of its own, so an entity named ``S`` is not found there. :meth:`EntityLinker.lookup`
   also reads ``"Manganese's"`` as ``Manganese``.
4. **Short names and common words need their exact case.** A one-word name of one or two
   characters (chemical symbols, codes) or one that is a common English word (see
   :data:`STOPWORDS`) links only where the text writes it exactly as the name or alias is
   written: ``Fe`` links Iron in "Fe has atomic number 26", ``fe`` and ``FE`` do not.
5. **Case is no evidence where grammar sets it.** A common-word name at the start of a
   sentence (``In 1990``, ``At noon``, ``No, ...``) does not link, since English capitalises
   any word there; the pronoun ``I`` never links on its own, since English always capitalises
   it. Mid-sentence, an exact-case common word does link (``the melting point of In``).

Rules 3 to 5 apply to single-word names only; a longer name (``Isle of Man``) is specific
enough. :meth:`EntityLinker.lookup` compares a whole name, not running text, so it applies
rules 1 to 4 but not 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kg.normalize import shaped_tokens, token_spans
from kg.types import EntityId

# Common English words: a name that is one of them ("In" for Indium, "As" for Arsenic, a
# town called "Of") links only with its exact case and never at a sentence start, because
# these words fill every sentence and a case-insensitive match would link most of them.
STOPWORDS = frozenset(
    """a an and are as at be by do does for from has have he her his how i in is it its me my
    no not of on or our she so that the their them then there these they this to too us was we
    were what when where which who whom why will with you your""".split()
)

# Words English always capitalises: their case says nothing, so alone they never link.
ALWAYS_CAPITALISED = frozenset({"i"})

SHORT_NAME = 2
"""Single-word names of at most this many characters need their exact case (rule 4)."""

_APOSTROPHES = "'’ʼ"
_SENTENCE_END = ".!?:;…\n"
_OPENERS = "\"'“‘«([{*•-–—"


@dataclass(frozen=True)
class Mention:
    """A span of the text that names one or more entities.

    Attributes:
        start, end: character offsets into the linked text.
        surface: the text of the span.
        candidates: every entity the span may name, sorted; more than one when a name is
            shared (a city and a country named alike), never a silent guess.
    """

    start: int
    end: int
    surface: str
    candidates: tuple[EntityId, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def _key(name: str) -> tuple[str, ...]:
    return tuple(t for t, _, _ in token_spans(name))


def strict(key: tuple[str, ...]) -> bool:
    """True when a name with this folded key links only with its exact case (rule 4)."""
    return len(key) == 1 and (len(key[0]) <= SHORT_NAME or key[0] in STOPWORDS)


def name_key(name: str) -> tuple[str, ...]:
    """The key under which the linker files ``name``: two names with one key are one name.

    Folded tokens (case, accents, width, invisible characters and look-alike letters
    ignored) without a leading "the"; a strict name (policy rule 4) keeps its exact case.

    Example:
        >>> name_key("The Gambia") == name_key("GAMBIA"), name_key("In") == name_key("IN")
        (True, False)
    """
    key = _key(name)
    if len(key) > 1 and key[0] == "the":
        key = key[1:]
    if strict(key):
        return ("=", *shaped_tokens(name)[-1:])
    return key


def _glued(text: str, start: int, end: int) -> bool:
    """Is text[start:end] glued to a neighbouring word by an apostrophe (``'s``, ``O'``)?"""
    before = start >= 2 and text[start - 1] in _APOSTROPHES and text[start - 2].isalnum()
    after = end + 1 < len(text) and text[end] in _APOSTROPHES and text[end + 1].isalnum()
    if after and text[end + 1] in "sS" and not (end + 2 < len(text) and text[end + 2].isalnum()):
        after = False  # a possessive ending: "Fe's" still names Fe
    return before or after


def _sentence_start(text: str, start: int) -> bool:
    i = start
    while i > 0 and ((text[i - 1].isspace() and text[i - 1] != "\n") or text[i - 1] in _OPENERS):
        i -= 1
    return i == 0 or text[i - 1] in _SENTENCE_END


def _strip_possessive(name: str) -> str | None:
    """``name`` without a trailing ``'s`` / ``’s`` / ``s'``, or None if it has none."""
    stripped = name.rstrip()
    for a in _APOSTROPHES:
        if stripped.endswith((a + "s", a + "S")) and len(stripped) > 2:
            return stripped[:-2]
        if stripped.endswith(("s" + a, "S" + a)) and len(stripped) > 2:
            return stripped[:-1]
    return None


class EntityLinker:
    """Longest-match linker over entity names and aliases; see the module's policy.

    Args:
        names: entity id → surface names (the id itself is always a name).

    Example:
        >>> linker = EntityLinker({"Mongolia": ["Mongol Uls"], "Ulaanbaatar": ["Ulan Bator"]})
        >>> [m.candidates for m in linker.link("Is Ulan Bator the capital of MONGOLIA?")]
        [('Ulaanbaatar',), ('Mongolia',)]
        >>> iron = EntityLinker({"Iron": ["Fe"], "Indium": ["In"], "Sulfur": ["S"]})
        >>> [m.surface for m in iron.link("In 1990, Fe's price rose; fe is not S.")]
        ['Fe', 'S']
    """

    def __init__(self, names: Mapping[EntityId, Iterable[str]]) -> None:
        table: dict[tuple[str, ...], set[EntityId]] = defaultdict(set)
        exact: dict[tuple[str, ...], dict[tuple[str, ...], set[EntityId]]] = defaultdict(
            lambda: defaultdict(set)
        )
        for entity, aliases in names.items():
            for name in (entity, *aliases):
                key = _key(name)
                if not key:
                    continue
                table[key].add(entity)
                if strict(key):
                    exact[key][shaped_tokens(name)].add(entity)
                if len(key) > 1 and key[0] == "the":  # "The Gambia" is also said "Gambia"
                    table[key[1:]].add(entity)
        self._table = {k: tuple(sorted(v)) for k, v in table.items()}
        # strict key → exact surface (shape) → entities written so
        self._exact = {
            k: {shape: tuple(sorted(v)) for shape, v in by_shape.items()}
            for k, by_shape in exact.items()
        }
        self._max_len = max((len(k) for k in self._table), default=0)

    def __len__(self) -> int:
        """Number of distinct surface names."""
        return len(self._table)

    def _candidates(self, key: tuple[str, ...], surface: str) -> tuple[EntityId, ...]:
        hit = self._table.get(key, ())
        if hit and key in self._exact:
            # A strict name (rule 4): only the entities written exactly like the surface.
            return self._exact[key].get(shaped_tokens(surface), ())
        return hit

    def lookup(self, name: str) -> tuple[EntityId, ...]:
        """Entities whose name or alias equals ``name`` (after normalization), sorted.

        A possessive ending is ignored (``"Iron's"`` finds Iron) when the name with it is
        unknown; short and common-word names need their exact case (policy rules 1-4).
        """
        key = _key(name)
        hit = self._candidates(key, name)
        if not hit and len(key) > 1 and key[0] == "the":
            hit = self._candidates(key[1:], name.lstrip()[3:])
        if not hit and (bare := _strip_possessive(name)) is not None:
            hit = self.lookup(bare)
        return hit

    def link(self, text: str) -> list[Mention]:
        """Mentions in ``text``, left to right, non-overlapping, longest match first.

        Follows the module's policy: possessive ``'s`` ignored, short and common-word names
        only with their exact case and not where grammar capitalises them.
        """
        spans = token_spans(text)
        folded = [t for t, _, _ in spans]
        mentions: list[Mention] = []
        i = 0
        while i < len(spans):
            for n in range(min(self._max_len, len(spans) - i), 0, -1):
                key = tuple(folded[i : i + n])
                if key not in self._table:
                    continue
                start, end = spans[i][1], spans[i + n - 1][2]
                surface = text[start:end]
                if n == 1 and not self._single_word_ok(text, key, start, end):
                    continue
                candidates = self._candidates(key, surface)
                if not candidates:
                    continue
                mentions.append(Mention(start, end, surface, candidates))
                i += n
                break
            else:
                i += 1
        return mentions

    @staticmethod
    def _single_word_ok(text: str, key: tuple[str, ...], start: int, end: int) -> bool:
        """Rules 3 and 5 for a one-word match (rule 4 is :meth:`_candidates`)."""
        if not strict(key):
            return True
        if _glued(text, start, end):
            return False  # the "s" of "'s", the "O" of "O'Neill", the "t" of "don't"
        word = key[0]
        if word in ALWAYS_CAPITALISED:
            return False
        return not (word in STOPWORDS and _sentence_start(text, start))
