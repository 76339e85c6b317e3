"""Issue 13, knowledge-base input: a careless or hostile user's files get a clear exit-2 error
naming the file, line, value and fix, raised before any encoder loads, with nothing lost; a
user's own KB (tables, YAML, passages only, entity types) builds without friction.

Every bad-input case runs through ``main([...])`` with the encoder replaced by a trap, so a
case that reaches the encoder fails the test instead of loading a model.
"""

from __future__ import annotations

import json

import pytest

from grounded.cli.main import main
from kg import (
    KnowledgeGraph,
    Schema,
    SourceFileError,
    check_claim,
    load_entities,
    load_passages,
    load_source,
    load_triples,
)

SCHEMA_JSON = json.dumps(
    {
        "relations": [
            {
                "name": "symbol",
                "functional": True,
                "template": "The symbol of {subject} is {object}.",
                "questions": ["What is the symbol of {subject}?"],
                "subject_type": "element",
            },
            {
                "name": "atomic_mass",
                "functional": True,
                "template": "The atomic mass of {subject} is {object}.",
                "questions": ["What is the atomic mass of {subject}?"],
                "subject_type": "element",
            },
            {
                "name": "discovered_by",
                "functional": False,
                "template": "{subject} was discovered by {object}.",
                "questions": ["Who discovered {subject}?"],
                "subject_type": "element",
                "object_type": "person",
            },
        ]
    }
)
TRIPLES = (
    "subject\trelation\tobject\n"
    "Iron\tsymbol\tFe\n"
    "Iron\tatomic_mass\t55.85\n"
    "Oxygen\tsymbol\tO\n"
    "Oxygen\tatomic_mass\t16.00\n"
    "Oxygen\tdiscovered_by\tCarl Wilhelm Scheele\n"
)


class EncoderLoaded(Exception):
    """Raised by the trap: a bad input reached the encoder."""


@pytest.fixture
def no_encoder(monkeypatch):
    """Any encoder load fails the test: bad input must be refused before a model loads."""

    def trap(*args, **kwargs):
        raise EncoderLoaded("the encoder was loaded before the input was checked")

    monkeypatch.setattr("index.Encoder.default", trap)
    monkeypatch.setattr("index.Encoder.__init__", trap)


@pytest.fixture
def real_encoder(monkeypatch, encoder):
    monkeypatch.setattr("index.Encoder.default", lambda *a, **k: encoder)
    return encoder


@pytest.fixture
def files(tmp_path):
    """A small elements KB written as a user would: triples, schema, aliases."""
    (tmp_path / "triples.tsv").write_text(TRIPLES, encoding="utf-8")
    (tmp_path / "relations.json").write_text(SCHEMA_JSON, encoding="utf-8")
    (tmp_path / "aliases.tsv").write_text("entity\talias\nIron\tferrum\n", encoding="utf-8")
    return tmp_path


def _build(capsys, *args: str) -> tuple[int, str]:
    code = main(["kb", "build", *map(str, args)])
    return code, capsys.readouterr().err


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# -- bad input: exit 2, file + line + value + fix, no encoder, nothing lost ---------------------
def test_huge_line_in_tsv_and_csv(files, capsys, no_encoder):
    big = "x" * 10_000_000
    for name, sep in (("huge.tsv", "\t"), ("huge.csv", ",")):
        bad = _write(
            files / name,
            sep.join(("subject", "relation", "object"))
            + "\n"
            + sep.join(("Iron", "symbol", "Fe"))
            + "\n"
            + sep.join(("Iron", "symbol", big))
            + "\n",
        )
        code, err = _build(
            capsys, "--triples", bad, "--relations", files / "relations.json", "--out", files / "kb"
        )
        assert code == 2, err
        assert f"{bad}:3:" in err and "characters" in err and "limit" in err
        assert len(err) < 2000  # the 10 MB value is not echoed
    assert not (files / "kb").exists()


def test_folder_where_a_file_is_expected(files, capsys, no_encoder):
    for flag in ("--triples", "--relations", "--aliases", "--passages", "--entities"):
        args = {"--triples": files / "triples.tsv", "--relations": files / "relations.json"}
        args[flag] = files  # a folder
        argv = [x for kv in args.items() for x in kv]
        code, err = _build(capsys, *argv, "--out", files / "kb")
        assert code == 2, (flag, err)
        assert f"{files} is a folder, not a file" in err, (flag, err)
    code, err = _build(capsys, "--preset", "countries", "--encoder", files / "triples.tsv",
                       "--out", files / "kb")  # fmt: skip
    assert code == 2 and "`encoder`" in err and "is a file" in err


def test_out_is_a_file_or_below_a_file(files, capsys, no_encoder):
    precious = _write(files / "notes.txt", "my notes\n")
    for out, extra in ((precious, []), (precious, ["--overwrite"]), (precious / "kb", [])):
        code, err = _build(capsys, "--triples", files / "triples.tsv", "--relations",
                           files / "relations.json", "--out", out, *extra)  # fmt: skip
        assert code == 2 and "is a file" in err, err
    assert precious.read_text(encoding="utf-8") == "my notes\n"


def test_overwrite_never_replaces_a_folder_that_is_no_kb(files, capsys, no_encoder):
    home = files / "home"
    home.mkdir()
    _write(home / "thesis.tex", "years of work\n")
    code, err = _build(capsys, "--triples", files / "triples.tsv", "--relations",
                       files / "relations.json", "--out", home, "--overwrite")  # fmt: skip
    assert code == 2 and "holds no knowledge base" in err
    assert (home / "thesis.tex").read_text(encoding="utf-8") == "years of work\n"


@pytest.mark.parametrize(
    ("relation", "message"),
    [
        ({"functional": "no"}, "`functional` must be true or false; got str 'no'"),
        ({"closed": 1}, "`closed` must be true or false; got int 1"),
        ({"name": 123}, "`name` must be a non-empty string without tabs; got int 123"),
        ({"template": "{subject} was found in {year} by {object}."}, "placeholder(s) {year}"),
        ({"template": "{0} is {object} of {subject}."}, "unknown placeholder(s) {0}"),
        ({"template": "{subject} is {object!r}."}, "unknown placeholder(s) {object!r}"),
        ({"questions": ["Who is {object}?"]}, "unknown placeholder(s) {object}"),
        ({"questions": "What is {subject}?"}, "`questions` must be a list"),
        ({"template": "{subject} is {object"}, "not a valid template"),
        ({"subject_type": 5}, "`subject_type` must be a type name"),
    ],
)  # fmt: skip
def test_bad_relations_are_refused_at_load(files, capsys, no_encoder, relation, message):
    item = {"name": "symbol", "template": "The symbol of {subject} is {object}.", **relation}
    bad = _write(files / "bad.json", json.dumps({"relations": [item]}))
    code, err = _build(capsys, "--triples", files / "triples.tsv", "--relations", bad,
                       "--out", files / "kb")  # fmt: skip
    assert code == 2 and f"{bad}: relations[0]" in err and message in err, err
    if "placeholder" in message:
        assert "allowed: {subject}" in err


@pytest.mark.parametrize("text", ["", "\n\n  \n", "subject\trelation\tobject\n"])
def test_empty_triples_file_is_an_error(files, capsys, no_encoder, text):
    empty = _write(files / "empty.tsv", text)
    code, err = _build(capsys, "--triples", empty, "--relations", files / "relations.json",
                       "--out", files / "kb")  # fmt: skip
    assert code == 2 and f"{empty}: holds no triples" in err, err
    assert not (files / "kb").exists()


def test_csv_quoting_and_tsv_quotes(tmp_path):
    schema = Schema.load(_write(tmp_path / "r.json", SCHEMA_JSON))
    csv_file = _write(
        tmp_path / "t.csv",
        'subject,relation,object\nIron,symbol,"Fe, the metal"\nOxygen, symbol, "O, gas"\n',
    )
    assert [t.object for t in load_triples(csv_file, schema)] == ["Fe, the metal", "O, gas"]
    tsv_file = _write(tmp_path / "t.tsv", 'subject\trelation\tobject\nIron\tsymbol\t"Fe" metal\n')
    assert [t.object for t in load_triples(tsv_file, schema)] == ['"Fe" metal']
    broken = _write(tmp_path / "b.csv", 'subject,relation,object\nIron,symbol,"Fe" metal\n')
    with pytest.raises(SourceFileError, match=r"b.csv:2: bad CSV quoting"):
        load_triples(broken, schema)


def test_extra_columns_are_an_error(tmp_path):
    schema = Schema.load(_write(tmp_path / "r.json", SCHEMA_JSON))
    extra = _write(
        tmp_path / "extra.csv",
        "subject,relation,object\nIron,symbol,Fe\nUSA,symbol,Washington, D.C.\nOxygen,symbol,O,\n",
    )
    with pytest.raises(SourceFileError) as info:
        load_triples(extra, schema)
    assert [n for _, n, _ in info.value.errors] == [3]  # the trailing comma of line 4 is empty
    assert "4 cells but the header names 3 columns" in str(info.value)
    assert "quote a value that holds a comma" in str(info.value)
    header = _write(tmp_path / "h.tsv", "subject\trelation\tobject\tnotes\nIron\tsymbol\tFe\tx\n")
    with pytest.raises(
        SourceFileError, match=r"h.tsv:1: header has unknown column\(s\) \['notes'\]"
    ):
        load_triples(header, schema)
    jsonl = _write(tmp_path / "t.jsonl", '{"subject": "Iron", "relation": "symbol", '
                   '"object": "Fe", "note": "x"}\n')  # fmt: skip
    with pytest.raises(SourceFileError, match=r"t.jsonl:1: unknown key\(s\) \['note'\]"):
        load_triples(jsonl, schema)


def test_relation_table_errors_name_line(tmp_path):
    bad = _write(
        tmp_path / "relations.tsv",
        "relation\tfunctional\ttemplate\tquestions\n"
        "symbol\ttrue\tThe symbol of {subject} is {object}.\tWhat is the symbol of {subject}?\n"
        "mass\tperhaps\tThe mass of {subject} is {object}.\t\n"
        "year\tfalse\t{subject} was found in {year}.\t\n",
    )
    with pytest.raises(SourceFileError) as info:
        Schema.load(bad)
    assert [n for _, n, _ in info.value.errors] == [3, 4]
    assert "column 'functional' must be true or false; got 'perhaps'" in str(info.value)
    with pytest.raises(
        ValueError, match=r"unknown relation schema format '.xml'; use .json, .yaml"
    ):
        Schema.load(_write(tmp_path / "relations.xml", "<relations/>"))


def test_bad_passages_name_the_format(tmp_path):
    tsv_in_jsonl = _write(tmp_path / "passages.jsonl", "id\tentity\ttext\np1\tIron\tRusts.\n")
    with pytest.raises(SourceFileError) as info:
        load_passages(tsv_in_jsonl)
    assert "passages.jsonl:1: invalid JSON" in str(info.value)
    assert "passages are .jsonl" in str(info.value) and "columns id, entity, text" in str(
        info.value
    )
    with pytest.raises(ValueError, match=r"unknown passages file type '.md'"):
        load_passages(_write(tmp_path / "p.md", "# Iron\n"))
    no_text = _write(tmp_path / "p.csv", "id,entity,text\np1,Iron,\n")
    with pytest.raises(SourceFileError, match=r"p.csv:2: each passage needs"):
        load_passages(no_text)


def test_bad_entities_file(tmp_path):
    two_types = _write(tmp_path / "e.tsv", "entity\ttype\nIron\telement\nIron\tmetal\n")
    with pytest.raises(SourceFileError, match=r"e.tsv:3: entity 'Iron' has type 'metal' here and "
                       r"'element' on line 2"):  # fmt: skip
        load_entities(two_types)
    with pytest.raises(SourceFileError, match=r"header lacks column\(s\) \['type'\]"):
        load_entities(_write(tmp_path / "e2.csv", "entity\nIron\n"))


def test_nothing_saved_is_lost_on_bad_input(files, capsys, real_encoder):
    out = files / "kb"
    assert main(["kb", "build", "--triples", str(files / "triples.tsv"), "--relations",
                 str(files / "relations.json"), "--out", str(out)]) == 0  # fmt: skip
    before = (out / "manifest.json").read_bytes()
    bad = _write(files / "bad.tsv", "subject\trelation\tobject\nIron\tcolour\tgrey\n")
    code = main(["kb", "build", "--triples", str(bad), "--relations",
                 str(files / "relations.json"), "--out", str(out), "--overwrite"])  # fmt: skip
    assert code == 2 and "relation 'colour' is not in the schema" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before


# -- a user's own KB without friction ---------------------------------------------------------
def test_relations_as_yaml_and_table_equal_json(files):
    json_schema = Schema.load(files / "relations.json")
    yaml_file = _write(
        files / "relations.yaml",
        "relations:\n"
        "  - name: symbol\n    functional: true\n"
        "    template: 'The symbol of {subject} is {object}.'\n"
        "    questions: ['What is the symbol of {subject}?']\n    subject_type: element\n"
        "  - name: atomic_mass\n    template: 'The atomic mass of {subject} is {object}.'\n"
        "    questions: ['What is the atomic mass of {subject}?']\n    subject_type: element\n"
        "  - name: discovered_by\n    functional: false\n"
        "    template: '{subject} was discovered by {object}.'\n"
        "    questions: ['Who discovered {subject}?']\n"
        "    subject_type: element\n    object_type: person\n",
    )
    table = _write(
        files / "relations.csv",
        "relation,functional,template,questions,subject_type,object_type\n"
        "symbol,true,The symbol of {subject} is {object}.,What is the symbol of {subject}?,"
        "element,\n"
        "atomic_mass,TRUE,The atomic mass of {subject} is {object}.,"
        "What is the atomic mass of {subject}?,element,\n"
        "discovered_by,false,{subject} was discovered by {object}.,Who discovered {subject}?,"
        "element,person\n",
    )
    for other in (yaml_file, table):
        assert Schema.load(other).to_dict() == json_schema.to_dict()
    pipes = _write(
        files / "r.tsv",
        "relation\ttemplate\tquestions\nsymbol\tThe symbol of {subject} is {object}.\t"
        "What is the symbol of {subject}? | Which symbol has {subject}?\n",
    )
    assert Schema.load(pipes)["symbol"].questions == [
        "What is the symbol of {subject}?",
        "Which symbol has {subject}?",
    ]


def test_user_kb_with_table_schema_entities_and_warnings(files, capsys, real_encoder):
    _write(
        files / "relations.tsv",
        "relation\tfunctional\ttemplate\tquestions\tsubject_type\tobject_type\n"
        "symbol\ttrue\tThe symbol of {subject} is {object}.\tWhat is the symbol of {subject}?"
        "\telement\t\n"
        "atomic_mass\ttrue\tThe atomic mass of {subject} is {object}.\t\telement\t\n"
        "discovered_by\tfalse\t{subject} was discovered by {object}.\tWho discovered {subject}?"
        "\telement\tperson\n",
    )
    _write(
        files / "entities.csv",
        "entity,type\nIron,element\nOxygen,element\nCarl Wilhelm Scheele,element\n",
    )
    out = files / "kb"
    code = main(["kb", "build", "--triples", str(files / "triples.tsv"), "--relations",
                 str(files / "relations.tsv"), "--entities", str(files / "entities.csv"),
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    # atomic_mass has no question template: said at build time, and kept in the manifest.
    assert "relation(s) ['atomic_mass'] have no question templates" in printed
    # Scheele is typed "element" but discovered_by wants a person.
    assert "1 triple(s) break their relation's types" in printed and "'person'" in printed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "entities.tsv" in manifest["checksums"]
    assert manifest["load_report"]["relations_without_questions"] == ["atomic_mass"]
    assert manifest["counts"]["entities"] == 3 and manifest["counts"]["values"] == 4
    graph = KnowledgeGraph.load(out / "graph.json")
    assert graph.entity_type("Iron") == "element" and graph.entity_type("55.85") is None
    assert graph.types == {"element": ["Carl Wilhelm Scheele", "Iron", "Oxygen"]}
    assert not graph.is_entity("55.85") and graph.is_entity("Iron")


def test_kb_stats_counts_values_apart_and_never_loads_the_encoder(files, capsys, monkeypatch,
                                                                  real_encoder):  # fmt: skip
    out = files / "kb"
    assert main(["kb", "build", "--triples", str(files / "triples.tsv"), "--relations",
                 str(files / "relations.json"), "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()

    def trap(*args, **kwargs):
        raise EncoderLoaded("kb stats loaded the encoder")

    monkeypatch.setattr("index.Encoder.__init__", trap)
    monkeypatch.setattr("index.Encoder.default", trap)
    monkeypatch.setattr("index.FactIndex.load", trap)
    assert main(["kb", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    # Entities: the subjects Iron and Oxygen, and Scheele (object of a relation typed person).
    # Values: Fe, O, 55.85, 16.00: literals are not entities.
    assert (stats["entities"], stats["values"], stats["facts"]) == (3, 4, 5)
    assert stats["types"] == {"element": 2, "person": 1}
    assert main(["kb", "stats", str(out)]) == 0
    assert "entities 3   values 4" in capsys.readouterr().out


def test_passages_only_kb_without_dummy_files(tmp_path, capsys, real_encoder):
    passages = _write(
        tmp_path / "passages.tsv",
        "id\tentity\ttext\tsource\n"
        "p1\tIron\tIron rusts in moist air and is the main metal of steel.\twiki\n"
        "p2\tOxygen|Iron\tOxygen reacts with iron to form rust.\t\n",
    )
    out = tmp_path / "kb"
    assert main(["kb", "build", "--passages", str(passages), "--out", str(out)]) == 0
    from grounded.kb import KnowledgeBase

    kb = KnowledgeBase.load(out)
    assert len(kb.graph) == 0 and len(kb.passages) == 2 and len(kb.index) == 2
    assert kb.passages[1].entities == ("Oxygen", "Iron")
    assert [m.candidates for m in kb.graph.linker.link("Does iron rust?")] == [("Iron",)]
    # An empty triple file beside passages is accepted: the KB is the passages.
    empty = _write(tmp_path / "empty.tsv", "subject\trelation\tobject\n")
    assert (
        load_source(empty, _write(tmp_path / "r.json", SCHEMA_JSON), passages=passages).triples
        == []
    )


# -- aliases and look-alike text --------------------------------------------------------------
def test_alias_naming_another_entity_is_refused_unless_allowed(files, capsys, no_encoder,
                                                                monkeypatch, encoder):  # fmt: skip
    aliases = _write(files / "aliases.tsv", "entity\talias\nIron\tferrum\nOxygen\tIron\n")
    argv = ["--triples", files / "triples.tsv", "--relations", files / "relations.json",
            "--aliases", aliases, "--out", files / "kb"]  # fmt: skip
    code, err = _build(capsys, *argv)
    assert code == 2
    assert f"{aliases}:3: alias 'Iron' of 'Oxygen' is the name of the entity 'Iron'" in err
    assert "--allow-alias-merge" in err
    monkeypatch.setattr("index.Encoder.default", lambda *a, **k: encoder)
    assert main(["kb", "build", *map(str, argv), "--allow-alias-merge"]) == 0
    printed = capsys.readouterr().out
    assert "warning: alias 'Iron' of 'Oxygen' is also the entity 'Iron'" in printed
    main(["kb", "stats", str(files / "kb")])
    shown = capsys.readouterr().out
    assert (
        "names that mean several entities (1: alias 1)" in shown
        and "'Iron' (alias): Iron, Oxygen" in shown
    )


def test_fullwidth_and_mixed_script_names_are_reported(tmp_path):
    schema = Schema.load(_write(tmp_path / "r.json", SCHEMA_JSON))
    triples = _write(
        tmp_path / "t.tsv",
        "subject\trelation\tobject\nIron\tsymbol\tFe\nＩｒｏｎ\tatomic_mass\t55.85\n"
        "Оxygen\tsymbol\tO\n",  # a Cyrillic "О"
    )
    # Two spellings of one name are refused at build, naming both lines (issue 20) ...
    with pytest.raises(
        SourceFileError,
        match=rf"'Iron' \({triples}:2\) and 'Ｉｒｏｎ' \({triples}:3\) are the same name",
    ):
        load_source(triples, tmp_path / "r.json")
    # ... unless the merge is asked for; the report still lists them.
    source = load_source(triples, tmp_path / "r.json", allow_alias_merge=True)
    merges = [(m["kind"], m["entities"], m["where"]) for m in source.report.merges]
    assert merges == [("names", ["Iron", "Ｉｒｏｎ"], [f"{triples}:2", f"{triples}:3"])]
    assert source.report.mixed_script == ["Оxygen"]
    assert any("mix Latin with Cyrillic" in w for w in source.report.warnings)
    del schema
    # An alias written in full-width letters that names another entity is refused.
    aliases = _write(tmp_path / "a.tsv", "Оxygen\tＩＲＯＮ\n")
    with pytest.raises(SourceFileError, match=r"a.tsv:1: alias 'ＩＲＯＮ' of 'Оxygen'"):
        load_source(triples, tmp_path / "r.json", aliases=aliases)


def test_lookalike_subject_is_still_refuted(files):
    source = load_source(files / "triples.tsv", files / "relations.json")
    graph = KnowledgeGraph.from_source(source)
    for subject in ("Ir\u200bon", "Ir\u043en", "Ｉｒｏｎ", "\u200bIron\u200d"):
        assert check_claim(graph, subject, "atomic_mass", "60.1").result == "contradicted"
        assert check_claim(graph, subject, "atomic_mass", "55.85").result == "supported"
