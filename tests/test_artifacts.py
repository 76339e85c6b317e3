"""Artifacts verify themselves (issue 13).

Every artifact kind (knowledge base, index, base model, trained model, fact-checker) refuses
a damaged folder with an error naming the file: a bit flip, a truncation, a deleted file, a
removed ``checksums`` key, and each manifest format error. Loading runs no code, a damaged
checker does not decide, files follow the user's umask, and leftovers of killed writes are
cleaned up by the next write.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from kg import io as kg_io
from kg.io import atomic_directory, atomic_write_json, atomic_write_text, sweep_leftovers
from kg.manifest import ArtifactError, read_manifest, verify_checksums, write_manifest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


class Artifact(NamedTuple):
    """A saved artifact, the files to damage, and how it is loaded."""

    folder: Path
    kind: str
    flip: str  # a file to flip one bit in
    truncate: str  # a file to cut in half
    delete: str  # a file to delete
    load: Callable[[Path], object]


@pytest.fixture(scope="module")
def artifacts(tiny_kb, tiny_base, tiny_checker, encoder, tmp_path_factory) -> dict:
    """One folder of each kind, written by the code that writes it in real use."""
    from grounded.config import update_config
    from grounded.factcheck import FactChecker
    from grounded.kb import KnowledgeBase
    from grounded.model import GroundedModel, load_base
    from grounded.pretrain import PretrainConfig, pretrain
    from grounded.training import TrainConfig, train
    from index import FactIndex

    root = tmp_path_factory.mktemp("artifacts")
    pre = PretrainConfig.from_preset(
        "quick", max_steps=2, save_steps=100, logging_steps=1, num_threads=1
    )
    base = pretrain(tiny_kb, root / "base", pre, show_progress=False).path
    config = update_config(TrainConfig(), dict(
        max_steps=2, batch_size=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
        injection_hidden=8, feedback_every=0, save_steps=1000, out_of_kb=2, max_new_tokens=4,
    ))  # fmt: skip
    model = train(tiny_kb, tiny_base, root / "model", config, show_progress=False).out

    def load_model(folder: Path) -> object:
        return GroundedModel.from_pretrained(folder, tiny_kb, base=tiny_base, device="cpu")

    return {
        "kb": Artifact(
            tiny_kb.path, "grounded-kb", "graph.json", "triples.tsv", "index/index.faiss",
            lambda p: KnowledgeBase.load(p, encoder=encoder),
        ),
        "index": Artifact(
            tiny_kb.path / "index", "grounded-index", "index.faiss", "meta.jsonl", "meta.jsonl",
            lambda p: FactIndex.load(p, encoder),
        ),
        "base": Artifact(
            base, "grounded-base-model", "model.safetensors", "tokenizer.json", "config.json",
            load_base,
        ),
        "model": Artifact(
            model, "grounded-model", "adapter_model.safetensors", "injection.safetensors",
            "grounding.json", load_model,
        ),
        "checker": Artifact(
            tiny_checker[2], "grounded-checker", "model.safetensors", "factcheck.json",
            "tokenizer.json", FactChecker.from_pretrained,
        ),
    }  # fmt: skip


KINDS = ["kb", "index", "base", "model", "checker"]


def copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def edit_manifest(folder: Path, edit: Callable[[dict], object]) -> None:
    """Change ``folder/manifest.json`` in place with ``edit`` (which mutates the dict)."""
    file = folder / "manifest.json"
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


# -- intact artifacts -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_artifact_carries_a_manifest_of_every_file(artifacts, kind):
    art = artifacts[kind]
    manifest = read_manifest(art.folder, art.kind, 99)  # verifies every file
    on_disk = {
        p.relative_to(art.folder).as_posix()
        for p in art.folder.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert set(manifest["checksums"]) == on_disk
    assert manifest["kind"] == art.kind and isinstance(manifest["format_version"], int)
    assert "python" in manifest["versions"] and manifest["created"]
    art.load(art.folder)


# -- damaged artifacts: each a clear error naming the file -------------------------------------
def bit_flip(folder: Path, art: Artifact) -> tuple[str, ...]:
    file = folder / art.flip
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    return (art.flip, "does not match its checksum")


def truncation(folder: Path, art: Artifact) -> tuple[str, ...]:
    file = folder / art.truncate
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    return (art.truncate, "does not match its checksum")


def deleted_file(folder: Path, art: Artifact) -> tuple[str, ...]:
    (folder / art.delete).unlink()
    return (art.delete, "missing")


def removed_checksums(folder: Path, art: Artifact) -> tuple[str, ...]:
    edit_manifest(folder, lambda m: m.pop("checksums"))
    return ("manifest.json", "`checksums`")


def deleted_manifest(folder: Path, art: Artifact) -> tuple[str, ...]:
    (folder / "manifest.json").unlink()
    return (str(folder), "manifest.json")


DAMAGES = {
    "bit_flip": bit_flip,
    "truncation": truncation,
    "deleted_file": deleted_file,
    "removed_checksums": removed_checksums,
    "deleted_manifest": deleted_manifest,
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_artifact_is_refused_naming_the_file(artifacts, kind, damage, tmp_path):
    art = artifacts[kind]
    folder = copy(art.folder, tmp_path)
    expected = DAMAGES[damage](folder, art)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        art.load(folder)
    message = str(err.value)
    assert str(folder) in message
    for part in expected:
        assert part in message, message


MANIFEST_ERRORS = {
    "truncated_json": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "list_not_object": (lambda text: json.dumps([json.loads(text)]), "JSON list, expected an"),
    "string_version": (
        lambda text: json.dumps({**json.loads(text), "format_version": "1"}),
        "`format_version` is '1' (a string), expected an integer",
    ),
    "wrong_kind": (
        lambda text: json.dumps({**json.loads(text), "kind": "grounded-something-else"}),
        "'grounded-something-else' artifact, not",
    ),
    "newer_version": (
        lambda text: json.dumps({**json.loads(text), "format_version": 99}),
        "upgrade grounded",
    ),
    "missing_kind": (
        lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "kind"}),
        "has no `kind`",
    ),
    "bad_checksum_value": (
        lambda text: json.dumps({**json.loads(text), "checksums": {"x": "not-a-digest"}}),
        "not a sha256 hex digest",
    ),
}


@pytest.mark.parametrize("error", MANIFEST_ERRORS)
@pytest.mark.parametrize("kind", KINDS)
def test_manifest_format_errors_name_the_file(artifacts, kind, error, tmp_path):
    art = artifacts[kind]
    folder = copy(art.folder, tmp_path)
    change, phrase = MANIFEST_ERRORS[error]
    file = folder / "manifest.json"
    file.write_text(change(file.read_text()))
    with pytest.raises(ValueError) as err:
        art.load(folder)
    assert str(file) in str(err.value) and phrase in str(err.value), str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_manifest_keys_warn_and_load(artifacts, kind, tmp_path):
    art = artifacts[kind]
    folder = copy(art.folder, tmp_path)
    edit_manifest(folder, lambda m: m.update(shiny_new_key=1))
    with pytest.warns(UserWarning, match="shiny_new_key"):
        art.load(folder)


# -- the KB checksum names the files as they are -------------------------------------------
def test_kb_checksum_follows_its_files(tiny_kb, artifacts, encoder, tmp_path):
    from grounded.kb import KnowledgeBase
    from grounded.model import GroundedModel

    folder = copy(tiny_kb.path, tmp_path)
    assert KnowledgeBase.load(folder, encoder=encoder, verify=False).checksum == tiny_kb.checksum
    with open(folder / "triples.tsv", "a", encoding="utf-8") as fh:
        fh.write("Mongolia\tcapital\tKarakorum\n")
    changed = KnowledgeBase.load(folder, encoder=encoder, verify=False)
    assert changed.checksum != tiny_kb.checksum
    # a model trained on the KB notices the change
    with pytest.warns(UserWarning, match="differs from the one"):
        GroundedModel.from_pretrained(artifacts["model"].folder, changed, device="cpu")

    edit_manifest(folder, lambda m: m.update(checksum="0" * 64))
    with pytest.raises(ValueError, match=r"manifest\.json: its fields .* were edited"):
        KnowledgeBase.load(folder, encoder=encoder, verify=False)  # issue 20: identity
    edit_manifest(folder, lambda m: m.pop("identity"))  # as a manifest from before it
    with pytest.raises(ValueError, match=r"manifest\.json: `checksum` 000000000000… is not"):
        KnowledgeBase.load(folder, encoder=encoder, verify=False)


def test_in_memory_kb_checksum_follows_its_content(tiny_kb):
    from grounded.factcheck.heldout import hide_facts

    first = next(iter(tiny_kb.graph.triples()))
    held = hide_facts(tiny_kb, [(first.subject, first.relation)])
    assert held.path is None and "checksums" not in held.manifest
    assert len(held.checksum) == 64 and held.checksum != tiny_kb.checksum
    assert held.manifest["derived_from"] == tiny_kb.checksum


# -- a damaged checker, adapter or tokenizer does not decide -----------------------------------
def test_nan_checker_weights_are_refused(tiny_checker, tmp_path):
    import torch

    from grounded.factcheck import FactChecker

    checker = FactChecker.from_pretrained(tiny_checker[2])
    with torch.no_grad():
        next(p for n, p in checker.model.named_parameters() if "classifier" in n).fill_(
            float("nan")
        )
    with pytest.raises(ValueError, match=r"gave NaN or infinite scores, so it cannot decide"):
        checker.predict(["The capital of Mongolia is Ulaanbaatar."], ["Evidence."])
    folder = checker.save_pretrained(tmp_path / "nan-checker")  # a consistent manifest
    with pytest.raises(ValueError, match=rf"{folder}: weight '.*classifier.*' holds \d+ NaN"):
        FactChecker.from_pretrained(folder)


def test_missing_tokenizer_file_is_refused_not_unk(tiny_checker, tmp_path):
    from grounded.factcheck import FactChecker

    folder = copy(tiny_checker[2], tmp_path)
    for name in ("manifest.json", "factcheck.json", "tokenizer.json"):
        (folder / name).unlink()  # a foreign checkpoint: nothing lists its files
    with pytest.raises(ValueError, match=rf"the tokenizer in {folder} cannot read text"):
        FactChecker.from_pretrained(folder)


def test_nan_adapter_weights_are_refused(artifacts, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from grounded.model.artifacts import write_model_manifest

    art = artifacts["model"]
    folder = copy(art.folder, tmp_path)
    file = folder / "adapter_model.safetensors"
    weights = load_file(str(file))
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(file), metadata={"format": "pt"})
    write_model_manifest(folder)  # checksums match: only the NaN check can catch it
    with pytest.raises(ValueError, match=rf"adapter_model\.safetensors: weight '{name}' holds"):
        art.load(folder)


# -- foreign checkpoints load without a manifest; ours must have one --------------------------
def test_foreign_checkpoint_loads_unverified_and_says_so(tiny_base, caplog):
    from grounded.model import load_base

    assert not (tiny_base / "manifest.json").exists()
    with caplog.at_level(logging.DEBUG, logger="kg.manifest"):
        _, lm = load_base(tiny_base)
    assert lm is not None
    assert f"{tiny_base} has no manifest.json: not written by grounded" in caplog.text


def test_marker_file_without_manifest_is_refused(artifacts, tmp_path):
    from grounded.model import load_base

    folder = copy(artifacts["base"].folder, tmp_path)
    (folder / "manifest.json").unlink()  # grounded_pretrain.json says grounded wrote it
    with pytest.raises(FileNotFoundError, match=r"has no manifest\.json, so its files cannot"):
        load_base(folder)


# -- loading runs no code, ever ---------------------------------------------------------------
def add_evil_code(folder: Path, marker: Path, auto: str) -> None:
    (folder / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", auto: "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    tok = json.loads((folder / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tok))


@pytest.mark.parametrize("kind", ["checker", "base"])
def test_auto_map_code_never_runs(artifacts, tiny_base, kind, tmp_path, monkeypatch):
    from grounded.factcheck import FactChecker
    from grounded.model import load_base

    def no_prompt(*args):
        raise AssertionError("loading asked a question")

    monkeypatch.setattr("builtins.input", no_prompt)
    if kind == "checker":
        folder, load = copy(artifacts["checker"].folder, tmp_path), FactChecker.from_pretrained
        auto = "AutoModelForSequenceClassification"
    else:
        folder, load, auto = copy(tiny_base, tmp_path), load_base, "AutoModelForCausalLM"
    (folder / "manifest.json").unlink(missing_ok=True)
    (folder / "factcheck.json").unlink(missing_ok=True)  # a foreign folder: nothing verified
    marker = tmp_path / "code-ran"
    add_evil_code(folder, marker, auto)
    load(folder)  # a known model_type: the library's own classes, the code ignored
    assert not marker.exists()

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "evil"}))
    # issue 20: grounded's own refusal, without transformers' "pass trust_remote_code=True"
    with pytest.raises(ValueError, match="never runs code") as err:
        load(folder)  # only the folder's code could load it: refused
    assert not marker.exists()
    assert "trust_remote_code=True" not in str(err.value)


def test_every_auto_from_pretrained_passes_trust_remote_code_false():
    """A meta-test: each ``Auto*.from_pretrained`` call in grounded/ and index/ says no."""
    calls = []
    for root in ("grounded", "index", "kg"):
        for file in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "from_pretrained"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id.startswith("Auto")
                ):
                    ok = any(
                        k.arg == "trust_remote_code"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is False
                        for k in node.keywords
                    )
                    kwargs = any(k.arg is None for k in node.keywords)  # **kwargs: checked
                    calls.append((f"{file.relative_to(REPO)}:{node.lineno}", ok or kwargs))
    assert len(calls) >= 6
    assert [where for where, ok in calls if not ok] == []


# -- files a team can share ------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_artifacts_follow_the_umask(tmp_path, mask):
    before = os.umask(mask)
    try:
        file = atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_directory(tmp_path / "d") as tmp:
            atomic_write_json(tmp / "inner.json", {})
        manifest = write_manifest(tmp_path / "d", "demo", 1)
    finally:
        os.umask(before)
    assert file.stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "d" / "inner.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d" / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert manifest["checksums"].keys() == {"inner.json"}


def test_saved_checker_is_readable_by_the_group(tiny_checker):
    folder = tiny_checker[2]
    mask = kg_io.umask()
    assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (folder / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~mask


# -- leftovers and the overwrite window ------------------------------------------------------
def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_kill_9_leftover_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from kg.io import atomic_directory
        with atomic_directory({str(target)!r}) as tmp:
            (tmp / "half-written").write_text("...")
            print("ready", flush=True)
            time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    (left,) = hidden(tmp_path)
    assert left.startswith(f".model.{proc.pid}@") and left.endswith(".tmp")
    assert not target.exists()
    atomic_write_json(tmp_path / "other.json", {"a": 1})  # any later write into the folder
    assert hidden(tmp_path) == []


def test_parked_old_folder_is_restored_or_removed(tmp_path):
    host = kg_io._host()
    pid = dead_pid()
    parked = tmp_path / f".kb.{pid}@{host}.0123abcd.old"  # killed between the two renames
    parked.mkdir()
    (parked / "triples.tsv").write_text("old")
    stray = tmp_path / f".notes.json.{pid}@{host}.abcdefgh.tmp"
    stray.write_text("half")
    with pytest.warns(UserWarning, match=r"restored .*kb from"):
        assert len(sweep_leftovers(tmp_path)) == 2
    assert (tmp_path / "kb" / "triples.tsv").read_text() == "old"
    assert hidden(tmp_path) == []

    parked.mkdir()  # the target exists: the parked copy is the old one, dropped
    sweep_leftovers(tmp_path)
    assert hidden(tmp_path) == [] and (tmp_path / "kb" / "triples.tsv").read_text() == "old"


def test_leftovers_of_live_or_remote_writers_are_only_reported(tmp_path):
    host = kg_io._host()
    live = tmp_path / f".a.json.{os.getppid()}@{host}.abcdefgh.tmp"  # a running process
    remote = tmp_path / f".b.json.{dead_pid()}@other-machine.abcdefgh.tmp"
    legacy = tmp_path / ".c.json.abcdefgh.tmp"  # named by an older grounded
    for p in (live, remote, legacy):
        p.write_text("?")
    with pytest.warns(UserWarning) as record:
        sweep_leftovers(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert "on other-machine; delete it if that write has ended" in messages
    assert "by an older grounded" in messages and str(legacy) in messages
    assert hidden(tmp_path) == sorted(p.name for p in (live, remote, legacy))


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "two-renames"])
def test_overwrite_replaces_the_folder_and_keeps_it_on_failure(tmp_path, monkeypatch, swap):
    if not swap:
        monkeypatch.setattr(kg_io, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    for text in ("one", "two"):
        with atomic_directory(out) as tmp:
            (tmp / "f").write_text(text)
    assert (out / "f").read_text() == "two" and hidden(tmp_path) == []

    real = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if Path(dst) == out and len(calls) == 2:
            raise KeyboardInterrupt  # interrupted while moving the new folder in
        return real(src, dst)

    monkeypatch.setattr(kg_io, "_exchange", lambda a, b: False)
    monkeypatch.setattr(kg_io.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt), atomic_directory(out) as tmp:
        (tmp / "f").write_text("three")
    monkeypatch.setattr(kg_io.os, "replace", real)
    assert len(calls) == 3  # park the old folder, fail to move the new one in, put it back
    assert (out / "f").read_text() == "two" and hidden(tmp_path) == []


def test_overwrite_help_documents_the_swap():
    from grounded.kb import KBBuildConfig
    from grounded.pretrain import PretrainConfig
    from grounded.training import TrainConfig

    for config in (KBBuildConfig, PretrainConfig, TrainConfig):
        help_text = config.__dataclass_fields__["overwrite"].metadata["help"]
        assert "atomic" in help_text and "old" in help_text, config


# -- the manifest functions themselves -------------------------------------------------------
def test_verify_checksums_refuses_paths_outside_the_folder(tmp_path):
    with pytest.raises(ArtifactError, match=r"lists '\.\./secret', a path outside"):
        verify_checksums(tmp_path, {"../secret": "0" * 64})


def test_read_manifest_errors_on_a_missing_folder_or_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="is missing"):
        read_manifest(tmp_path / "nope", "demo", 1)
    with pytest.raises(FileNotFoundError, match=r"has no manifest\.json"):
        read_manifest(tmp_path, "demo", 1)
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "demo", "format_version": 1}))
    with pytest.raises(ArtifactError, match="lacks `checksums`"):
        read_manifest(tmp_path, "demo", 1)


def test_manifest_docstring_examples_run_and_need_no_torch():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("kg.manifest"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 4
    code = "import kg.manifest, kg.io, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_format_1_folders_without_kind_still_load(tiny_kb, encoder, tmp_path):
    from grounded.kb import KnowledgeBase

    folder = copy(tiny_kb.path, tmp_path)
    # format-1 folders predate the identity digest
    edit_manifest(folder, lambda m: (m.pop("kind"), m.pop("identity"), m.update(format_version=1)))
    edit_manifest(
        folder / "index",
        lambda m: (
            m.pop("kind"),
            m.pop("identity"),
            m.update(format_version=1, type="grounded.FactIndex"),
        ),
    )
    kb = KnowledgeBase.load(folder, encoder=encoder)
    assert kb.checksum == tiny_kb.checksum and len(kb.index) == len(tiny_kb.index)
