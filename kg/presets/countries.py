"""The ``countries`` preset: facts about ~250 countries and territories from ``countryinfo``.

Reads the JSON files in the installed ``countryinfo`` package (``countryinfo/data/*.json``);
nothing is fetched. Each relation and its object form:

- ``capital`` (functional): city name. A few countries have several capitals, kept as
  several objects (the build report lists them): the data's own ``"A / B / C"`` values
  (Bonaire, Sint Eustatius and Saba) and :data:`EXTRA_CAPITALS` (South Africa, Bolivia,
  Eswatini, Sri Lanka).
- ``region``, ``subregion`` (functional): the UN M49 names the data uses (``Asia``,
  ``Eastern Asia``).
- ``currency`` (many-valued): the ISO 4217 name from pycountry (``Tugrik``, ``US Dollar``).
  Fund and accounting codes (BOV, CHE, CHW, CLF, USN, UYI, XDR, ...) are dropped, so only
  the money a person would name stays; withdrawn codes become their successor
  (VEF -> Bolívar Soberano, HRK -> Euro); see :mod:`kg.presets._common`.
- ``official_language`` (many-valued): the ISO 639 English name from pycountry, qualifiers
  such as "(macrolanguage)" removed and a few names replaced (``el`` -> Greek).
- ``borders`` (many-valued, closed): neighbour country names, made symmetric (if A lists
  B, B borders A too); codes with no country in the data (Kosovo's KOS/XKX) are dropped.
- ``demonym`` (functional): as written (``"Antiguan,Barbudan"`` becomes two objects).
- ``area`` (functional): ``"1,564,110 square kilometres"`` (thousands separated by commas,
  decimals only when the value has them: ``"0.49 square kilometres"``).

Cleaning, in order:

1. Only ``data/`` is read. ``data_no_iso/`` holds fragments without ISO codes (Gaza Strip,
   Jarvis Island, ...), a duplicate of Myanmar ("Burma") and UK constituent countries;
   none is a country with an ISO identity, so all are left out.
2. Historical entities are dropped: Serbia and Montenegro (dissolved 2006) and the
   Netherlands Antilles (dissolved 2010); their successors have their own records.
3. Records sharing an ISO alpha-3 code are merged: ``Curaçao.json``/``curaçao.json``
   (identical), the two Vatican records, ``palestine``/``palestine_state_of``. The record
   with the most filled fields wins (``holy_see_vatican_city.json`` "Vatican City State",
   ``palestine.json`` with capital Ramallah); empty fields are filled from the other
   record and its names become aliases.
4. The JSON ``name`` is the canonical id (file names are unreliable: ``congo.json`` holds
   the Democratic Republic). ISO "inverted" names become the altSpelling with the same
   words (``Virgin Islands, British`` -> ``British Virgin Islands``).
5. Empty strings, ``None`` and placeholder values give no fact: Antarctica, Macau and
   Heard Island get no capital; an entity left with no fact at all (Antarctica) is left out.
6. A demonym equal to the country's own name is a data error; :data:`DEMONYM_FIXES`
   replaces the three cases.

Entity ids are unique across countries, capitals, regions, subregions, currencies and
languages (compared after case and accent folding). A capital shared by name with another
capital or with a country becomes ``"Name (Country)"``: ``Kingston (Jamaica)``,
``Kingston (Norfolk Island)``, ``Singapore (Singapore)``; its plain name is an alias.
Demonyms and areas are literal values, not entities: ``Mongolian`` is both a demonym and a
language, and that is one node on purpose.

Aliases: altSpellings, the nativeName (split per script), merged records' names and
:data:`COUNTRY_ALIASES`. ISO 2- and 3-letter codes are not aliases (``MN``, ``CAN``, ``PER``,
``US`` are words to a case-insensitive linker; USA is added back by the table), nor are
names of other entities or demonyms (Thailand's ``Thai``, Togo's ``Togolese``). Currencies
get common English names (``US Dollar``: "United States dollar") and, when the ISO name is
one word, the issuing country's demonym in front (``Japanese Yen``). Languages keep their
ISO name as an alias. Capitals get nothing beyond :data:`CAPITAL_ALIASES` (renamed cities).

One passage per country restates its facts in prose (``entities=(country,)``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

from kg.presets._common import (
    CURRENCY_ALIASES,
    Assembler,
    EntityIds,
    clean,
    currency,
    language,
    normalize,
    qualified,
    require,
    script_runs,
)
from kg.presets._registry import register_preset
from kg.presets._relations import countries_schema
from kg.source import KnowledgeSource
from kg.types import Passage

HISTORICAL = frozenset({"SCG", "ANT"})
"""ISO alpha-3 codes of dissolved entities: Serbia and Montenegro, Netherlands Antilles."""

EXTRA_CAPITALS = {
    # Pretoria executive (the data's value), Cape Town legislative, Bloemfontein judicial
    "ZAF": ["Cape Town", "Bloemfontein"],
    "BOL": ["La Paz"],  # Sucre constitutional, La Paz seat of government
    "SWZ": ["Mbabane"],  # Lobamba legislative and royal, Mbabane administrative
    "LKA": ["Sri Jayawardenepura Kotte"],  # legislative capital; Colombo executive
}
"""Capitals the data leaves out, by ISO alpha-3 code (the data's value is kept as well)."""

DEMONYM_FIXES = {"DJI": "Djiboutian", "GIB": "Gibraltarian", "CXR": "Christmas Islander"}
"""The data gives the country's own name as demonym for these codes."""

COUNTRY_ALIASES = {"USA": ["USA", "U.S.", "U.S.A.", "United States of America"]}
"""Common short names that the code filter removes or the data lacks."""

CAPITAL_ALIASES = {"Nur-Sultan": ["Astana"], "Washington D.C.": ["Washington, D.C.", "Washington"]}
"""Capitals renamed since the data was written (Astana again since 2022) or spelled otherwise."""

BAD_ALIASES = frozenset({"island", "prathet", "abode of peace"})
"""Normalized altSpellings that are words or fragments, not names: Iceland's "Ísland" folds to
the word "island"; "Prathet" is Thai for "country"; "the Abode of Peace" is a cut-off piece
of Brunei's long name."""

_FIELDS = (
    "capital",
    "region",
    "subregion",
    "currencies",
    "languages",
    "borders",
    "demonym",
    "area",
)


def _filled(record: dict) -> int:
    return sum(1 for k in _FIELDS if record.get(k) not in (None, "", [], {}))


def _read(data_dir: Path, asm: Assembler) -> list[tuple[str, dict]]:
    """Records by file name, historical entities dropped and ISO duplicates merged."""
    files = sorted(data_dir.glob("*.json"))
    asm.report.files = [f"countryinfo/data/{f.name}" for f in files]
    asm.report.lines_read = len(files)
    groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for f in files:
        record = json.loads(f.read_text(encoding="utf-8"))
        iso = record.get("ISO") or {}
        code = clean(iso.get("alpha3")) or (clean(record.get("name")) or f.stem).casefold()
        if code in HISTORICAL:
            asm.report.notes.append(f"dropped historical entity {record.get('name')!r} ({f.name})")
            continue
        groups[code].append((f.name, record))
    merged = []
    for code, members in groups.items():
        members.sort(key=lambda m: (-_filled(m[1]), m[0]))
        (fname, primary), others = members[0], members[1:]
        primary = dict(primary)
        extra = [clean(primary.get("name"))]
        for oname, other in others:
            for k, v in other.items():
                if primary.get(k) in (None, "", [], {}):
                    primary[k] = v
            extra += [clean(other.get("name")), *(other.get("altSpellings") or [])]
            asm.report.notes.append(f"merged duplicate {oname} into {fname} (ISO {code})")
        primary["_names"] = [n for n in extra if n]
        merged.append((fname, primary))
    return sorted(merged, key=lambda m: m[0])


def _canonical_name(record: dict) -> str:
    name = clean(record.get("name")) or ""
    if ", " in name:  # ISO inverted form: use an altSpelling with the same words
        words = set(re.findall(r"[\w.]+", name.casefold()))
        for alt in record.get("altSpellings") or []:
            alt = clean(alt) or ""
            if "," not in alt and set(re.findall(r"[\w.]+", alt.casefold())) == words:
                return alt
    return name


def _split(value: object, seps: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    parts = [p for v in values if isinstance(v, str) for p in re.split(seps, v)]
    return [p for p in (clean(x) for x in parts) if p]


def _area(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x) or x <= 0:
        return None
    text = f"{int(x):,}" if x.is_integer() else f"{x:,.2f}".rstrip("0").rstrip(".")
    return f"{text} square kilometres"


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@register_preset("countries")
def countries() -> KnowledgeSource:
    """Facts about ~250 countries and territories, from the installed ``countryinfo`` data.

    Returns:
        A :class:`~kg.source.KnowledgeSource` named ``"countries"`` with relations
        capital, region, subregion, currency, official_language, borders, demonym and area,
        aliases, and one prose passage per country. The cleaning steps are in this
        module's docstring; what was dropped or merged is in ``report.notes``.

    Raises:
        ImportError: ``countryinfo`` or ``pycountry`` is not installed.

    Example:
        >>> src = countries()
        >>> facts = {(t.relation, t.object) for t in src.triples if t.subject == "Mongolia"}
        >>> sorted(o for r, o in facts if r == "borders")
        ['China', 'Russia']
    """
    countryinfo = require("countryinfo", "countryinfo", "countries")
    pycountry = require("pycountry", "pycountry", "countries")
    asm = Assembler("countries", countries_schema())
    records = _read(Path(countryinfo.__file__).parent / "data", asm)

    names: dict[str, str] = {}  # file -> canonical name
    by_code: dict[str, str] = {}  # ISO alpha-2 and alpha-3 -> canonical name
    for fname, r in records:
        names[fname] = _canonical_name(r)
        iso = r.get("ISO") or {}
        for k in ("alpha2", "alpha3"):
            if clean(iso.get(k)):
                by_code[clean(iso.get(k))] = names[fname]
    repeated = sorted(n for n, k in Counter(names.values()).items() if k > 1)
    if repeated:  # the merge by ISO code should have removed these; the data changed
        raise RuntimeError(f"countryinfo data has repeated country names: {repeated}")

    ids = EntityIds()
    for fname in names:
        ids.claim(("country", names[fname]), [names[fname]])
    return _facts(records, names, by_code, ids, asm, pycountry)


def _facts(
    records: list[tuple[str, dict]],
    names: dict[str, str],
    by_code: dict[str, str],
    ids: EntityIds,
    asm: Assembler,
    pycountry: ModuleType,
) -> KnowledgeSource:
    capitals = {f: _split(r.get("capital"), r"\s*/\s*") for f, r in records}
    for f, r in records:
        capitals[f] += EXTRA_CAPITALS.get((r.get("ISO") or {}).get("alpha3"), [])
    users: dict[str, set[str]] = defaultdict(set)  # normalized capital name -> countries
    for f, caps in capitals.items():
        for c in caps:
            users[normalize(c)].add(f)
    demonym_of = {names[f]: _split(r.get("demonym"), r"\s*[,/]\s*") for f, r in records}
    summary: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    display: dict[str, str] = {}  # entity id -> its plain name, for the prose passages
    dropped: dict[str, list[str]] = defaultdict(list)
    borders: dict[tuple[str, str], str] = {}  # (country, neighbour) -> source

    def fact(subject: str, relation: str, obj: str | None, source: str) -> None:
        if obj is not None:
            asm.add(subject, relation, obj, source)
            summary[subject][relation].append(obj)

    def entity(kind: str, key: object, name: str, candidates: list[str]) -> str:
        eid = ids.claim((kind, key), candidates)
        display[eid] = name
        asm.alias(eid, [name], exclusive=False)
        return eid

    for f, r in records:
        country, src = names[f], f"countryinfo:data/{f}"
        a3 = (r.get("ISO") or {}).get("alpha3")
        for c in dict.fromkeys(capitals[f]):
            # A name shared by two capitals (Kingston) or with another entity is qualified.
            shared = len(users[normalize(c)]) > 1 or ids.taken(c)
            candidates = [qualified(c, country)] if shared else [c]
            cid = entity("city", (f, c), c, candidates)
            fact(country, "capital", cid, src)
            asm.alias(cid, CAPITAL_ALIASES.get(c, []))
        for rel in ("region", "subregion"):
            value = clean(r.get(rel))
            if value:
                fact(country, rel, entity(rel, value, value, [value, qualified(value, rel)]), src)
        for code in r.get("currencies") or []:
            found = currency(code, pycountry) if isinstance(code, str) else None
            if found is None:
                dropped["currency codes (funds, withdrawn, unknown)"].append(f"{code} ({country})")
                continue
            code3, name = found
            cid = entity("currency", code3, name, [name, qualified(name, "currency")])
            fact(country, "currency", cid, src)
            asm.alias(cid, CURRENCY_ALIASES.get(code3, []))
            issuer_demonyms = demonym_of.get(by_code.get(code3[:2], ""), [])
            if " " not in name and issuer_demonyms:  # "Yen" -> "Japanese Yen"
                asm.alias(cid, [f"{issuer_demonyms[0]} {name}"])
        for code in r.get("languages") or []:
            found = language(code, pycountry) if isinstance(code, str) else None
            if found is None:
                dropped["language codes pycountry does not know"].append(f"{code} ({country})")
                continue
            name, iso_names = found
            lid = entity("language", name, name, [name, qualified(name, "language")])
            fact(country, "official_language", lid, src)
            asm.alias(lid, iso_names)
        for code in r.get("borders") or []:
            other = by_code.get(clean(code) or "")
            if other is None or other == country:
                dropped["border codes with no country in the data"].append(f"{code} ({country})")
                continue
            borders.setdefault((country, other), src)
            borders.setdefault((other, country), f"{src} (symmetric)")
        for d in demonym_of[country]:
            fact(country, "demonym", DEMONYM_FIXES.get(a3, d) if d == country else d, src)
        area = _area(r.get("area"))
        fact(country, "area", area, src)
        if area:
            asm.alias(
                area, [area.replace("square kilometres", "km²"), area.replace("metres", "meters")]
            )
    for (a, b), src in borders.items():
        fact(a, "borders", b, src)

    for what, items in dropped.items():
        asm.report.notes.append(f"dropped {len(items)} {what}: {', '.join(items)}")
    _country_aliases(records, names, asm)
    _passages(names, summary, display, asm)
    return asm.build()


def _country_aliases(
    records: list[tuple[str, dict]], names: dict[str, str], asm: Assembler
) -> None:
    present = asm.entities()
    for f, r in records:
        country = names[f]
        if country not in present:
            asm.report.notes.append(f"left out {country!r} ({f}): no fact survives cleaning")
            continue
        iso = r.get("ISO") or {}
        codes = {clean(iso.get("alpha2")), clean(iso.get("alpha3"))}
        native = clean(r.get("nativeName"))
        candidates = [
            *r["_names"],
            *(clean(a) for a in r.get("altSpellings") or []),
            *(clean(a) for a in r.get("alt") or []),
            *(script_runs(native) if native else []),
        ]
        kept = [a for a in candidates if a and a not in codes and normalize(a) not in BAD_ALIASES]
        # Names of other nodes ("Thai", "Lao", "Vatican City") are dropped by the assembler.
        asm.alias(country, [*kept, *COUNTRY_ALIASES.get(iso.get("alpha3"), [])])


def _passages(
    names: dict[str, str],
    summary: dict[str, dict[str, list[str]]],
    display: dict[str, str],
    asm: Assembler,
) -> None:
    for f in names:
        country = names[f]
        facts = summary.get(country)
        if not facts:
            continue
        facts = {rel: [display.get(o, o) for o in objs] for rel, objs in facts.items()}
        where = facts.get("subregion") or facts.get("region")
        parts = [f"{country} is located in {where[0]}" if where else country]
        if facts.get("region") and facts.get("subregion"):
            parts[0] += f", part of {facts['region'][0]}"
        parts[0] += "."
        caps = facts.get("capital", [])
        if caps:
            parts.append(f"Its capital{'s are' if len(caps) > 1 else ' is'} {_listing(caps)}.")
        langs = facts.get("official_language", [])
        if langs:
            parts.append(
                f"Its official language{'s are' if len(langs) > 1 else ' is'} {_listing(langs)}."
            )
        cur = facts.get("currency", [])
        if cur:
            parts.append(f"Its currenc{'ies are' if len(cur) > 1 else 'y is'} the {_listing(cur)}.")
        if facts.get("borders"):
            parts.append(f"It borders {_listing(sorted(facts['borders']))}.")
        if facts.get("area"):
            parts.append(f"Its area is {facts['area'][0]}.")
        if facts.get("demonym"):
            parts.append(f"Its people are called {' or '.join(facts['demonym'])}.")
        asm.passages.append(
            Passage(
                id=f"countries:{country}",
                text=" ".join(parts),
                entities=(country,),
                source=f"countryinfo:data/{f}",
            )
        )
