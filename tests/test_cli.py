"""The command line through ``main([...])``: help of every subcommand, kb build/query/stats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tiny import FACTS, tiny_source

from grounded.cli.main import main
from kg import write_source


def _all_command_paths() -> list[list[str]]:
    import argparse

    from grounded.cli.main import build_parser

    paths = [[]]

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "grounded")
def test_help_of_every_command(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: grounded" in out


def test_help_is_cheap():
    code = (
        "import sys; from grounded.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "kb" in capsys.readouterr().out
    assert main(["kb"]) == 2


@pytest.fixture(scope="module")
def cli_kb(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("cli")
    write_source(tiny_source(), root / "src")
    config = root / "build.yaml"
    config.write_text(
        f"triples: [{root / 'src' / 'triples.tsv'}]\n"
        f"relations: {root / 'src' / 'relations.json'}\n"
        f"aliases: {root / 'src' / 'aliases.tsv'}\n"
        f"passages: {root / 'src' / 'passages.jsonl'}\n"
        "name: yaml-name\nkind: flat\n"
        "allow_alias_merge: true\n",  # the tiny KB's "Mexico" is an alias and an entity
        encoding="utf-8",
    )
    out = root / "kb"
    code = main(["kb", "build", "--config", str(config), "--out", str(out), "--name", "flag-name"])
    assert code == 0
    return root, out


def test_kb_build_from_yaml_and_flags(cli_kb, capsys):
    _, out = cli_kb
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "flag-name"  # the flag overrides the YAML value
    assert manifest["counts"]["facts"] == len(FACTS)


def test_kb_build_refuses_existing_without_overwrite(cli_kb, capsys):
    _root, out = cli_kb
    code = main(["kb", "build", "--preset", "countries", "--out", str(out)])
    assert code == 2
    assert "exists; pass `--overwrite`" in capsys.readouterr().err


def test_kb_query_table_and_json(cli_kb, capsys):
    _, out = cli_kb
    assert main(["kb", "query", str(out), "What is the capital of Mongolia?", "--k", "3"]) == 0
    text = capsys.readouterr().out
    assert "entities: Mongolia → Mongolia" in text
    first = next(line for line in text.splitlines() if line.strip().startswith("1 "))
    assert "The capital of Mongolia is Ulaanbaatar." in first
    assert main(["kb", "query", str(out), "Where is China?", "--json", "--mode", "dense"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["question"] == "Where is China?"
    assert all(e["source"] == "dense" for e in data[0]["evidence"])


def test_kb_stats(cli_kb, capsys):
    _, out = cli_kb
    assert main(["kb", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "capital" in text and "functional" in text and "many-valued" in text
    assert main(["kb", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["facts"] == len(FACTS)


def test_bad_inputs_exit_2_with_clear_message(cli_kb, tmp_path, capsys):
    root, _ = cli_kb
    bad = tmp_path / "bad.tsv"
    bad.write_text("subject\trelation\tobject\nMongolia\tmotto\tx\n", encoding="utf-8")
    code = main(
        [
            "kb",
            "build",
            "--triples",
            str(bad),
            "--relations",
            str(root / "src" / "relations.json"),
            "--out",
            str(tmp_path / "kb"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"{bad}:2: relation 'motto' is not in the schema" in err
    assert not (tmp_path / "kb").exists()
    assert main(["kb", "build", "--out", str(tmp_path / "kb")]) == 2
    assert "nothing to build" in capsys.readouterr().err
    yaml_file = tmp_path / "typo.yaml"
    yaml_file.write_text("presett: countries\n", encoding="utf-8")
    assert main(["kb", "build", "--config", str(yaml_file), "--out", str(tmp_path / "kb")]) == 2
    assert f"{yaml_file}: unknown setting `presett`; did you mean `preset`?" in (
        capsys.readouterr().err
    )
    assert main(["kb", "query", str(tmp_path), "hello"]) == 2
    assert "not a knowledge base folder" in capsys.readouterr().err
    assert main(["kb", "build", "--preset", "nope", "--out", str(tmp_path / "kb")]) == 2
    assert "countries" in capsys.readouterr().err
