"""kg/: loading with line-numbered errors, graph queries, linker, symbolic check, round trips."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys

import pytest
from tiny import ALIASES, FACTS, SCHEMA

from kg import (
    EntityLinker,
    KnowledgeGraph,
    Relation,
    Schema,
    SourceFileError,
    Triple,
    check_claim,
    load_aliases,
    load_passages,
    load_source,
    load_triples,
    write_source,
)
from kg.loaders import multi_object_functional


@pytest.fixture
def graph() -> KnowledgeGraph:
    return KnowledgeGraph([Triple(*f) for f in FACTS], SCHEMA, ALIASES)


def test_graph_queries(graph):
    assert len(graph) == len(FACTS)
    assert graph.objects("Mongolia", "borders") == ["China", "Russia"]
    assert graph.objects("Atlantis", "capital") == []
    assert graph.subjects("region", "Asia") == ["Mongolia", "China"]
    assert {t.subject for t in graph.facts_about("Mongolia") if t.object == "Mongolia"} == {
        "China",
        "Russia",
    }
    assert [t.relation for t in graph.facts("Mongolia", "capital")] == ["capital"]
    assert graph.has_fact("China", "capital", "Beijing")


def test_neighbourhood_and_subgraph(graph):
    one = {t.key for t in graph.neighbourhood("Ulaanbaatar", hops=1)}
    assert one == {"Mongolia\tcapital\tUlaanbaatar"}
    two = graph.subgraph(["Ulaanbaatar"], hops=2)
    assert "Beijing" not in two and "China" in two
    assert two.has_fact("China", "borders", "Mongolia")
    assert len(graph.subgraph(["Ulaanbaatar"], hops=0)) == 0
    with pytest.raises(ValueError, match="`hops` must be >= 0, got -1"):
        graph.subgraph(["Mongolia"], hops=-1)


def reference_ball(graph, entities, hops):
    """Entities within ``hops`` edges of ``entities``, either direction: a plain BFS."""
    frontier = {e for e in entities if e in graph}
    keep = set(frontier)
    for _ in range(hops):
        step = {
            n for e in frontier for n in (*graph.graph.successors(e), *graph.graph.predecessors(e))
        }
        frontier, keep = step - keep, keep | step
    return keep


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
@pytest.mark.parametrize("entities", [["Ulaanbaatar"], ["Beijing", "Pretoria", "Atlantis"], []])
def test_subgraph_matches_breadth_first_search(graph, entities, hops):
    keep = reference_ball(graph, entities, hops)
    sub = graph.subgraph(entities, hops=hops)
    assert set(sub.entities) == {n for t in sub.triples() for n in (t.subject, t.object)}
    want = {t.key for t in graph.triples() if t.subject in keep and t.object in keep}
    assert {t.key for t in sub.triples()} == want
    assert set(sub.aliases) == keep


def test_verbalize_and_describe(graph):
    assert graph.verbalize(Triple("Mongolia", "capital", "Ulaanbaatar")) == (
        "The capital of Mongolia is Ulaanbaatar."
    )
    assert "The languages of South Africa are Zulu and English." in graph.describe("South Africa")


def test_stats(graph):
    s = graph.stats()
    assert s["facts"] == 22
    assert s["per_relation"]["capital"] == {"facts": 11, "subjects": 9, "functional": True}
    assert s["per_relation"]["borders"]["facts"] == 4


def test_linker_longest_match_accents_case_and_ambiguity(graph):
    mentions = graph.linker.link("Is Ulan Bator in MONGOLIA, and is Mexico City in cote d'ivoire?")
    assert [(m.surface, m.candidates) for m in mentions] == [
        ("Ulan Bator", ("Ulaanbaatar",)),
        ("MONGOLIA", ("Mongolia",)),
        ("Mexico City", ("Mexico City",)),
        ("cote d'ivoire", ("Côte d'Ivoire",)),
    ]
    (mexico,) = graph.linker.link("Where is Mexico?")
    assert mexico.candidates == ("Mexico", "Mexico (Philippines)") and mexico.ambiguous
    text = "the capital of gambia"
    (gambia,) = graph.linker.link(text)
    assert text[gambia.start : gambia.end] == "gambia" and gambia.candidates == ("The Gambia",)


def test_linker_skips_lowercase_stopwords():
    linker = EntityLinker({"Of": [], "Chad": []})
    assert [m.surface for m in linker.link("What is the capital of Chad?")] == ["Chad"]
    assert [m.surface for m in linker.link("The town of Of is in Turkey.")] == ["Of"]
    # Policy rule 5: at a sentence start the capital letter is grammar, not a name.
    assert linker.link("Of is a town.") == []


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (("Mongolia", "capital", "Ulaanbaatar"), "supported"),
        (("mongolia", "capital", "ulan bator"), "supported"),  # case + alias
        (("Australia", "capital", "Sydney"), "contradicted"),  # functional
        (("South Africa", "capital", "Cape Town"), "supported"),  # one of three capitals
        (("South Africa", "capital", "Durban"), "contradicted"),
        (("South Africa", "language", "Xhosa"), "unknown"),  # many-valued, open
        (("Mongolia", "borders", "Kazakhstan"), "contradicted"),  # many-valued, closed
        (("Mongolia", "borders", "china"), "supported"),
        (("Atlantis", "capital", "Poseidonia"), "unknown"),  # unknown subject
        (("Australia", "region", "Oceania"), "unknown"),  # no fact for the relation
        (("Ivory Coast", "capital", "Yamoussoukro"), "supported"),  # subject alias
        (("Gambia", "capital", "Banjul"), "supported"),  # leading article
    ],
)
def test_symbolic_check(graph, claim, expected):
    assert check_claim(graph, *claim).result == expected


def test_check_ambiguous_subject(graph):
    c = check_claim(graph, "Mexico", "capital", "Mexico City")
    assert c.result == "supported" and c.subject == "Mexico"
    c = check_claim(graph, "Mexico", "capital", "Manila")
    # The Philippine town has no capital fact, so only the country can be meant.
    assert c.result == "contradicted" and c.subject == "Mexico"
    two = KnowledgeGraph(
        [Triple("Georgia", "capital", "Tbilisi"), Triple("Georgia (US)", "capital", "Atlanta")],
        SCHEMA,
        {"Georgia (US)": ["Georgia"]},
    )
    # Both entities hold a capital and they disagree: the shared name cannot be trusted
    # (issue 20: a merged name is never supported where it is ambiguous).
    for capital in ("Atlanta", "Tbilisi"):
        c = check_claim(two, "Georgia", "capital", capital)
        assert c.result == "unknown" and set(c.ambiguous) == {"Georgia", "Georgia (US)"}
        assert c.reason.startswith("ambiguous: 'Georgia' names 2 entities")
    assert check_claim(two, "Georgia", "capital", "Savannah").result == "contradicted"
    assert check_claim(two, "Georgia (US)", "capital", "Atlanta").result == "supported"


def test_check_unknown_relation_names_schema(graph):
    with pytest.raises(KeyError, match="relation 'population' is not in the schema"):
        check_claim(graph, "Mongolia", "population", "3 million")


def _write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_load_triples_all_formats_agree(tmp_path):
    tsv = _write(tmp_path, "t.tsv", "subject\trelation\tobject\nMongolia\tcapital\tUlaanbaatar\n")
    csv = _write(tmp_path, "t.csv", 'subject,relation,object\n"Mongolia",capital,Ulaanbaatar\n')
    jsonl = _write(
        tmp_path,
        "t.jsonl",
        json.dumps({"subject": "Mongolia", "relation": "capital", "object": "Ulaanbaatar"}) + "\n",
    )
    expected = [Triple("Mongolia", "capital", "Ulaanbaatar")]
    for p in (tsv, csv, jsonl):
        assert load_triples(p, SCHEMA) == expected


def test_load_triples_reports_every_bad_line(tmp_path):
    p = _write(
        tmp_path,
        "bad.tsv",
        "subject\trelation\tobject\tconfidence\n"
        "Mongolia\tcapital\tUlaanbaatar\t0.9\n"  # 2 ok
        "Mongolia\tcapital\n"  # 3 missing column
        "\tcapital\tParis\n"  # 4 empty subject
        "France\tmotto\tLiberty\n"  # 5 relation not in schema
        "France\tcapital\tParis\t1.7\n"  # 6 bad confidence
        "Mongolia\tcapital\tUlaanbaatar\n",  # 7 duplicate: dropped, not an error
    )
    with pytest.raises(SourceFileError) as info:
        load_triples(p, SCHEMA)
    msg = str(info.value)
    assert "4 bad lines; nothing was written" in msg
    assert f"{p}:3: expected at least" in msg
    assert f"{p}:4: empty field(s) ['subject']" in msg
    assert f"{p}:5: relation 'motto' is not in the schema" in msg and "relations.json" in msg
    assert f"{p}:6: confidence must be a number in [0, 1], got '1.7'" in msg
    assert [line for _, line, _ in info.value.errors] == [3, 4, 5, 6]


def test_load_triples_bad_encoding_names_line(tmp_path):
    p = _write(
        tmp_path,
        "latin1.tsv",
        "subject\trelation\tobject\nCuraçao\tcapital\tWillemstad\n".encode("latin-1"),
        mode="wb",
    )
    with pytest.raises(SourceFileError, match=r"latin1.tsv:2: not valid UTF-8 .*re-save"):
        load_triples(p, SCHEMA)


def test_load_triples_header_and_suffix_errors(tmp_path):
    p = _write(tmp_path, "nohead.tsv", "Mongolia\tcapital\tUlaanbaatar\n")
    with pytest.raises(SourceFileError, match=r"nohead.tsv:1: header lacks column"):
        load_triples(p)
    q = _write(tmp_path, "t.xml", "<x/>")
    with pytest.raises(ValueError, match=r"unknown triple file type '.xml'; use .tsv, .csv"):
        load_triples(q)
    with pytest.raises(FileNotFoundError, match=r"missing\.tsv does not exist"):
        load_triples(tmp_path / "missing.tsv")
    bad_json = _write(tmp_path, "t.jsonl", '{"subject": "A", "relation": "capital"\n[1]\n')
    with pytest.raises(SourceFileError) as info:
        load_triples(bad_json)
    assert [(n, r.split(" ")[0]) for _, n, r in info.value.errors] == [
        (1, "invalid"),
        (2, "expected"),
    ]


def test_duplicates_and_multi_object_functional(tmp_path):
    p = _write(
        tmp_path,
        "t.tsv",
        "subject\trelation\tobject\n"
        + "".join(f"{s}\t{r}\t{o}\n" for s, r, o in FACTS + FACTS[:3]),
    )
    src_report = __import__("kg").LoadReport()
    triples = load_triples(p, SCHEMA, report=src_report)
    assert len(triples) == len(FACTS) and src_report.duplicates_dropped == 3
    assert src_report.multi_object_functional == [
        ("South Africa", "capital", ["Pretoria", "Cape Town", "Bloemfontein"])
    ]
    assert multi_object_functional(triples, SCHEMA) == src_report.multi_object_functional


def test_schema_validation_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match=r"must contain \{subject\} and \{object\}"):
        Relation("capital", "The capital is {object}.")
    with pytest.raises(ValueError, match=r"needs \{subject\}"):
        Relation("capital", "{subject}: {object}", ["What is the capital?"])
    with pytest.raises(ValueError, match="defined twice"):
        Schema([Relation("a", "{subject} {object}"), Relation("a", "{subject} {object}")])
    path = SCHEMA.save(tmp_path / "relations.json")
    again = Schema.load(path)
    assert again.to_dict() == SCHEMA.to_dict()
    bad = _write(tmp_path, "bad.json", '{"relations": [{"name": "x"}]}')
    with pytest.raises(ValueError, match=r'bad.json: relations\[0\] must be an object with "name"'):
        Schema.load(bad)
    broken = _write(tmp_path, "broken.json", '{"relations": [\n,]}')
    with pytest.raises(ValueError, match=r"broken.json:2: invalid JSON"):
        Schema.load(broken)
    newer = _write(
        tmp_path,
        "newer.json",
        '{"relations": [{"name": "x", "template": "{subject} {object}", "weight": 2}]}',
    )
    with pytest.warns(UserWarning, match=r"unknown keys \['weight'\]"):
        Schema.load(newer)


def test_aliases_and_passages(tmp_path):
    a = _write(tmp_path, "aliases.tsv", "entity\talias\nUlaanbaatar\tUlan Bator\nBad line\n")
    with pytest.raises(SourceFileError, match=r"aliases.tsv:3: expected 'entity<TAB>alias'"):
        load_aliases(a)
    p = _write(
        tmp_path,
        "passages.jsonl",
        '{"id": "p1", "text": "Mongolia is landlocked.", "entities": ["Mongolia"]}\n'
        '{"id": "p1", "text": "again"}\n{"text": "no id"}\n',
    )
    with pytest.raises(SourceFileError) as info:
        load_passages(p)
    assert [n for _, n, _ in info.value.errors] == [2, 3]


def test_source_round_trip_and_graph_json(tmp_path, graph):
    src_dir = tmp_path / "src"
    _write(
        tmp_path,
        "t.tsv",
        "subject\trelation\tobject\n" + "".join(f"{s}\t{r}\t{o}\n" for s, r, o in FACTS),
    )
    SCHEMA.save(tmp_path / "relations.json")
    _write(tmp_path, "aliases.tsv", "".join(f"{e}\t{a}\n" for e, al in ALIASES.items() for a in al))
    # The alias "Mexico" of "Mexico (Philippines)" is the name of another entity: refused
    # unless allowed, and then listed in the report.
    with pytest.raises(SourceFileError, match=r"aliases.tsv:\d+: alias 'Mexico' of 'Mexico"):
        load_source(
            tmp_path / "t.tsv", tmp_path / "relations.json", aliases=tmp_path / "aliases.tsv"
        )
    source = load_source(
        tmp_path / "t.tsv",
        tmp_path / "relations.json",
        aliases=tmp_path / "aliases.tsv",
        allow_alias_merge=True,
    )
    assert "aliased entities have no fact" in source.report.notes[0]  # Mexico (Philippines)
    assert [(m["kind"], m["entities"]) for m in source.report.merges] == [
        ("alias", ["Mexico", "Mexico (Philippines)"])
    ]
    write_source(source, src_dir)
    again = load_source(
        src_dir / "triples.tsv",
        src_dir / "relations.json",
        aliases=src_dir / "aliases.tsv",
        allow_alias_merge=True,
    )
    assert again.triples == source.triples and again.aliases == source.aliases
    graph.save(tmp_path / "graph.json")
    loaded = KnowledgeGraph.load(tmp_path / "graph.json")
    assert sorted(t.key for t in loaded.triples()) == sorted(t.key for t in graph.triples())
    assert loaded.aliases == graph.aliases
    assert check_claim(loaded, "Ivory Coast", "capital", "Abidjan").result == "contradicted"


def test_kg_never_imports_torch():
    code = "import kg, kg.check, kg.loaders, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "module",
    [
        "kg.types",
        "kg.normalize",
        "kg.linker",
        "kg.graph",
        "kg.check",
        "kg.loaders",
        "kg.tables",
        "kg.schema",
    ],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# -- linker policy (kg/linker.py docstring), on a tiny elements KB -----------------------------
ELEMENTS = {
    # name: (symbol, atomic number)
    "Iron": ("Fe", "26"),
    "Indium": ("In", "49"),
    "Astatine": ("At", "85"),
    "Iodine": ("I", "53"),
    "Sulfur": ("S", "16"),
    "Manganese": ("Mn", "25"),
    "Helium": ("He", "2"),
    "Arsenic": ("As", "33"),
    "Nobelium": ("No", "102"),
    "Beryllium": ("Be", "4"),
    "Oxygen": ("O", "8"),
}


@pytest.fixture
def elements() -> KnowledgeGraph:
    schema = Schema(
        [
            Relation(
                "atomic_number",
                "The atomic number of {subject} is {object}.",
                ["What is the atomic number of {subject}?"],
            )
        ]
    )
    triples = [Triple(e, "atomic_number", n) for e, (_, n) in ELEMENTS.items()]
    return KnowledgeGraph(triples, schema, {e: [sym] for e, (sym, _) in ELEMENTS.items()})


def _linked(graph: KnowledgeGraph, text: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(m.surface, m.candidates) for m in graph.linker.link(text)]


def test_linker_possessive_is_ignored(elements):
    # Rule 3: "Manganese's" links Manganese, and the "s" of "'s" never links Sulfur.
    assert _linked(elements, "Manganese's atomic number is 10.") == [("Manganese", ("Manganese",))]
    assert _linked(elements, "Manganese’s atomic number is 10.") == [("Manganese", ("Manganese",))]
    assert _linked(elements, "Fe's price rose.") == [("Fe", ("Iron",))]
    assert _linked(elements, "O'Neill's cat") == []  # "O" glued to a word is no Oxygen
    assert elements.resolve("Manganese's") == ("Manganese",)
    assert check_claim(elements, "Manganese's", "atomic_number", "10").result == "contradicted"


def test_linker_short_names_need_exact_case(elements):
    # Rule 4: chemical symbols link only as written.
    assert _linked(elements, "Fe has atomic number 26.") == [
        ("Fe", ("Iron",)),
        ("26", ("26",)),
    ]
    assert _linked(elements, "fe and FE are not symbols; mn neither.") == []
    assert _linked(elements, "The symbol S stands for sulfur.") == [
        ("S", ("Sulfur",)),
        ("sulfur", ("Sulfur",)),
    ]
    assert elements.resolve("Fe") == ("Iron",) and elements.resolve("fe") == ()


@pytest.mark.parametrize(
    "text",
    ["In 1990 prices fell.", "At noon we met.", "I think so.", "Yesterday I think I saw it.",
     "As expected, it rained.", "He said no.", "No, thanks.", "Be careful.", "- In short, yes."],
)  # fmt: skip
def test_linker_common_words_do_not_link(elements, text):
    # Rule 5: a capital letter set by grammar is no evidence of a name.
    assert _linked(elements, text) == []


def test_linker_common_word_mid_sentence_links(elements):
    assert _linked(elements, "What is the atomic number of In?") == [("In", ("Indium",))]
    assert _linked(elements, "Compare He and As.") == [("He", ("Helium",)), ("As", ("Arsenic",))]
    assert _linked(elements, "what is the atomic number of in?") == []


def test_linker_and_check_see_through_lookalike_text(elements):
    zero_width = "Man\u200bganese"
    cyrillic = "M\u0430nganese"  # a Cyrillic "а"
    fullwidth = "Ｍａｎｇａｎｅｓｅ"
    for subject in (zero_width, cyrillic, fullwidth):
        text = f"The atomic number of {subject} is 10."
        (m,) = [m for m in elements.linker.link(text) if m.candidates == ("Manganese",)]
        assert text[m.start : m.end] == subject
        assert check_claim(elements, subject, "atomic_number", "10").result == "contradicted"
        assert check_claim(elements, subject, "atomic_number", "25").result == "supported"
    assert check_claim(elements, "Iron", "atomic_number", "2\u200b6").result == "supported"


def test_linker_reads_every_mention_of_a_long_text():
    names = {f"Element{i:03d}": [] for i in range(500)}
    text = "The list: " + ", ".join(names) + "."
    assert [m.surface for m in EntityLinker(names).link(text)] == list(names)
