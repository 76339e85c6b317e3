"""Grounded fine-tuning end to end on a tiny Llama: loss falls, parameters change, the folder
round-trips with identical generations, --resume continues, every adapter trains, the CLI."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import cases
import pytest
import torch
from transformers import TrainerCallback

from grounded.answers import ABSTAIN
from grounded.cli.main import main
from grounded.config import update_config
from grounded.data.groups import EntityGroups
from grounded.injection import InjectionConfig
from grounded.model import GroundedModel, read_grounding
from grounded.optim import OptimConfig
from grounded.training import (
    ADAPTERS,
    AdapterConfig,
    DataConfig,
    FeedbackConfig,
    TrainConfig,
    train,
    variant_config,
)
from grounded.training.pipeline import checkpoint_dir, resolve_precision

LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QUESTIONS = ["What is the capital of Mongolia?", "Which languages are spoken in Atlantis?"]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> TrainConfig:
    """The tiny run of these tests, with ``overrides`` by flat name (as the flags)."""
    config = TrainConfig(
        data=DataConfig(out_of_kb=4),
        injection=InjectionConfig(hidden_size=16),
        adapter=AdapterConfig(target_modules=LLAMA_LINEAR, lora_dropout=0.0),
        feedback=FeedbackConfig(every=10, samples=6, max_new_tokens=8),
        optim=OptimConfig(
            max_steps=30, per_device_train_batch_size=4, learning_rate=2e-2, logging_steps=1
        ),
        save_steps=1000,
    )
    return update_config(config, overrides)


class Snapshot(TrainerCallback):
    """Keeps the trainable parameters as they were when training began."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_kb, tiny_base):
    out = tmp_path_factory.mktemp("train") / "model"
    snapshot = Snapshot()
    result = train(
        tiny_kb, tiny_base, out, tiny_config(), callbacks=[snapshot], show_progress=False
    )
    return result, snapshot.before


def test_training_changes_parameters_and_lowers_the_loss(trained):
    result, before = trained
    assert result.steps == 30
    after = dict(result.model.named_parameters())
    changed = {n for n, p in before.items() if not torch.equal(p, after[n].detach())}
    assert any("lora_B" in n for n in changed)
    assert any(n.startswith("injection.modes.embedding") for n in changed)
    assert not any(
        p.requires_grad
        for n, p in after.items()
        if "lora_" not in n and not n.startswith("injection.")
    )
    lm = [e["loss_lm"] for e in result.log_history if "loss_lm" in e]
    assert sum(lm[-3:]) / 3 < 0.5 * sum(lm[:3]) / 3, lm
    terms = {k for e in result.log_history for k in e if k.startswith("loss_")}
    assert terms == {"loss_lm", "loss_constraint", "loss_feedback"}


def test_feedback_rounds_are_logged(trained):
    result, _ = trained
    rounds = [json.loads(line) for line in (result.out / "feedback.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rounds] == [0, 10, 20, 30]  # the last one after training
    assert [r["step"] for r in result.feedback] == [0, 10, 20, 30]
    for r in rounds:
        assert r["n_generations"] == 6 and len(r["generations"]) == 6
        assert r["refuted_share"] == pytest.approx(r["n_refuted"] / 6, abs=1e-6)
    logged = [e for e in result.log_history if "feedback_refuted_share" in e]
    assert len(logged) == 4
    if any(r["n_refuted"] for r in rounds[:-1]):
        pair = json.loads((result.out / "dpo_pairs.jsonl").read_text().splitlines()[0])
        assert set(pair) == {"prompt", "chosen", "rejected", "step"}


def test_model_folder_round_trips_with_identical_generation(trained, tiny_kb, tiny_base):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _ = trained
    out = result.out
    for name in ("adapter_config.json", "adapter_model.safetensors", "injection.json",
                 "injection.safetensors", "grounding.json", "groups.json", "log_history.json",
                 "examples.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    grounding = read_grounding(out)
    assert grounding["kb"]["checksum"] == tiny_kb.checksum
    assert grounding["settings"] == tiny_config().to_dict()
    assert grounding["base_model"] == str(tiny_base.resolve())
    assert grounding["train"]["steps"] == 30
    assert not checkpoint_dir(out, tiny_config()).exists()  # removed after success
    # a base not made by `grounded pretrain`: its groups come from a closed-book probe, made
    # before training, and recorded; the examples say their kind
    groups = EntityGroups.load(out / "groups.json")
    assert groups.split_source == "closed_book_probe" and groups.probe["n_probed"] > 0
    assert groups == result.groups and len(groups.counterfactual) > 0
    kinds = {json.loads(x)["kind"] for x in (out / "examples.jsonl").read_text().splitlines()}
    assert {"answer", "out_of_kb", "closed_book"} <= kinds
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), str(out))

    in_memory = GroundedModel(result.model, result.tokenizer, tiny_kb, grounding)
    reloaded = GroundedModel.from_pretrained(out, tiny_kb)
    a = in_memory.answer(QUESTIONS)
    b = reloaded.answer(QUESTIONS)
    assert [x.text for x in a] == [x.text for x in b]
    assert [e.text for e in b[0].evidence][:1] == ["The capital of Mongolia is Ulaanbaatar."]


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("interrupted")


def test_resume_continues_from_the_saved_step(tmp_path, tiny_kb, tiny_base):
    config = tiny_config(max_steps=6, save_steps=2, feedback_every=0, keep_checkpoints=True)
    straight = train(tiny_kb, tiny_base, tmp_path / "straight", config, show_progress=False)
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="interrupted"):
        train(tiny_kb, tiny_base, out, config, callbacks=[StopAt(3)], show_progress=False)
    assert not out.exists()
    assert (checkpoint_dir(out, config) / "checkpoint-2").is_dir()
    with pytest.raises(FileExistsError, match="pass `--resume`"):
        train(tiny_kb, tiny_base, out, config, show_progress=False)
    resumed = train(
        tiny_kb, tiny_base, out, dataclasses.replace(config, resume=True), show_progress=False,
    )  # fmt: skip
    assert resumed.resumed_from == 2 and resumed.steps == 6
    # the log restored from checkpoint-2 continues with steps 3..6, none repeated
    assert [e["step"] for e in resumed.log_history if "loss" in e] == [1, 2, 3, 4, 5, 6]
    assert resumed.groups == straight.groups
    a = dict(straight.model.named_parameters())
    for n, p in resumed.model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p, a[n], atol=1e-5), n


def test_resume_with_feedback_rounds_reproduces_the_uninterrupted_run(tmp_path, tiny_kb, tiny_base):
    # issue 13: the feedback bank and its random state were not saved, so a resumed run
    # diverged after the checkpoint
    config = tiny_config(
        max_steps=8, save_steps=4, feedback_every=2, feedback_samples=6, keep_checkpoints=True
    )
    straight = train(tiny_kb, tiny_base, tmp_path / "straight", config, show_progress=False)
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="interrupted"):
        train(tiny_kb, tiny_base, out, config, callbacks=[StopAt(5)], show_progress=False)
    saved = checkpoint_dir(out, config) / "checkpoint-4" / "feedback_state_0.json"
    assert json.loads(saved.read_text())["last_step"] == 2
    changed = update_config(config, {"resume": True, "feedback_every": 3})
    with pytest.raises(ValueError, match=r"`feedback.every`: 2 → 3"):
        train(tiny_kb, tiny_base, out, changed, show_progress=False)
    resumed = train(
        tiny_kb, tiny_base, out, dataclasses.replace(config, resume=True), show_progress=False
    )
    assert resumed.resumed_from == 4
    # this process ran the rounds from the checkpoint on; the summary lists every round,
    # those before the resume included (issue 20), as the straight run's does
    assert [r["step"] for r in resumed.feedback] == [0, 2, 4, 6, 8]
    assert resumed.feedback == straight.feedback
    a = dict(straight.model.named_parameters())
    for n, p in resumed.model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, a[n]), n
    logs = [(out / "feedback.jsonl"), (tmp_path / "straight" / "feedback.jsonl")]
    assert logs[0].read_text() == logs[1].read_text()


def test_a_failed_run_cleans_up_or_says_how_to_resume(tmp_path, tiny_kb, tiny_base, caplog):
    out = tmp_path / "model"
    config = tiny_config(max_steps=4, save_steps=1000, feedback_every=0)
    ckpt = checkpoint_dir(out, config)
    with pytest.raises(RuntimeError, match="interrupted"):
        train(tiny_kb, tiny_base, out, config, callbacks=[StopAt(1)], show_progress=False)
    assert not out.exists() and not ckpt.exists()  # nothing saved: nothing left behind
    config = tiny_config(max_steps=4, save_steps=1, feedback_every=0)
    with caplog.at_level("WARNING", logger="grounded"), pytest.raises(RuntimeError) as failed:
        train(tiny_kb, tiny_base, out, config, callbacks=[StopAt(2)], show_progress=False)
    assert (ckpt / "checkpoint-1").is_dir() and not out.exists()
    note = f"its checkpoints are kept in {ckpt}: run the same command with `--resume`"
    assert note in caplog.text
    assert any(note in n for n in getattr(failed.value, "__notes__", [note]))
    # a folder this run did not create is never removed
    mine = tmp_path / "mine"
    mine.mkdir()
    config = tiny_config(max_steps=4, save_steps=1000, feedback_every=0, checkpoint_dir=str(mine))
    with pytest.raises(RuntimeError, match="interrupted"):
        train(
            tiny_kb, tiny_base, tmp_path / "m2", config, callbacks=[StopAt(1)], show_progress=False
        )
    assert mine.is_dir()


# -- every adapter (tests/cases.py) -------------------------------------------------------------


class TestLora(cases.AdapterCase):
    name = "lora"


class TestPrefix(cases.AdapterCase):
    name = "prefix"


class TestPrompt(cases.AdapterCase):
    name = "prompt"
    settings: ClassVar = {"grad_accum": 2}  # the end-to-end run also covers accumulation


class TestIA3(cases.AdapterCase):
    name = "ia3"
    settings: ClassVar = {"entity_vectors": True}  # ... and ERNIE-style entity vectors


class TestAdapterCoverage(cases.MetaTestCase):
    base = cases.AdapterCase

    def registered(self):
        return ADAPTERS.names()


def test_cli_train_then_generate(tmp_path, tiny_kb, tiny_base, capsys):
    out = tmp_path / "sft"
    code = main([
        "train", str(tiny_kb.path), "--base", str(tiny_base), "--out", str(out),
        "--max-steps", "2", "--injection", "none", "--constraint-weight", "0",
        "--feedback-every", "0", "--batch-size", "2", "--out-of-kb", "2",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained 2 steps" in printed and f"wrote {out}" in printed
    assert read_grounding(out)["injection"]["modes"] == []
    assert main(["generate", str(out), QUESTIONS[0], "--max-new-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"Q: {QUESTIONS[0]}" in printed and "(no evidence: injection none)" in printed
    assert main(["generate", str(out), QUESTIONS[0], "--json", "--max-new-tokens", "2"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["evidence"] == []
    # behind the guard, whatever two steps of training say, the KB answers or it abstains
    guarded = ["generate", str(out), *QUESTIONS, "--max-new-tokens", "4", "--guard", "revise"]
    assert main([*guarded, "--kb", str(tiny_kb.path), "--json"]) == 0
    mongolia, atlantis = json.loads(capsys.readouterr().out)
    assert mongolia["answer"] == "Ulaanbaatar." and mongolia["guard_action"] in ("kept", "revised")
    assert atlantis["answer"] == ABSTAIN and "original" in atlantis
    assert main([*guarded, "--kb", str(tiny_kb.path)]) == 0
    assert "guard: " in capsys.readouterr().out
    assert main(guarded) == 2  # a model without injection names no KB to check against
    assert "`--guard` needs a knowledge base" in capsys.readouterr().err
    assert main(["generate", str(out), "q", "--checker", str(tmp_path)]) == 2
    assert "`--checker` is read by the guard" in capsys.readouterr().err


def test_cli_reports_bad_settings(tmp_path, tiny_kb, tiny_base, capsys):
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text("learning_rate: 0.001\nlearnig_rate: 0.1\n")
    args = ["train", str(tiny_kb.path), "--base", str(tiny_base), "--out", str(tmp_path / "m")]
    assert main([*args, "--config", str(yaml_file)]) == 2
    assert "unknown setting `learnig_rate`; did you mean `learning_rate`?" in (
        capsys.readouterr().err
    )
    assert main([*args, "--adapter", "lorra"]) == 2
    assert "`adapter` must be one of ['ia3', 'lora', 'prefix', 'prompt'], got 'lorra'" in (
        capsys.readouterr().err
    )
    assert main(["generate", str(tmp_path), "q"]) == 2
    assert "has no grounding.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"injection": "text,graph"}, "`injection` must be `none` or names from"),
        ({"constraint": "hinge"}, r"`constraint` must be one of \['margin', 'unlikelihood'\]"),
        ({"p_no_gold": 1.0}, r"`p_no_gold` must be in \[0, 1\), got 1.0"),
        ({"seen_fraction": 0.0}, r"`seen_fraction` must be in \(0, 1\], got 0.0"),
        ({"batch_size": 0}, "`per_device_train_batch_size` must be >= 1, got 0"),
        ({"constraint_weight": -1.0}, "`constraint_weight` must be >= 0, got -1.0"),
        ({"precision": "fp8"}, r"`precision` must be one of \['auto', 'fp32', 'bf16', 'fp16'\]"),
        ({"constraint_scope": "token"}, r"`constraint_scope` must be one of \['divergence', "),
        ({"epochs": 0, "max_steps": -1}, "set `num_train_epochs` > 0 or `max_steps` > 0"),
        ({"max_steps": 0}, r"`max_steps` must be > 0, or -1 \(unset\), got 0"),
        ({"injection": "text", "entity_vectors": True}, "`entity_vectors` needs the `embedding`"),
        ({"learning_rate": "fast"}, r"`learning_rate`: expected a number, got 'fast' \(str\)"),
        ({"save_steps": 0}, "`save_steps` must be >= 1, got 0"),
    ],
)
def test_config_validation(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(settings)


def test_config_round_trip_and_variants(tmp_path, tiny_kb, tiny_base):
    config = TrainConfig(
        injection=InjectionConfig(modes=["embedding,text"]),
        adapter=AdapterConfig(target_modules=["q_proj"]),
    )
    assert config.injection.name == "text+embedding"
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    sft = variant_config("sft")
    assert (sft.injection.name, sft.constraint.weight, sft.feedback.every) == ("none", 0.0, 0)
    assert variant_config("raft").injection.name == "text"
    assert variant_config("raft", seed=3).seed == 3
    with pytest.raises(ValueError, match="`variant` must be one of"):
        variant_config("rag")
    if not torch.cuda.is_available():
        assert resolve_precision("auto") == (False, False)
        with pytest.raises(ValueError, match="`precision` 'bf16' needs a CUDA GPU"):
            resolve_precision("bf16")
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="pass `--overwrite`"):
        train(tiny_kb, tiny_base, tmp_path / "exists", config)


def test_lora_layers_wraps_the_top_layers_only():
    import torch
    import transformers

    from grounded.training.adapters import get_adapter_model, resolve_layers

    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    torch.manual_seed(0)
    lm = transformers.LlamaForCausalLM(config)
    assert resolve_layers("top2", lm) == [2, 3] and resolve_layers("top9", lm) == [0, 1, 2, 3]
    assert resolve_layers("3, 1", lm) == [1, 3] and resolve_layers("all", lm) is None
    adapter = AdapterConfig(target_modules=["q_proj", "v_proj"], layers="top2")
    assert TrainConfig.from_dict({"lora_layers": "top2"}).adapter.layers == "top2"
    peft_lm = get_adapter_model(lm, adapter)
    wrapped = {int(n.split(".layers.")[1].split(".")[0]) for n, p in peft_lm.named_parameters()
               if p.requires_grad}  # fmt: skip
    assert wrapped == {2, 3}
    # the backward pass reaches the wrapped layers: their LoRA weights get gradients
    peft_lm(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    grads = [n for n, p in peft_lm.named_parameters() if p.grad is not None and p.grad.abs().sum()]
    assert grads and all(".layers.2." in n or ".layers.3." in n for n in grads)
    for bad, message in [
        ("top0", "N of topN must be >= 1"),
        ("middle", "must be all, topN or indices"),
        ("7", r"indices must be in \[0, 4\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_layers(bad, lm)
    with pytest.raises(ValueError, match="applies to the lora adapter only"):
        AdapterConfig(name="prefix", layers="top2")
    # the default targets (all-linear) with top layers: PEFT takes names only, so all-linear
    # becomes the model's own linear layers (before: PEFT refused the combination)
    lm = transformers.LlamaForCausalLM(config)
    peft_lm = get_adapter_model(lm, AdapterConfig(layers="top1"))
    wrapped = {n.split(".layers.")[1].split(".")[1:3][-1] for n, p in peft_lm.named_parameters()
               if p.requires_grad}  # fmt: skip
    layers = {int(n.split(".layers.")[1].split(".")[0]) for n, p in peft_lm.named_parameters()
              if p.requires_grad}  # fmt: skip
    assert layers == {3}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
