"""Issue 20: no command deletes an input it reads, and ``--overwrite`` replaces only a folder
of the same artifact kind (or an empty one). Weight files follow the umask."""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from grounded.cli.main import main
from kg.io import atomic_directory, umask
from kg.manifest import artifact_kind, check_destination


@pytest.fixture()
def run(tmp_path, tiny_kb):
    """``run/kb``: a copy of the tiny KB (never the session's own), and a folder of user
    files ``home``."""
    folder = tmp_path / "run"
    shutil.copytree(tiny_kb.path, folder / "kb")
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.txt").write_text("years of work", encoding="utf-8")
    return folder


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def _refused(argv, capsys, *words):
    assert main(argv) != 0
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    return err


def test_train_never_deletes_its_kb_or_base(run, tiny_base, capsys):
    kb = run / "kb"
    before = _files(run)
    _refused(["train", str(kb), "--base", str(tiny_base), "--out", str(run), "--overwrite"],
             capsys, "knowledge base", "give another `--out`")  # fmt: skip
    _refused(["train", str(kb), "--base", str(tiny_base), "--out", str(kb), "--overwrite"],
             capsys, "knowledge base")  # fmt: skip
    base = run / "base"
    shutil.copytree(tiny_base, base)
    _refused(["train", str(kb), "--base", str(base), "--out", str(base), "--overwrite"],
             capsys, "base")  # fmt: skip
    assert _files(run) == sorted([*before, *(p for p in _files(run) if p.parts[0] == "base")])


def test_train_overwrite_refuses_user_files_and_other_artifacts(run, tiny_base, capsys):
    home = run.parent / "home"
    _refused(["train", str(run / "kb"), "--base", str(tiny_base), "--out", str(home),
              "--overwrite"], capsys, "replaces only a grounded-model folder")  # fmt: skip
    assert (home / "thesis.txt").read_text(encoding="utf-8") == "years of work"
    other = run.parent / "kb2"
    shutil.copytree(run / "kb", other)
    _refused(["train", str(run / "kb"), "--base", str(tiny_base), "--out", str(other),
              "--overwrite"], capsys, "'grounded-kb' artifact")  # fmt: skip
    assert (other / "manifest.json").is_file()


def test_pretrain_refuses_its_kb_and_user_files(run, capsys):
    kb = run / "kb"
    _refused(["pretrain", str(kb), "--out", str(kb), "--overwrite"], capsys, "knowledge base")
    _refused(["pretrain", str(kb), "--out", str(run), "--overwrite"], capsys, "knowledge base")
    home = run.parent / "home"
    _refused(["pretrain", str(kb), "--out", str(home), "--overwrite"], capsys,
             "replaces only a grounded-base-model folder")  # fmt: skip
    assert (kb / "manifest.json").is_file() and (home / "thesis.txt").is_file()


def test_factcheck_train_refuses_its_inputs_and_user_files(run, tiny_bert_dir, capsys):
    kb = run / "kb"
    _refused(["factcheck", "train", str(kb), "--out", str(run), "--overwrite"], capsys,
             "knowledge base")  # fmt: skip
    docs = run / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Mongolia borders China.", encoding="utf-8")
    _refused(["factcheck", "train", "--documents", str(docs), "--out", str(docs),
              "--overwrite"], capsys, "documents")  # fmt: skip
    home = run.parent / "home"
    _refused(["factcheck", "train", str(kb), "--out", str(home), "--overwrite"], capsys,
             "replaces only a grounded-checker folder")  # fmt: skip
    assert (docs / "a.txt").is_file() and (kb / "manifest.json").is_file()
    assert (home / "thesis.txt").is_file()


def test_evaluate_and_audit_never_write_into_their_inputs(run, tiny_base, capsys):
    kb = run / "kb"
    before = _files(kb)
    _refused(["evaluate", str(kb), "--base", str(tiny_base), "--out", str(kb)], capsys,
             "knowledge base")  # fmt: skip
    _refused(["audit", str(kb), "--text", "The capital of Mongolia is Ulaanbaatar.",
              "--out", str(kb), "--overwrite"], capsys, "knowledge base")  # fmt: skip
    # an audit report folder is its own kind: a model or KB folder is not replaced
    _refused(["audit", str(kb), "--text", "x", "--out", str(run)], capsys, "knowledge base")
    assert _files(kb) == before


def test_kb_build_never_deletes_its_source_files(run, capsys):
    src = run / "src"
    src.mkdir()
    for name in ("triples.tsv", "relations.json"):
        shutil.copy(run / "kb" / name, src / name)
    _refused(["kb", "build", "--triples", str(src / "triples.tsv"), "--relations",
              str(src / "relations.json"), "--out", str(src), "--overwrite"], capsys,
             "input file")  # fmt: skip
    assert sorted(p.name for p in src.iterdir()) == ["relations.json", "triples.tsv"]


def test_check_destination_rules(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_destination(empty, "grounded-model", overwrite=False)
    assert check_destination(empty, "grounded-checker", overwrite=True) == empty
    assert check_destination(tmp_path / "new", "grounded-model", overwrite=False)
    full = tmp_path / "full"
    full.mkdir()
    (full / "manifest.json").write_text('{"kind": "grounded-model"}', encoding="utf-8")
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_destination(full, "grounded-model", overwrite=False)
    assert check_destination(full, "grounded-model", overwrite=True) == full
    with pytest.raises(ValueError, match="'grounded-model' artifact"):
        check_destination(full, "grounded-checker", overwrite=True)
    with pytest.raises(ValueError, match="is or holds the knowledge base"):
        check_destination(tmp_path, "grounded-model", overwrite=True,
                          inputs={"knowledge base": full / "x"})  # fmt: skip
    (full / "reader.json").write_text("{}", encoding="utf-8")
    (full / "manifest.json").unlink()
    assert artifact_kind(full) is None
    check_destination(full, "r", overwrite=True, markers={"reader.json": "r"})


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_weights_follow_the_umask(tmp_path, mask):
    import torch
    from safetensors.torch import save_file

    old = os.umask(mask)
    try:
        with atomic_directory(tmp_path / "model") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "adapter_model.safetensors"))
            (tmp / "sub").mkdir()
            save_file({"w": torch.zeros(2)}, str(tmp / "sub" / "injection.safetensors"))
            (tmp / "config.json").write_text("{}", encoding="utf-8")
        assert umask() == mask
    finally:
        os.umask(old)
    for name in ("adapter_model.safetensors", "sub/injection.safetensors", "config.json"):
        mode = stat.S_IMODE(os.stat(tmp_path / "model" / name).st_mode)
        assert mode == 0o666 & ~mask, (name, oct(mode))


def test_trained_checker_weights_follow_the_umask(tiny_checker):
    checker_dir = tiny_checker[2]
    weights = list(checker_dir.glob("*.safetensors"))
    assert weights
    for w in weights:
        assert stat.S_IMODE(os.stat(w).st_mode) == 0o666 & ~umask(), w


def test_demo_never_writes_over_an_input(run, tiny_base, capsys):
    """`demo --base OUT/base`: the demo would pretrain into OUT/base; it refuses first."""
    shutil.copytree(tiny_base, run / "base")
    before = _files(run)
    _refused(["demo", "--out", str(run), "--checker", str(run / "models" / "c"), "--quick",
              "--kb", str(run / "kb"), "--base", str(run / "base"), "--overwrite"], capsys,
             "checker")  # fmt: skip
    assert _files(run) == before
