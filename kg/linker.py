"""Entity linking: find mentions of known entities in text by longest alias match."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kg.normalize import token_spans
from kg.types import EntityId

# Single lowercase function words are never taken as mentions: a town called "Of" (Turkey) or
# "Is" must not be linked in "What is the capital of Chad?". Capitalized they still link.
STOPWORDS = frozenset(
    """a an and are as at be by do does for from has have he her his how i in is it its me my
    no not of on or our she so that the their them then there these they this to too us was we
    were what when where which who whom why will with you your""".split()
)


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
    toks = tuple(t for t, _, _ in token_spans(unicodedata.normalize("NFKC", name)))
    return toks


class EntityLinker:
    """Longest-match linker over entity names and aliases, case- and accent-insensitive.

    Args:
        names: entity id → surface names (the id itself is always a name).

    Example:
        >>> linker = EntityLinker({"Mongolia": ["Mongol Uls"], "Ulaanbaatar": ["Ulan Bator"]})
        >>> [m.candidates for m in linker.link("Is Ulan Bator the capital of MONGOLIA?")]
        [('Ulaanbaatar',), ('Mongolia',)]
    """

    def __init__(self, names: Mapping[EntityId, Iterable[str]]) -> None:
        table: dict[tuple[str, ...], set[EntityId]] = defaultdict(set)
        for entity, aliases in names.items():
            for name in (entity, *aliases):
                key = _key(name)
                if not key:
                    continue
                table[key].add(entity)
                if len(key) > 1 and key[0] == "the":  # "The Gambia" is also said "Gambia"
                    table[key[1:]].add(entity)
        self._table = {k: tuple(sorted(v)) for k, v in table.items()}
        self._max_len = max((len(k) for k in self._table), default=0)

    def __len__(self) -> int:
        """Number of distinct surface names."""
        return len(self._table)

    def lookup(self, name: str) -> tuple[EntityId, ...]:
        """Entities whose name or alias equals ``name`` (after normalization), sorted."""
        key = _key(name)
        hit = self._table.get(key, ())
        if not hit and len(key) > 1 and key[0] == "the":
            hit = self._table.get(key[1:], ())
        return hit

    def link(self, text: str) -> list[Mention]:
        """Mentions in ``text``, left to right, non-overlapping, longest match first."""
        spans = token_spans(text)
        folded = [t for t, _, _ in spans]
        mentions: list[Mention] = []
        i = 0
        while i < len(spans):
            for n in range(min(self._max_len, len(spans) - i), 0, -1):
                candidates = self._table.get(tuple(folded[i : i + n]))
                if candidates is None:
                    continue
                start, end = spans[i][1], spans[i + n - 1][2]
                surface = text[start:end]
                if n == 1 and folded[i] in STOPWORDS and surface.islower():
                    continue
                mentions.append(Mention(start, end, surface, candidates))
                i += n
                break
            else:
                i += 1
        return mentions
