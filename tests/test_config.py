"""Settings: every config class round-trips through a dict and YAML (peft's test_config
pattern), YAML values get the field's type, unknown keys name the closest valid one, flat
and nested YAML agree, flags override YAML, older flat settings still load, and the one
optimiser config maps onto ``TrainingArguments`` under its own names."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import warnings
from pathlib import Path
from typing import Literal

import pytest
import yaml

from grounded.cli.main import build_parser, main
from grounded.config import (
    build_config,
    check_yaml_keys,
    config_from_dict,
    convert,
    flatten,
    load_yaml,
    settings,
    to_dict,
    update_config,
)
from grounded.demo import DemoConfig
from grounded.evaluation.runner import EvaluateConfig
from grounded.extract import ExtractConfig, ExtractorTrainConfig
from grounded.extract.training import ExtractorAdapterConfig, ExtractorOptimConfig
from grounded.factcheck.config import CheckerOptimConfig, FactCheckerConfig
from grounded.factcheck.data import ClaimDataConfig
from grounded.injection.config import InjectionConfig
from grounded.kb import KBBuildConfig
from grounded.optim import OptimConfig
from grounded.pretrain.config import PretrainConfig, PretrainOptimConfig
from grounded.retrieval import RetrievalConfig
from grounded.serve.config import ServeConfig
from grounded.training.adapters import AdapterConfig
from grounded.training.config import (
    ConstraintConfig,
    DataConfig,
    FeedbackConfig,
    TrainConfig,
    variant_config,
)
from grounded.verify.audit import AuditConfig
from grounded.verify.guard import GuardConfig
from grounded.verify.verifier import VerifierConfig
from index import IndexConfig

# Each config class, with an instance that differs from the defaults in every section.
CONFIGS = {
    AdapterConfig: AdapterConfig(name="prefix", r=4, target_modules=["q_proj"]),
    AuditConfig: AuditConfig(max_claim_chars=100, text_field="body"),
    CheckerOptimConfig: CheckerOptimConfig(max_steps=7, warmup_steps=3),
    ClaimDataConfig: ClaimDataConfig(test_fraction=0.3, forms=["statement"], gaps=False),
    ConstraintConfig: ConstraintConfig(name="unlikelihood", weight=0.1, scope="sequence"),
    DataConfig: DataConfig(seen_fraction=0.25, out_of_kb=7),
    DemoConfig: DemoConfig(quick=True, variants=["sft"], train_epochs=0.5),
    EvaluateConfig: EvaluateConfig(per_group=3, baselines=[], plots=False),
    FactCheckerConfig: FactCheckerConfig(
        base_model="some/folder", optim=CheckerOptimConfig(learning_rate=3e-5), device="cuda:1"
    ),
    FeedbackConfig: FeedbackConfig(every=0, dpo_export=False),
    GuardConfig: GuardConfig("revise"),
    IndexConfig: IndexConfig(kind="hnsw", nlist=16),
    InjectionConfig: InjectionConfig(modes=["embedding"], entity_vectors=True, d_model=32),
    KBBuildConfig: KBBuildConfig(
        out="kb", triples=["a.tsv", "b.tsv"], relations="relations.json", name="mine"
    ),
    ExtractConfig: ExtractConfig(
        documents=["wiki/"], relations="r.json", extractors=["templates"], min_confidence=0.7
    ),
    ExtractorTrainConfig: ExtractorTrainConfig(
        relations="r.json",
        labelled=["a.jsonl"],
        kb_examples=10,
        adapter=ExtractorAdapterConfig(layers="top2"),
        optim=ExtractorOptimConfig(max_steps=5),
    ),
    ExtractorAdapterConfig: ExtractorAdapterConfig(r=4, layers="all"),
    ExtractorOptimConfig: ExtractorOptimConfig(learning_rate=1e-4, max_steps=3),
    OptimConfig: OptimConfig(learning_rate=2e-5, lr_scheduler_type="linear", max_steps=9),
    PretrainConfig: PretrainConfig(
        known_fraction=0.25, optim=PretrainOptimConfig(num_train_epochs=2.5), num_threads=1
    ),
    PretrainOptimConfig: PretrainOptimConfig(gradient_accumulation_steps=4),
    RetrievalConfig: RetrievalConfig(k=3, mode="dense"),
    ServeConfig: ServeConfig(guard="revise", port=9000, batch_window_ms=2.5, api_key_env="KEY"),
    TrainConfig: TrainConfig(
        data=DataConfig(p_no_gold=0.0),
        injection=InjectionConfig(modes=["text"]),
        adapter=AdapterConfig(r=4, lora_dropout=0.0),
        constraint=ConstraintConfig(weight=0.0),
        feedback=FeedbackConfig(every=10, samples=4),
        optim=OptimConfig(max_steps=30, per_device_train_batch_size=2, learning_rate=1e-4),
        retrieval=RetrievalConfig(k=2),
        seed=3,
        checkpoint_dir="ckpt",
    ),
    VerifierConfig: VerifierConfig(evidence_k=5, alias_notes=False, min_confidence=0.7),
}


def _config_classes() -> set[type]:
    """Every settings dataclass (a name ending in Config) defined in grounded/, index/, kg/."""
    import grounded
    import index
    import kg

    found = set()
    for pkg in (grounded, index, kg):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__
                    and name.endswith("Config")
                ):
                    found.add(obj)
    return found


def test_every_config_class_has_a_round_trip_case():
    assert _config_classes() == set(CONFIGS)


def _default(cls):
    return cls(out="kb", preset="countries") if cls is KBBuildConfig else cls()


@pytest.mark.parametrize("cls", sorted(CONFIGS, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_config_round_trips_through_dict_and_yaml(cls, tmp_path):
    for config in (_default(cls), CONFIGS[cls]):
        data = json.loads(json.dumps(to_dict(config)))
        assert config_from_dict(cls, data) == config
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(to_dict(config)), encoding="utf-8")
        assert build_config(cls, None, load_yaml(path), origin=str(path)) == config
        # the flat form (flag names) too, where no setting is derived
        if all(s.cli for s in settings(cls)):
            assert config_from_dict(cls, flatten(config)) == config


@pytest.mark.parametrize("cls", sorted(CONFIGS, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_config_settings_have_help_and_unique_names(cls):
    table = settings(cls)  # raises on two settings with one flat name
    for s in table:
        assert s.field.metadata.get("help"), f"{cls.__name__}.{s.key} has no help"
    names = [n for s in table if s.cli for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names))


def test_changed_instances_differ_from_the_defaults():
    # a round trip of the defaults alone could hide a setting that is never read back
    for cls, config in CONFIGS.items():
        assert config != _default(cls), cls.__name__


# -- the YAML type bug ----------------------------------------------------------------------
def test_yaml_learning_rate_1e_4_is_a_float(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 1e-4\nmax_steps: 1e3\nresume: yes\n", encoding="utf-8")
    raw = load_yaml(path)
    assert raw["learning_rate"] == "1e-4"  # PyYAML (YAML 1.1) reads it as a string
    config = build_config(TrainConfig, None, raw, origin=str(path))
    assert config.optim.learning_rate == 0.0001 and type(config.optim.learning_rate) is float
    assert config.optim.max_steps == 1000 and config.resume is True
    for cls in (PretrainConfig, FactCheckerConfig):
        lr = build_config(cls, None, {"learning_rate": "1e-4"}, origin=str(path)).optim
        assert lr.learning_rate == 0.0001


class Captured(Exception):
    """Raised by a patched training function: the CLI built its config and called it."""


def _capture(monkeypatch, module: str, name: str) -> None:
    def fake(*args, **kwargs):
        raise Captured(args, kwargs)

    monkeypatch.setattr(importlib.import_module(module), name, fake)


def _train_config(monkeypatch, argv: list[str]) -> TrainConfig:
    _capture(monkeypatch, "grounded.training.pipeline", "train")
    with pytest.raises(Captured) as info:
        main(["train", "KB", "--base", "BASE", "--out", "OUT", *argv])
    return info.value.args[0][3]


def test_cli_train_reads_yaml_types_and_flags_override_yaml(monkeypatch, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(
        "learning_rate: 1e-4\nlora_r: 4\noptim:\n  max_steps: 7\n  num_train_epochs: 2\n"
        "injection: text\nretrieval: {k: 2}\n",
        encoding="utf-8",
    )
    config = _train_config(monkeypatch, ["--config", str(path)])
    assert (config.optim.learning_rate, config.optim.max_steps, config.adapter.r) == (1e-4, 7, 4)
    assert config.injection.modes == ["text"] and config.retrieval.k == 2
    flags = ["--config", str(path), "--learning-rate", "5e-4", "--epochs", "3", "--k", "4",
             "--injection", "none", "--target-modules", "q_proj", "v_proj"]  # fmt: skip
    config = _train_config(monkeypatch, flags)
    assert (config.optim.learning_rate, config.optim.num_train_epochs) == (5e-4, 3.0)
    assert config.optim.max_steps == 7 and config.adapter.r == 4  # from the YAML file
    assert config.retrieval.k == 4 and config.injection.modes == []
    assert config.adapter.target_modules == ["q_proj", "v_proj"]
    # old flag names still work
    config = _train_config(monkeypatch, ["--batch-size", "2", "--grad-accum", "3"])
    assert config.optim.per_device_train_batch_size == 2
    assert config.optim.gradient_accumulation_steps == 3


def test_cli_pretrain_layers_preset_yaml_and_flags(monkeypatch, tmp_path):
    _capture(monkeypatch, "grounded.pretrain", "pretrain")
    path = tmp_path / "pretrain.yaml"
    path.write_text("preset: quick\noptim: {max_steps: 30}\nlearning_rate: 1e-3\n", "utf-8")
    with pytest.raises(Captured) as info:
        main(["pretrain", "KB", "--out", "OUT", "--config", str(path), "--max-steps", "12"])
    config = info.value.args[0][2]
    quick = PretrainConfig.from_preset("quick")
    assert config.hidden_size == quick.hidden_size == 64  # the preset
    assert config.optim.learning_rate == 1e-3  # YAML over the preset
    assert config.optim.max_steps == 12  # the flag over YAML
    assert config.optim.warmup_steps == quick.optim.warmup_steps  # untouched: the preset's


def test_flat_and_nested_yaml_agree(tmp_path):
    flat = {"learning_rate": 1e-4, "lora_r": 4, "feedback_every": 0, "injection": "text",
            "k": 3, "seed": 2}  # fmt: skip
    nested = {"optim": {"learning_rate": 1e-4}, "adapter": {"r": 4},
              "feedback": {"every": 0}, "injection": {"modes": ["text"]},
              "retrieval": {"k": 3}, "seed": 2}  # fmt: skip
    mixed = {"optim": {"learning_rate": "1e-4"}, "lora_r": 4, "feedback": {"feedback_every": 0},
             "injection": "text", "retrieval": {"k": 3}, "seed": 2}  # fmt: skip
    a, b, c = (config_from_dict(TrainConfig, d) for d in (flat, nested, mixed))
    assert a == b == c
    assert to_dict(a)["optim"]["learning_rate"] == 1e-4  # to_dict writes the nested form
    assert "learning_rate" not in to_dict(a)
    with pytest.raises(ValueError, match=r"`learning_rate` and `optim\.learning_rate` both set"):
        config_from_dict(TrainConfig, {"learning_rate": 1e-3, "optim": {"learning_rate": 1e-4}})
    with pytest.raises(ValueError, match="`optim` is a section of settings; give a mapping"):
        config_from_dict(TrainConfig, {"optim": 3})


def test_sections_keep_their_owner_defaults():
    assert TrainConfig().optim.learning_rate == 1e-3
    assert PretrainConfig().optim.learning_rate == 3e-3
    assert FactCheckerConfig().optim.learning_rate == 1e-4
    assert FactCheckerConfig().optim.per_device_train_batch_size == 16
    # a partial nested section applies to its owner's defaults, not OptimConfig's
    config = config_from_dict(PretrainConfig, {"optim": {"max_steps": 5}})
    assert (config.optim.learning_rate, config.optim.max_steps) == (3e-3, 5)
    config = config_from_dict(FactCheckerConfig, {"optim": {"max_steps": 5}})
    assert (config.optim.learning_rate, config.optim.lr_scheduler_type) == (1e-4, "linear")


# -- unknown keys and wrong types -----------------------------------------------------------
def test_unknown_keys_name_the_closest_valid_one():
    with pytest.raises(ValueError, match=r"f.yaml: unknown setting `lerning_rate`; did you mean "
                       r"`learning_rate`\?"):  # fmt: skip
        config_from_dict(TrainConfig, {"lerning_rate": 1e-4}, origin="f.yaml")
    with pytest.raises(ValueError, match=r"unknown setting `optim.lerning_rate`; did you mean "
                       r"`learning_rate`\?"):  # fmt: skip
        config_from_dict(TrainConfig, {"optim": {"lerning_rate": 1e-4}})
    with pytest.raises(ValueError, match=r"unknown setting `zzz`; valid settings are \["):
        config_from_dict(OptimConfig, {"zzz": 1})
    with pytest.raises(ValueError, match=r"unknown setting `retreival`; did you mean `retrieval`"):
        check_yaml_keys({"retreival": {}}, [TrainConfig], "f.yaml")
    # files written by another version: unknown keys warn and are ignored
    with pytest.warns(UserWarning, match="unknown setting `shiny_new`"):
        config = TrainConfig.from_dict({"shiny_new": 1, "lora_r": 4})
    assert config.adapter.r == 4


# Each subcommand that takes --config: its words, its required arguments, and a typo of one
# of its settings with that setting.
CONFIG_COMMANDS = [
    ("kb build", ["--out", "KB"], "presett", "preset"),
    ("kb extract", ["DOCS", "--out", "OUT"], "min_confidnce", "min_confidence"),
    ("kb train-extractor", ["--out", "OUT"], "kb_exampels", "kb_examples"),
    ("pretrain", ["KB", "--out", "OUT"], "lerning_rate", "learning_rate"),
    ("train", ["KB", "--base", "B", "--out", "OUT"], "feedbak_every", "feedback_every"),
    ("factcheck train", ["KB", "--out", "OUT"], "max_lenght", "max_length"),
    ("factcheck eval", ["KB", "CHECKER"], "max_test_claim", "max_test_claims"),
    ("audit", ["KB", "--text", "x"], "evidence_shwn", "evidence_shown"),
    ("evaluate", ["KB", "--base", "B", "--out", "OUT"], "per_grup", "per_group"),
    ("demo", ["--out", "OUT"], "variant", "variants"),
    ("serve", ["KB", "--model", "M"], "batch_window", "batch_window_ms"),
]


def test_every_config_command_is_covered():
    commands = set()

    def walk(parser, prefix):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])
            elif "--config" in getattr(action, "option_strings", ()):
                commands.add(" ".join(prefix))

    walk(build_parser(), [])
    assert commands == {command for command, *_ in CONFIG_COMMANDS}


@pytest.mark.parametrize(
    ("command", "argv", "typo", "closest"), CONFIG_COMMANDS, ids=[c[0] for c in CONFIG_COMMANDS]
)
def test_every_config_command_rejects_unknown_keys(command, argv, typo, closest, tmp_path, capsys):
    path = tmp_path / "settings.yaml"
    path.write_text(f"{typo}: 1\n", encoding="utf-8")
    assert main([*command.split(), *argv, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: unknown setting `{typo}`; did you mean `{closest}`?" in err


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["train", "KB", "--base", "B", "--out", "OUT"], "learning_rate"),
        (["pretrain", "KB", "--out", "OUT"], "learning_rate"),
        (["factcheck", "train", "KB", "--out", "OUT"], "learning_rate"),
        (["evaluate", "KB", "--base", "B", "--out", "OUT"], "per_group"),
    ],
)
def test_wrong_yaml_types_name_file_key_value_and_type(argv, key, tmp_path, capsys):
    path = tmp_path / "settings.yaml"
    path.write_text(f"{key}: fast\n", encoding="utf-8")
    assert main([*argv, "--config", str(path)]) == 2
    expected = "a number" if key == "learning_rate" else "an integer"
    assert f"{path}: `{key}`: expected {expected}, got 'fast' (str)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        ("1e-4", float, 1e-4),
        (3, float, 3.0),
        ("12", int, 12),
        (1e3, int, 1000),
        ("no", bool, False),
        ("on", bool, True),
        (None, int | None, None),
        ("7", int | None, 7),
        ("x", str | None, "x"),
        (5, str, "5"),
        ("a.tsv", Path, Path("a.tsv")),
        ("q_proj", list[str], ["q_proj"]),
        (["1", 2], list[int], [1, 2]),
        ("cosine", Literal["linear", "cosine"], "cosine"),
    ],
)
def test_convert(value, tp, expected):
    out = convert(value, tp, "f.yaml: `x`")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        ("fast", float, "expected a number, got 'fast' (str)"),
        (1.5, int, "expected an integer, got 1.5 (float)"),
        (True, int, "expected an integer, got True (bool)"),
        ("maybe", bool, "expected true or false, got 'maybe' (str)"),
        (None, int, "expected an integer, got None (NoneType)"),
        ("x", int | None, "expected an integer or null, got 'x' (str)"),
        (False, str, "YAML reads yes/no/on/off/true/false as booleans: quote the value"),
        ("exotic", Literal["linear", "cosine"], "expected one of ['linear', 'cosine']"),
        ({"a": 1}, list[int], "expected a list of integers"),
        (float("nan"), float, "expected a number, got nan"),
    ],
)
def test_convert_errors_name_where_value_and_type(value, tp, message):
    with pytest.raises(ValueError) as info:
        convert(value, tp, "f.yaml: `x`")
    assert str(info.value).startswith("f.yaml: `x`: ") and message in str(info.value)


# -- older flat settings ---------------------------------------------------------------------
# `TrainConfig(...).to_dict()` as the flat config (before the sections) wrote it into
# grounding.json and train_config.json.
OLD_FLAT_TRAIN = {
    "seen_fraction": 0.5, "out_of_kb": 100, "questions_per_pair": 0, "p_no_gold": 0.2,
    "n_negatives": 2, "max_prompt_tokens": 512, "injection": "text",
    "soft_tokens_per_fact": 1, "injection_hidden": 256, "entity_vectors": False,
    "constraint": "margin", "constraint_weight": 0.25, "margin": 1.0,
    "constraint_scope": "divergence", "length_normalize": False, "feedback_every": 0,
    "feedback_samples": 32, "feedback_weight": 0.5, "feedback_batch_size": 1,
    "max_new_tokens": 24, "dpo_export": True, "adapter": "lora", "lora_r": 8,
    "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
    "num_virtual_tokens": 8, "learning_rate": 0.0002, "lr_scheduler": "linear",
    "warmup_ratio": 0.1, "weight_decay": 0.01, "max_grad_norm": 1.0, "epochs": 2.0,
    "max_steps": -1, "batch_size": 4, "grad_accum": 2, "precision": "auto", "seed": 0,
    "logging_steps": 10, "save_steps": 200, "save_total_limit": 2, "checkpoint_dir": "",
    "resume": False, "keep_checkpoints": False, "overwrite": False,
}  # fmt: skip
# `to_dict(FactCheckerConfig(...))` as older checkers recorded it in factcheck.json.
OLD_FLAT_CHECKER = {
    "base_model": None, "max_length": 96, "num_train_epochs": 4.0, "max_steps": 30,
    "learning_rate": 0.001, "train_batch_size": 8, "eval_batch_size": 64,
    "warmup_ratio": 0.0, "weight_decay": 0.01, "logging_steps": 20, "seed": 0,
    "device": "cpu",
}  # fmt: skip


def test_old_flat_settings_still_load():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every old key is known
        config = TrainConfig.from_dict(OLD_FLAT_TRAIN, origin="grounding.json")
        checker = FactCheckerConfig.from_dict(OLD_FLAT_CHECKER, origin="factcheck.json")
    assert config == TrainConfig(
        injection=InjectionConfig(modes=["text"]),
        adapter=AdapterConfig(r=8, target_modules=["q_proj", "v_proj"]),
        constraint=ConstraintConfig(weight=0.25),
        feedback=FeedbackConfig(every=0),
        optim=OptimConfig(
            learning_rate=2e-4, lr_scheduler_type="linear", warmup_steps=0.1,
            num_train_epochs=2.0, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        ),
    )  # fmt: skip
    assert checker == FactCheckerConfig(
        max_length=96,  # recorded: the default is now 256 (evidence is read in chunks)
        optim=CheckerOptimConfig(max_steps=30, learning_rate=1e-3, per_device_train_batch_size=8,
                                 warmup_steps=0.0)
    )  # fmt: skip
    # the base model's reference grounding holds only the answer length
    assert TrainConfig.from_dict({"max_new_tokens": 6}).feedback.max_new_tokens == 6


def test_variants_apply_flat_settings():
    sft = variant_config("sft", max_steps=4)
    assert sft.injection.modes == [] and sft.constraint.weight == 0.0
    assert sft.feedback.every == 0 and sft.data.p_no_gold == 0.0 and sft.optim.max_steps == 4
    base = update_config(TrainConfig(), {"lora_r": 2})
    assert variant_config("no_embedding", base).adapter.r == 2
    with pytest.raises(ValueError, match="unknown setting `lora_rr`; did you mean `lora_r`"):
        variant_config("grounded", lora_rr=3)


# -- the one optimiser config ----------------------------------------------------------------
def test_optim_config_uses_training_arguments_names_and_maps_them(tmp_path):
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    for cls in (OptimConfig, PretrainOptimConfig, CheckerOptimConfig):
        assert {f.name for f in dataclasses.fields(cls)} <= names, cls.__name__
    config = OptimConfig(
        learning_rate=2e-4, lr_scheduler_type="linear", warmup_steps=0.1, weight_decay=0.05,
        max_grad_norm=0.5, num_train_epochs=2.0, max_steps=11, per_device_train_batch_size=3,
        gradient_accumulation_steps=2, logging_steps=4,
    )  # fmt: skip
    args = config.training_arguments(tmp_path, seed=5, use_cpu=True, save_strategy="no")
    for f in dataclasses.fields(OptimConfig):
        value = getattr(args, f.name)
        value = getattr(value, "value", value)  # lr_scheduler_type is an enum there
        assert value == getattr(config, f.name), f.name
    assert (args.seed, args.data_seed, args.save_strategy) == (5, 5, "no")
    # whole warm-up steps pass as an int; extras override the mapped values
    args = OptimConfig(warmup_steps=3).training_arguments(
        tmp_path, seed=0, use_cpu=True, num_train_epochs=0.5
    )
    assert args.warmup_steps == 3 and args.num_train_epochs == 0.5
    with pytest.raises(ValueError, match="`warmup_steps` must be a share in"):
        OptimConfig(warmup_steps=2.5)


def test_train_help_lists_flat_flags_grouped_by_section(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    titles = ["training: data", "training: injection", "training: adapter",
              "training: constraint", "training: feedback", "training: optim",
              "training: retrieval"]  # fmt: skip
    positions = [out.index(t + ":") for t in titles]
    assert positions == sorted(positions)
    for flag, title in [("--learning-rate", "optim"), ("--lora-r", "adapter"),
                        ("--injection ", "injection"), ("--feedback-every", "feedback"),
                        ("--constraint-weight", "constraint"), ("--k ", "retrieval"),
                        ("--seen-fraction", "data")]:  # fmt: skip
        start = out.index(f"training: {title}:")
        assert (
            start < out.index(flag, start) < min([p for p in positions if p > start] + [len(out)])
        ), flag
    assert "--seed" in out and "--precision" in out
    assert "(also: --epochs)" in out
