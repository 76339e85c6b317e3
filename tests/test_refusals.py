"""Issue 20: short refusals that name the file and the fix, never a traceback or the input."""

from __future__ import annotations

import json
import shutil

import pytest

from grounded.cli.main import main
from grounded.model.artifacts import load_base


def test_audit_of_a_folder_says_it_is_a_folder(tiny_kb, tmp_path, capsys):
    (tmp_path / "answers.jsonl").write_text('{"text": "x"}\n', encoding="utf-8")
    assert main(["audit", str(tiny_kb.path), str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "is a folder" in err and "answers.jsonl" in err and "does not exist" not in err


def test_a_10_mb_header_line_is_not_echoed(tmp_path, capsys):
    big = tmp_path / "t.tsv"
    big.write_text("x" * 10_000_000 + "\tb\tc\nA\tcapital\tB\n", encoding="utf-8")
    rel = tmp_path / "r.json"
    rel.write_text(json.dumps([{"name": "capital", "template": "{subject} has {object}."}]))
    assert main(["kb", "build", "--triples", str(big), "--relations", str(rel), "--out",
                 str(tmp_path / "kb")]) != 0  # fmt: skip
    err = capsys.readouterr().err
    assert f"{big}:1: header" in err and len(err) < 1000 and "x" * 201 not in err


def test_pickled_base_is_refused_clearly(tiny_base, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_base, folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    for p in folder.glob("*.safetensors"):
        p.unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model.bin.*never loads a pickle.*safetensors"):
        load_base(folder)


def test_custom_code_refusal_gives_no_trust_remote_code_advice(tiny_base, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_base, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "my-own-arch"
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MyModel"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_base(folder)
    message = str(err.value)
    assert "never runs code" in message and str(folder) in message
    assert "trust_remote_code=True" not in message


def test_generate_with_another_base_names_both(tiny_kb, tiny_base, tmp_path):
    from test_train import tiny_config
    from tiny_lm import save_tiny_base

    from grounded.model.generate import GroundedModel
    from grounded.training import train

    out = tmp_path / "model"
    train(tiny_kb, tiny_base, out, tiny_config(max_steps=1, feedback_every=0),
          show_progress=False)  # fmt: skip
    other = save_tiny_base(tmp_path / "other", tiny_kb, "llama", seed=1)
    cfg = json.loads((other / "config.json").read_text(encoding="utf-8"))
    if cfg["hidden_size"] == 32:  # make the sizes differ
        from transformers import LlamaConfig, LlamaForCausalLM

        LlamaForCausalLM(LlamaConfig(**{**cfg, "hidden_size": 48, "intermediate_size": 96}))\
            .save_pretrained(other)  # fmt: skip
    with pytest.raises(ValueError) as err:
        GroundedModel.from_pretrained(out, tiny_kb, base=other)
    message = str(err.value)
    assert str(other) in message and str(tiny_base) in message and "differs" in message
    assert len(message) < 600


@pytest.mark.parametrize(
    ("manifest", "field", "value"),
    [
        ("manifest.json", "kind", "grounded-model"),
        ("index/manifest.json", "encoder.name", "another-encoder"),
        ("index/manifest.json", "encoder.dimension", 768),
        ("manifest.json", "versions.grounded", "0.0.1"),
    ],
)
def test_manifest_identity_fields_are_checked(tiny_kb, tmp_path, manifest, field, value):
    """Editing what a manifest says about its files (issue 20) is found on load."""
    from grounded.kb import KnowledgeBase
    from kg.manifest import ArtifactError

    kb = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, kb)
    KnowledgeBase.load(kb)  # the copy loads as it is
    path = kb / manifest
    data = json.loads(path.read_text(encoding="utf-8"))
    *parents, leaf = field.split(".")
    node = data
    for p in parents:
        node = node[p]
    node[leaf] = value
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"grounded-kb|identity|edited"):
        KnowledgeBase.load(kb)
