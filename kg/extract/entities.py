"""Entity mentions in a sentence: linked to the knowledge base's entities, or new.

Two passes, no model:

1. **Known entities.** The knowledge base's :class:`kg.EntityLinker` (longest match over
   names and aliases, case- and accent-insensitive; see :mod:`kg.linker`) links the names
   of an existing KB (``--kb``) and of an entities file (``--entities``, with their types).
2. **New entities.** Outside those spans, a *capitalised-span heuristic* proposes names:
   a run of capitalised words (``Frank Herbert``, ``Chilton Books``), which may hold
   lower-case connectors inside (``Isle of Man``, ``Ludwig van Beethoven``); a year or a
   date (``1965``, ``12 March 1990``, ``March 1990``); a number with an optional unit. A
   capitalised common word at the start of a sentence (``In``, ``The`` before a lower-case
   word) is not a name; ``The`` before a capitalised word is kept (``The Hobbit``). Names
   are split at "and" (``War and Peace`` reads as two names): lists are far more common.
   Such a mention has no type of its own; an extractor gives it the type its relation
   expects (the schema's ``subject_type``/``object_type``).

The heuristic is English-only and misses lower-case names ("iPhone") and names the
sentence puts in lower case; it is what the pattern extractor needs: spans in the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kg.graph import KnowledgeGraph
from kg.linker import STOPWORDS, EntityLinker
from kg.types import EntityId

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_WORD = r"[A-ZÀ-Þ][\w'’.-]*"
_CONNECT = r"(?:of|the|de|del|della|da|di|du|van|von|der|den|la|le|y|&|for|on)"
_NAME = re.compile(rf"{_WORD}(?:\s+(?:{_CONNECT}\s+)*{_WORD})*")
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{3,4}}|(?:{_MONTHS})\.?\s+\d{{1,2}},\s+\d{{3,4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{3,4}}|\d{{3,4}}s?)\b"
)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s*%)?(?![\w])")
# Sentence-initial capitalised words that are no names; checked after the stopword list.
_NOT_NAMES = frozenset(
    """after although because before but during following however if later many most
    since some such then though thus today unlike until while yet both each every""".split()
)


_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class EntityMention:
    """A span of a sentence that names an entity.

    Attributes:
        start, end: character offsets in the sentence.
        surface: the text of the span.
        entity: the entity it names: a KB entity when linked (the first candidate when the
            name is shared), else the surface itself (a new entity).
        candidates: every KB entity the span may name (empty for a new entity).
        known: the span was linked to the knowledge base or the entities file.
        type: the entity's type when known (entities file, or the KB's schema).
        kind: ``linked``, ``name``, ``date`` or ``number``.
    """

    start: int
    end: int
    surface: str
    entity: EntityId
    candidates: tuple[EntityId, ...] = ()
    known: bool = False
    type: str | None = None
    kind: str = "name"


def _overlaps(a: int, b: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < e and s < b for s, e in spans)


def _trim_connectors(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop connectors left dangling at either end of a span ("of Man" → "Man")."""
    words = text[start:end].split()
    while words and words[-1].lower() in {"of", "the", "and", "&", "for", "on", "de"}:
        end = text.rindex(words.pop(), start, end)
        end = len(text[:end].rstrip())
    return start, end


class EntityFinder:
    """Finds entity mentions in sentences (see the module docstring for the policy).

    Args:
        graph: an existing knowledge base whose entities and aliases are linked (optional).
        entity_types: entity → type, e.g. from an entities file; these names link too.

    Example:
        >>> f = EntityFinder(entity_types={"Frank Herbert": "person"})
        >>> [(m.surface, m.known, m.type) for m in f.find("Dune was written by Frank Herbert.")]
        [('Dune', False, None), ('Frank Herbert', True, 'person')]
    """

    def __init__(
        self,
        graph: KnowledgeGraph | None = None,
        entity_types: Mapping[EntityId, str] | None = None,
    ) -> None:
        self.graph = graph
        self.entity_types: dict[EntityId, str] = dict(entity_types or {})
        names: dict[EntityId, list[str]] = {}
        if graph is not None:
            for e in graph.graph.nodes:
                names[e] = list(graph.aliases.get(e, []))
            for e, extra in graph.aliases.items():
                names.setdefault(e, list(extra))
        for e in self.entity_types:
            names.setdefault(e, [])
        self.linker = EntityLinker(names)
        # Several extractors read the same sentences: find each sentence's mentions once.
        self._cache: dict[str, list[EntityMention]] = {}

    def type_of(self, entity: EntityId) -> str | None:
        """The type of a known entity: the entities file, else the KB's schema."""
        if entity in self.entity_types:
            return self.entity_types[entity]
        return self.graph.entity_type(entity) if self.graph is not None else None

    def find(self, text: str) -> list[EntityMention]:
        """Mentions in ``text``, left to right, non-overlapping: linked names first, then
        dates, numbers and capitalised spans outside them."""
        hit = self._cache.get(text)
        if hit is not None:
            return list(hit)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        out = self._find(text)
        self._cache[text] = out
        return list(out)

    def _find(self, text: str) -> list[EntityMention]:
        out: list[EntityMention] = []
        taken: list[tuple[int, int]] = []
        for m in self.linker.link(text):
            entity = m.candidates[0]
            out.append(
                EntityMention(
                    m.start, m.end, m.surface, entity, m.candidates, True, self.type_of(entity),
                    "linked",
                )
            )  # fmt: skip
            taken.append((m.start, m.end))
        for kind, regex in (("date", _DATE), ("number", _NUMBER), ("name", _NAME)):
            for m in regex.finditer(text):
                a, b = m.span()
                if kind == "name":
                    a, b = self._name_span(text, a, b)
                    if a >= b:
                        continue
                if _overlaps(a, b, taken):
                    continue
                surface = text[a:b]
                out.append(EntityMention(a, b, surface, surface, (), False, None, kind))
                taken.append((a, b))
        return sorted(out, key=lambda m: m.start)

    @staticmethod
    def _name_span(text: str, a: int, b: int) -> tuple[int, int]:
        """The span of a capitalised run without a sentence-initial common word."""
        while a < b and text[b - 1] in ".'’-":
            b -= 1  # a full stop or quote glued to the last word
        if a == 0 or text[:a].rstrip()[-1:] in {"", '"', "“", "(", ":"}:
            first = text[a:b].split()[0] if text[a:b].split() else ""
            bare = first.lower().rstrip(".,")
            title = bare == "the" and len(text[a:b].split()) > 1  # "The Hobbit"
            if (bare in STOPWORDS or bare in _NOT_NAMES) and not title:
                rest = text.find(" ", a, b)
                if rest < 0:
                    return a, a
                a = rest + 1
                while a < b and (text[a].isspace() or not text[a].isupper()):
                    # skip connectors after the dropped word ("In the Shire" → "Shire")
                    nxt = text.find(" ", a, b)
                    if nxt < 0:
                        return a, a
                    a = nxt + 1
        return _trim_connectors(text, a, b)
