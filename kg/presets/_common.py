"""Helpers shared by the presets: imports, text cleaning, ISO names, unique ids, assembly.

Everything here is data plumbing; the choices a reader may question (which currency codes
are dropped, which language names are replaced) are tables with a comment saying why.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from types import ModuleType

from kg.loaders import multi_object_functional
from kg.normalize import normalize as _normalize
from kg.schema import Schema
from kg.source import KnowledgeSource, LoadReport
from kg.types import EntityId, Passage, Triple


def require(module: str, pip_name: str, preset: str) -> ModuleType:
    """Import ``module`` or fail with the pip command that installs it.

    Raises:
        ImportError: the module is not installed; the message names ``pip_name``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"the `{preset}` preset reads its data from the `{pip_name}` package, which is not "
            f"installed ({e}); install it with `pip install {pip_name}`"
        ) from None


@functools.lru_cache(maxsize=1 << 18)
def normalize(text: str) -> str:
    """:func:`kg.normalize.normalize`, memoized: the cities preset compares ~70,000 names
    several times (grouping, id claims, alias checks)."""
    return _normalize(text)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a preset builds its objects.

    Building ~140,000 triples and their dictionaries allocates about a million objects and
    sets off repeated full collections, which cost more than half the run; the presets
    create no reference cycles, so nothing is left for the collector to find. The
    collector's previous state is restored on exit, also after an error.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


PLACEHOLDERS = frozenset({"none", "null", "n/a", "nan"})
"""Casefolded strings that stand for a missing value in data files."""


def clean(value: object, *, placeholders: bool = True) -> str | None:
    """A stripped single-line string, or None for missing, empty and placeholder values.

    Invisible format characters (category ``Cf``: the left-to-right and right-to-left marks
    the data carries around Arabic names) are removed; with ``placeholders``, the strings of
    :data:`PLACEHOLDERS` (``"None"``, ``"N/A"``, ...) count as missing, so no fact ever has the
    object ``"None"``. Pass ``placeholders=False`` for real names that look like one: None
    is a town in Italy, Nan a city in Thailand.

    Example:
        >>> clean("  \u200fالبحرين "), clean(""), clean("None"), clean(None)
        ('البحرين', None, None, None)
    """
    if value is None or isinstance(value, (bool, dict, list, tuple)):
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():  # format characters are never ASCII
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = " ".join(text.split())
    if not text or (placeholders and text.casefold() in PLACEHOLDERS):
        return None
    return text


def script_runs(text: str) -> list[str]:
    """Split a name written in several scripts into one name per script.

    countryinfo's ``nativeName`` sometimes joins the names of several scripts
    (``"Монгол улс ᠮᠤᠩᠭᠤᠯ ᠤᠯᠤᠰ"``, ``"Tchad تشاد"``, ``"Algérie / ⵍⵣⵣⴰⵢⴻⵔ / الجزائر"``);
    as one alias such a string never matches any text.

    Example:
        >>> script_runs("Tchad تشاد")
        ['Tchad', 'تشاد']
        >>> script_runs("Κύπρος - Kıbrıs")
        ['Κύπρος', 'Kıbrıs']
    """
    out: list[str] = []
    for part in re.split(r"\s*/\s*|\s+-\s+", text):
        runs: list[tuple[str | None, list[str]]] = []
        for token in part.split():
            letters = [c for c in token if c.isalpha()]
            script = unicodedata.name(letters[0], "?").split(" ")[0] if letters else None
            if runs and (script is None or runs[-1][0] in (None, script)):
                runs[-1][1].append(token)
                if runs[-1][0] is None:
                    runs[-1] = (script, runs[-1][1])
            else:
                runs.append((script, [token]))
        out.extend(" ".join(tokens) for _, tokens in runs)
    return [s for s in (clean(o) for o in out) if s]


# ---------------------------------------------------------------- currencies (ISO 4217)

# ISO 4217 codes that are not money a person would name as "the currency of X": funds and
# units of account (Bolivian Mvdol, WIR Euro/Franc, Unidad de Fomento, US Dollar next day,
# Uruguayan indexed units, SDR, ...), bond-market units, precious metals, test and "no
# currency" codes. Dropped wherever they appear next to the circulating currency.
NON_CIRCULATING_CURRENCIES = frozenset(
    "BOV CHE CHW CLF COU MXV USN USS UYI UYW XBA XBB XBC XBD XDR XSU XUA XTS XXX "
    "XAU XAG XPD XPT".split()
)

# Codes withdrawn from ISO 4217 (so unknown to pycountry) -> the code that replaced them.
# Redenominations keep the currency's name (BYR -> BYN Belarusian Ruble); the euro
# replaced the kuna (Croatia, 2023) and the lev (Bulgaria, 2026); the Caribbean guilder
# replaced the Netherlands Antillean guilder (2025). Withdrawn codes with no successor
# (CUC, CSD) are dropped.
SUCCESSOR_CURRENCIES = {
    "ANG": "XCG",
    "BGN": "EUR",
    "BYR": "BYN",
    "HRK": "EUR",
    "MRO": "MRU",
    "SLL": "SLE",
    "STD": "STN",
    "VEF": "VES",
    "ZMK": "ZMW",
}

# English names people use beside the ISO 4217 name (aliases of the currency entity).
# ISO codes are never aliases: "ALL" (Albanian lek) or "TOP" (Tongan pa'anga) are words.
CURRENCY_ALIASES = {
    "AED": ["United Arab Emirates dirham", "Emirati dirham"],
    "BAM": ["Bosnia and Herzegovina convertible mark"],
    "CNY": ["Renminbi", "Chinese yuan"],
    "GBP": ["British pound", "sterling"],
    "ILS": ["Israeli new shekel", "Israeli shekel", "shekel"],
    "KRW": ["South Korean won"],
    "MNT": ["Mongolian tögrög", "tögrög", "Mongolian tugrik"],
    "NIO": ["Nicaraguan córdoba"],
    "TOP": ["Tongan paʻanga"],
    "USD": ["United States dollar", "U.S. dollar", "American dollar"],
    "UYU": ["Uruguayan peso"],
    "VES": ["Venezuelan bolívar"],
    "XAF": ["Central African CFA franc"],
    "XOF": ["West African CFA franc"],
}


def currency(code: str, pycountry: ModuleType) -> tuple[str, str] | None:
    """``(ISO 4217 code, name)`` of the currency a person would name, or None.

    Funds and other non-circulating codes give None; withdrawn codes are mapped to their
    successor (see :data:`SUCCESSOR_CURRENCIES`); codes pycountry does not know give None.
    """
    code = code.strip().upper()
    if not code or code in NON_CIRCULATING_CURRENCIES:
        return None
    code = SUCCESSOR_CURRENCIES.get(code, code)
    record = pycountry.currencies.get(alpha_3=code)
    return None if record is None else (code, clean(record.name) or code)


# ---------------------------------------------------------------- languages (ISO 639)

# Invalid codes in the data -> the intended ISO 639 code ("rs" is Serbia's country code).
LANGUAGE_CODE_FIXES = {"rs": "sr"}

# ISO 639 names that are not what an English speaker says, or that would collide with a
# country ("Nauru", "Tonga (Tonga Islands)"). The ISO name stays an alias.
LANGUAGE_NAMES = {
    "dv": "Dhivehi",
    "el": "Greek",
    "ht": "Haitian Creole",
    "kl": "Greenlandic",
    "ky": "Kyrgyz",
    "na": "Nauruan",
    "pa": "Punjabi",
    "ps": "Pashto",
    "rn": "Kirundi",
    "to": "Tongan",
}

_PAREN = re.compile(r"\s*\([^)]*\)\s*$")


def language(code: str, pycountry: ModuleType) -> tuple[str, list[str]] | None:
    """``(English name, aliases)`` of an ISO 639-1 or 639-3 code, or None when unknown.

    Qualifiers such as ``" (macrolanguage)"`` are dropped (``"Malay (macrolanguage)"`` ->
    ``"Malay"``); :data:`LANGUAGE_NAMES` replaces a few ISO names.

    Example:
        >>> import pycountry
        >>> language("el", pycountry)
        ('Greek', ['Modern Greek (1453-)'])
    """
    code = LANGUAGE_CODE_FIXES.get(code.strip().lower(), code.strip().lower())
    key = "alpha_2" if len(code) == 2 else "alpha_3"
    record = pycountry.languages.get(**{key: code})
    if record is None:
        return None
    iso_name = clean(record.name) or code
    name = LANGUAGE_NAMES.get(code, _PAREN.sub("", iso_name))
    aliases = [a for a in (iso_name, clean(getattr(record, "common_name", None))) if a]
    return name, [a for a in aliases if a != name]


# ---------------------------------------------------------------- ids and assembly


def qualified(name: str, qualifier: str) -> str:
    """``"Name (qualifier)"``: the readable way a colliding name is made unique."""
    return f"{name} ({qualifier})"


class EntityIds:
    """Hands out canonical ids that are unique across every entity of a preset.

    Two ids are taken to collide when their :func:`kg.normalize.normalize` forms are equal
    (``"San José"`` and ``"San Jose"``), because the linker could not tell them apart either.

    Example:
        >>> ids = EntityIds()
        >>> ids.claim(("country", "MX"), ["Mexico"])
        'Mexico'
        >>> ids.claim(("city", 1), ["Mexico", "Mexico (Philippines)"])
        'Mexico (Philippines)'
    """

    def __init__(self) -> None:
        self._by_key: dict[str, object] = {}
        self._ids: dict[object, str] = {}

    def taken(self, name: str) -> bool:
        """Whether a name with the same normalized form is already an id."""
        return normalize(name) in self._by_key

    def claim(self, identity: object, candidates: list[str]) -> str:
        """The id of the entity ``identity``: the first free name of ``candidates``.

        The same ``identity`` always gets the same id.

        Raises:
            RuntimeError: every candidate is taken (a bug in the preset's candidates).
        """
        if identity in self._ids:
            return self._ids[identity]
        for name in candidates:
            key = normalize(name)
            if key and key not in self._by_key:
                self._by_key[key] = identity
                self._ids[identity] = name
                return name
        raise RuntimeError(
            f"no free id for entity {identity!r} among {candidates!r}; add a candidate that "
            "holds a unique key (e.g. the source's numeric id)"
        )


class Assembler:
    """Collects triples and aliases, drops duplicates, and builds the :class:`KnowledgeSource`.

    Args:
        name: the source name (``countries``).
        schema: the relations every added triple must use.
    """

    def __init__(self, name: str, schema: Schema) -> None:
        self.name = name
        self.schema = schema
        self._relations = frozenset(schema.names)
        self.report = LoadReport()
        self._triples: dict[str, Triple] = {}
        self._aliases: dict[EntityId, list[tuple[str, bool]]] = {}
        self.passages: list[Passage] = []

    def add(self, subject: str, relation: str, obj: str | None, source: str) -> None:
        """Add one fact; a missing ``obj`` (None) adds nothing, a repeated fact is counted."""
        if obj is None:
            return
        if relation not in self._relations:
            # A bug in the preset, not in the data: fail loudly.
            raise KeyError(f"preset {self.name!r}: relation {relation!r} is not in its schema")
        key = f"{subject}\t{relation}\t{obj}"  # Triple.key, without building the Triple
        if key in self._triples:
            self.report.duplicates_dropped += 1
        else:
            self._triples[key] = Triple(subject, relation, obj, source=source)

    def alias(
        self, entity: EntityId, names: Iterable[str | None], *, exclusive: bool = True
    ) -> None:
        """Add surface names of ``entity`` (cleaned; empty ones ignored).

        Args:
            exclusive: drop a name at :meth:`build` when it is the id of another node
                (the ISO name "Nauru" of the language Nauruan names the country). Pass False
                for the plain name of a qualified id ("Kingston" of "Kingston (Jamaica)"),
                which is meant to be shared so that the linker returns every candidate.
        """
        bucket = self._aliases.setdefault(entity, [])
        bucket.extend((n, exclusive) for n in (clean(x) for x in names) if n)

    def entities(self) -> set[EntityId]:
        """Every subject and object of the triples added so far."""
        out: set[EntityId] = set()
        for t in self._triples.values():
            out.add(t.subject)
            out.add(t.object)
        return out

    def build(self) -> KnowledgeSource:
        """The knowledge source: triples in insertion order, aliases deduplicated.

        Aliases are kept only for entities that appear in a triple. An alias is dropped when
        its normalized form equals its entity's own id, repeats an earlier alias of the same
        entity (up to case and accents), or, if exclusive, equals the id of another node.
        """
        triples = list(self._triples.values())
        present = self.entities()
        node_keys = {normalize(e) for e in present}
        aliases: dict[EntityId, list[str]] = {}
        for entity, names in self._aliases.items():
            if entity not in present:
                continue
            seen = {normalize(entity)}
            kept = []
            for n, exclusive in names:
                key = normalize(n)
                if not key or key in seen or (exclusive and key in node_keys):
                    continue
                seen.add(key)
                kept.append(n)
            if kept:
                aliases[entity] = kept
        self.report.multi_object_functional = multi_object_functional(triples, self.schema)
        return KnowledgeSource(
            triples=triples,
            schema=self.schema,
            aliases=aliases,
            passages=self.passages,
            name=self.name,
            report=self.report,
        )
