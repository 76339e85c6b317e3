"""The data presets: registry, the countries preset checked by hand, the cities scale test."""

import re
import subprocess
import sys
from collections import defaultdict

import pytest

from kg.loaders import load_source, write_source
from kg.normalize import normalize
from kg.presets import PRESETS, get_preset, list_presets, register_preset
from kg.source import KnowledgeSource

LITERAL_TYPES = {"demonym", "area"}  # values, not entities: may share a string with a node


@pytest.fixture(scope="module")
def countries() -> KnowledgeSource:
    return get_preset("countries")


@pytest.fixture(scope="module")
def cities() -> KnowledgeSource:
    return get_preset("cities")  # default min_population=5000: a few seconds


def objects(source, subject, relation):
    return sorted(t.object for t in source.triples if t.key.startswith(f"{subject}\t{relation}\t"))


def node_types(source):
    """Entity id -> the set of types the schema gives it as subject or object."""
    types = defaultdict(set)
    for t in source.triples:
        rel = source.schema[t.relation]
        types[t.subject].add(rel.subject_type)
        if rel.object_type not in LITERAL_TYPES:
            types[t.object].add(rel.object_type)
    return types


# ---------------------------------------------------------------- registry


def test_registry_lists_both_presets():
    assert list_presets() == ["cities", "countries"]
    assert set(PRESETS) == {"cities", "countries"}


def test_unknown_preset_error_lists_known_names():
    with pytest.raises(ValueError, match="unknown preset") as err:
        get_preset("countriez")
    assert "'countriez'" in str(err.value)
    assert "cities" in str(err.value) and "countries" in str(err.value)


def test_register_preset_rejects_duplicates_and_bad_names():
    with pytest.raises(ValueError, match="already registered"):
        register_preset("countries")
    with pytest.raises(ValueError, match="`name`"):
        register_preset("two words")

    @register_preset("test-tiny")
    def tiny(size: int = 1) -> KnowledgeSource:
        return KnowledgeSource(triples=[], schema=PRESETS["countries"]().schema, name=str(size))

    try:
        assert get_preset("test-tiny", size=3).name == "3"  # keyword settings are forwarded
    finally:
        del PRESETS["test-tiny"]


def test_missing_data_package_names_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "countryinfo", None)  # makes `import countryinfo` fail
    with pytest.raises(ImportError, match="pip install countryinfo"):
        get_preset("countries")


def test_importing_presets_loads_no_model_library():
    code = "import sys, kg.presets; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- shared contract


@pytest.mark.parametrize("preset", ["countries", "cities"])
def test_schema_covers_triples_and_templates_format(preset, request):
    source = request.getfixturevalue(preset)
    assert source.name == preset
    used = {t.relation for t in source.triples}
    assert used <= set(source.schema.names)
    assert used == set(source.schema.names)  # no relation is defined but empty
    for rel in source.schema:
        assert rel.statement("A", "B") == rel.template.format(subject="A", object="B")
        assert len(rel.questions) >= 2
        for i in range(len(rel.questions)):
            assert "A" in rel.question("A", i)
        if not rel.functional:
            assert rel.plural_template is not None
            assert "B and C" in rel.statement_many("A", ["B", "C"])


@pytest.mark.parametrize("preset", ["countries", "cities"])
def test_no_empty_or_placeholder_values(preset, request):
    source = request.getfixturevalue(preset)
    keys = [t.key for t in source.triples]
    assert len(keys) == len(set(keys))
    for t in source.triples:
        for value in (t.subject, t.object):
            assert value and value == value.strip() and "\t" not in value and "\n" not in value
            assert value.casefold() not in {"none", "null", "nan", "n/a"}
    for entity, names in source.aliases.items():
        assert names and all(n and n == n.strip() for n in names), entity


@pytest.mark.parametrize("preset", ["countries", "cities"])
def test_entity_ids_unique_across_types(preset, request):
    source = request.getfixturevalue(preset)
    types = node_types(source)
    mixed = {e: ts for e, ts in types.items() if len(ts) > 1}
    assert not mixed
    # ids that only differ by case or accents would be one name to the linker
    by_key = defaultdict(list)
    for entity in types:
        by_key[normalize(entity)].append(entity)
    assert not {k: v for k, v in by_key.items() if len(v) > 1}


@pytest.mark.parametrize("preset", ["countries", "cities"])
def test_currency_objects_are_names_not_codes(preset, request):
    source = request.getfixturevalue(preset)
    currencies = {t.object for t in source.triples if t.relation == "currency"}
    assert currencies
    assert not [c for c in currencies if re.fullmatch(r"[A-Z]{3}", c)]
    # funds and units of account are not money a person names
    assert not currencies & {"Mvdol", "WIR Euro", "WIR Franc", "US Dollar (Next day)", "Dollar"}


# ---------------------------------------------------------------- countries


def test_countries_size(countries):
    countries_ = {t.subject for t in countries.triples}
    assert 230 <= len(countries_) <= 260
    assert len(countries.triples) > 2000
    assert 230 <= len(countries.passages) <= 260


def test_mongolia_by_hand(countries):
    expected = {
        "capital": ["Ulaanbaatar"],
        "currency": ["Tugrik"],
        "borders": ["China", "Russia"],
        "official_language": ["Mongolian"],
        "region": ["Asia"],
        "subregion": ["Eastern Asia"],
        "demonym": ["Mongolian"],
        "area": ["1,564,110 square kilometres"],
    }
    for relation, objs in expected.items():
        assert objects(countries, "Mongolia", relation) == objs, relation


def test_borders_are_symmetric_and_between_countries(countries):
    pairs = {(t.subject, t.object) for t in countries.triples if t.relation == "borders"}
    assert pairs
    assert not [(a, b) for a, b in pairs if (b, a) not in pairs]
    subjects = {t.subject for t in countries.triples}
    assert {b for _, b in pairs} <= subjects
    assert countries.schema["borders"].closed and not countries.schema["borders"].functional


def test_cleaning_decisions(countries):
    subjects = {t.subject for t in countries.triples}
    # historical entities and the duplicates' second names are gone; Antarctica has no fact
    assert not subjects & {"Serbia and Montenegro", "Antilles néerlandaises", "Antarctica"}
    assert not subjects & {"Palestine, State of", "Holy See (Vatican City State)"}
    assert sum(1 for s in subjects if normalize(s) == "curacao") == 1
    assert "British Virgin Islands" in subjects  # ISO inverted name turned around
    capitals = ["Bloemfontein", "Cape Town", "Pretoria"]
    assert objects(countries, "South Africa", "capital") == capitals
    assert ("South Africa", "capital", ["Pretoria", "Cape Town", "Bloemfontein"]) in (
        countries.report.multi_object_functional
    )
    assert objects(countries, "Djibouti", "demonym") == ["Djiboutian"]
    assert objects(countries, "Croatia", "currency") == ["Euro"]  # HRK -> successor
    assert objects(countries, "Bolivia", "currency") == ["Boliviano"]  # BOV fund dropped
    assert objects(countries, "Vatican City State", "area") == ["0.49 square kilometres"]
    # capitals sharing a name with another capital or a country are qualified
    assert objects(countries, "Jamaica", "capital") == ["Kingston (Jamaica)"]
    assert objects(countries, "Singapore", "capital") == ["Singapore (Singapore)"]
    assert "Kingston" in countries.aliases["Kingston (Norfolk Island)"]
    assert any("holy_see_vatican_city_state.json" in n for n in countries.report.notes)


def test_country_aliases(countries):
    aliases = countries.aliases
    assert {"USA", "United States of America"} <= set(aliases["United States"])
    assert "US" not in aliases["United States"]
    assert "MN" not in aliases.get("Mongolia", []) and "MNG" not in aliases.get("Mongolia", [])
    assert "Монгол улс" in aliases["Mongolia"]  # nativeName, split per script
    assert not [a for a in aliases["Iceland"] if normalize(a) == "island"]
    assert "Thai" not in aliases["Thailand"]  # a demonym and a language, not the country
    assert "Japanese Yen" in aliases["Yen"]
    assert "United States dollar" in aliases["US Dollar"]
    assert "Greek" in {t.object for t in countries.triples if t.subject == "Greece"}
    entities = {t.subject for t in countries.triples} | {t.object for t in countries.triples}
    assert set(aliases) <= entities
    # an alias is never a code of two or three capital letters (words to the linker)
    codes = [a for names in aliases.values() for a in names if re.fullmatch(r"[A-Z]{2}", a)]
    assert codes == ["UK"]


def test_country_passages(countries):
    ids = [p.id for p in countries.passages]
    assert len(ids) == len(set(ids))
    subjects = {t.subject for t in countries.triples}
    for p in countries.passages:
        assert p.entities and set(p.entities) <= subjects and p.text.strip()
    mongolia = next(p for p in countries.passages if p.entities == ("Mongolia",))
    for word in ("Ulaanbaatar", "Tugrik", "China", "Russia", "Eastern Asia", "1,564,110"):
        assert word in mongolia.text


def test_countries_round_trip_through_files(countries, tmp_path):
    write_source(countries, tmp_path)
    back = load_source(
        tmp_path / "triples.tsv",
        tmp_path / "relations.json",
        aliases=tmp_path / "aliases.tsv",
        passages=tmp_path / "passages.jsonl",
        name="countries",
        # The preset names a city like its country ("Djibouti (Djibouti)" alias "Djibouti"):
        # shared names on purpose, which a file build accepts only when told so.
        allow_alias_merge=True,
    )
    assert back.report.merge_counts["alias"] > 0
    assert {t.key for t in back.triples} == {t.key for t in countries.triples}
    assert back.aliases == countries.aliases
    assert len(back.passages) == len(countries.passages)


# ---------------------------------------------------------------- cities


def test_cities_scale(cities):
    assert len(cities.triples) > 100_000
    per_city = defaultdict(int)
    for t in cities.triples:
        if t.relation == "country":
            per_city[t.subject] += 1
    assert len(per_city) > 60_000
    assert set(per_city.values()) == {1}  # functional: exactly one country per city


def test_cities_ambiguous_names_share_an_alias(cities):
    springfields = [e for e, names in cities.aliases.items() if "Springfield" in names]
    assert len(springfields) >= 5
    assert all(e.startswith("Springfield (") for e in springfields)
    assert "Springfield (United States, IL)" in springfields
    assert objects(cities, "Springfield (United States, IL)", "country") == ["United States"]
    # a city named like a country is qualified; the country keeps the name
    assert objects(cities, "Mexico (Philippines)", "country") == ["Philippines"]
    assert objects(cities, "Mexico", "capital") == ["Mexico City"]
    assert "Mexico" in cities.aliases["Mexico (Philippines)"]
    # real places whose names read as missing values are kept, qualified
    assert objects(cities, "None (Italy)", "country") == ["Italy"]
    assert objects(cities, "Nan (Thailand)", "country") == ["Thailand"]


def test_cities_country_facts(cities):
    capital = objects(cities, "Mongolia", "capital")
    assert capital == ["Ulan Bator"]  # matched through the city's alternate names
    assert "Ulaanbaatar" in cities.aliases["Ulan Bator"]
    assert objects(cities, "Ulan Bator", "timezone") == ["Asia/Ulaanbaatar"]
    assert objects(cities, "Mongolia", "continent") == ["Asia"]
    assert objects(cities, "Mongolia", "currency") == ["Tugrik"]
    assert objects(cities, "Canada", "currency") == ["Canadian Dollar"]  # not GeoNames' "Dollar"
    assert objects(cities, "Antarctica", "continent") == ["Antarctica (continent)"]


def test_cities_rejects_unknown_threshold():
    with pytest.raises(ValueError, match="`min_population` must be one of"):
        get_preset("cities", min_population=2000)
