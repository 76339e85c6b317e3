"""``grounded pretrain``: the split, the corpus, the tokenizer, training, saving and resuming.

One tiny pretraining run on the 20-entity KB is shared by the module; a run takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from tiny import FACTS, SCHEMA

from grounded.answers import format_answer
from grounded.cli.main import main
from grounded.data.prompts import format_example, format_prompt
from grounded.pretrain import (
    PRETRAIN_FILE,
    PretrainConfig,
    PretrainOptimConfig,
    PretrainSplit,
    build_corpus,
    build_model,
    checkpoints_dir,
    greedy_answers,
    load_pretrain_split,
    pack_documents,
    pretrain,
    question_templates,
    split_subjects,
    tokenizer_texts,
    train_tokenizer,
)
from kg import KnowledgeGraph, Triple


def quick(**overrides) -> PretrainConfig:
    """The quick preset, shortened further for tests.

    One thread: a model this small gains nothing from more, and on a busy machine threads
    waiting on each other make each step many times slower.
    """
    settings = {
        "max_steps": 24,
        "save_steps": 8,
        "logging_steps": 4,
        "learning_rate": 5e-3,
        "num_threads": 1,
    }
    return PretrainConfig.from_preset("quick", **{**settings, **overrides})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Generation with the tiny model on one thread too (see :func:`quick`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tiny_kb, tmp_path_factory):
    """One short pretraining run on the tiny KB."""
    out = tmp_path_factory.mktemp("pretrain") / "base"
    return pretrain(tiny_kb, out, quick(), show_progress=False)


# -- split ------------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_order_independent(tiny_kb):
    graph = tiny_kb.graph
    known, unknown = split_subjects(graph, 0.5, seed=0)
    subjects = {s for s, _, _ in FACTS}
    assert set(known).isdisjoint(unknown)
    assert set(known) | set(unknown) == subjects
    assert len(known) == round(0.5 * len(subjects))
    assert split_subjects(graph, 0.5, seed=0) == (known, unknown)
    # Loading the same facts in another order gives the same split.
    reversed_graph = KnowledgeGraph([Triple(*f) for f in reversed(FACTS)], SCHEMA)
    assert split_subjects(reversed_graph, 0.5, seed=0) == (known, unknown)
    assert any(split_subjects(graph, 0.5, seed=s)[0] != known for s in range(1, 6))


def test_split_gives_each_side_a_subject():
    graph = KnowledgeGraph([Triple("A", "capital", "a"), Triple("B", "capital", "b")], SCHEMA)
    for fraction in (0.01, 0.99):
        known, unknown = split_subjects(graph, fraction, seed=0)
        assert len(known) == len(unknown) == 1


def test_pretrain_split_round_trips_and_groups(tmp_path):
    split = PretrainSplit(("A", "B"), ("C",), seed=3, kb_name="kb", kb_checksum="x")
    split.save(tmp_path)
    back = load_pretrain_split(tmp_path)
    assert back == split
    assert (back.group("A"), back.group("C"), back.group("Z")) == ("known", "unknown", None)
    data = json.loads((tmp_path / PRETRAIN_FILE).read_text())
    assert set(data) == {
        "format_version",
        "kb",
        "seed",
        "known_subjects",
        "unknown_subjects",
        "settings",
        "train",
    }


def test_load_pretrain_split_none_for_other_checkpoints_and_errors(tmp_path):
    assert load_pretrain_split(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrain_split(tmp_path / "missing")
    (tmp_path / PRETRAIN_FILE).write_text(json.dumps({"format_version": 99, "seed": 0}))
    with pytest.raises(ValueError, match="upgrade grounded"):
        load_pretrain_split(tmp_path)
    (tmp_path / PRETRAIN_FILE).write_text(json.dumps({"format_version": 1}))
    with pytest.raises(ValueError, match="known_subjects"):
        load_pretrain_split(tmp_path)
    with pytest.raises(ValueError, match="overlap"):
        PretrainSplit(("A",), ("A",), seed=0)


# -- corpus -----------------------------------------------------------------------------------
def test_qa_format_is_the_fine_tuning_format():
    assert format_prompt("Where is Mongolia?") == "Question: Where is Mongolia?\nAnswer:"
    assert (
        format_example("Where is Mongolia?", "Asia.")
        == "Question: Where is Mongolia?\nAnswer: Asia."
    )
    assert format_answer(["Pretoria", "Cape Town", "Bloemfontein"]) == (
        "Pretoria, Cape Town and Bloemfontein."
    )


def test_corpus_holds_known_facts_and_no_unknown_ones(tiny_kb):
    graph = tiny_kb.graph
    known, unknown = split_subjects(graph, 0.5, seed=0)
    docs = build_corpus(graph, known, seed=0)
    assert docs == build_corpus(graph, known, seed=0)
    text = "\n".join(docs)
    for t in graph.triples():
        statement = graph.verbalize(t)
        assert (statement in docs) == (t.subject in known), statement
    for s in unknown:
        for r in graph.schema:
            for q in question_templates(r):
                assert f"Question: {q.format(subject=s)}\n" not in text
    # Every known pair as a question and answer in the fine-tuning format.
    for s in known:
        for r in {t.relation for t in graph.facts(s)}:
            q = question_templates(graph.schema[r])[0].format(subject=s)
            assert format_example(q, format_answer(graph.objects(s, r))) in docs


def test_tokenizer_round_trips_entity_names(tiny_kb):
    graph = tiny_kb.graph
    tok = train_tokenizer(tokenizer_texts(graph), 1024)
    names = [*graph.entities, *(a for v in graph.aliases.values() for a in v)]
    for name in [*names, "Ærøskøbing", "Ouagadougou 北京"]:  # the last two were never seen
        for text in (name, f"The capital of {name} is {name}."):
            ids = tok(text)["input_ids"]
            assert ids[0] == tok.bos_token_id
            assert tok.decode(ids, skip_special_tokens=True) == text
    assert {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id} == {0, 1, 2}


def test_pack_documents_keeps_documents_whole():
    docs = [[1, 5, 2], [1, 6, 6, 6, 2], [1, 7, 2], list(range(10, 23))]
    blocks = pack_documents(docs, 6, pad_id=0)
    assert all(len(b["input_ids"]) == 6 for b in blocks)
    assert [b["input_ids"] for b in blocks[:3]] == [
        [1, 5, 2, 0, 0, 0],
        [1, 6, 6, 6, 2, 0],
        [1, 7, 2, 0, 0, 0],
    ]
    # Only a document longer than a block is cut; padding carries no loss.
    assert [b["input_ids"] for b in blocks[3:]] == [
        [10, 11, 12, 13, 14, 15],
        [16, 17, 18, 19, 20, 21],
        [22, 0, 0, 0, 0, 0],
    ]
    assert blocks[0]["labels"] == [1, 5, 2, -100, -100, -100]
    assert blocks[0]["attention_mask"] == [1, 1, 1, 0, 0, 0]


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"known_fraction": 1.0}, "known_fraction"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"hidden_size": 100, "num_heads": 3}, "hidden_size"),
        ({"num_heads": 4, "num_kv_heads": 3}, "num_kv_heads"),
        ({"block_size": 1024, "max_position_embeddings": 512}, "block_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"max_steps": 0}, "max_steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"lr_scheduler_type": "exotic"}, "lr_scheduler_type"),
        ({"warmup_ratio": 1.5}, "warmup_steps"),
        ({"batch_size": "eight"}, "batch_size"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        PretrainConfig.from_dict(overrides)


def test_config_presets_and_round_trip():
    config = PretrainConfig.from_preset("quick", seed=7)
    assert config.seed == 7 and config.hidden_size == 64
    assert PretrainConfig.from_dict(config.to_dict()) == config
    assert config.optim.max_steps == 60 and config.optim.learning_rate == 3e-3
    assert PretrainConfig().optim.learning_rate == 3e-3  # pretraining's default, not training's
    assert "resume" not in config.model_settings()
    assert "logging_steps" not in config.model_settings()
    assert "num_threads" not in config.model_settings()
    with pytest.raises(ValueError, match="`preset`"):
        PretrainConfig.from_preset("huge")


# -- training and the checkpoint --------------------------------------------------------------
def test_training_changes_parameters_and_lowers_loss(run):
    import torch

    config = quick()
    initial = build_model(config, run.tokenizer).state_dict()
    trained = run.model.state_dict()
    assert initial.keys() == trained.keys()
    changed = [k for k in trained if not torch.equal(initial[k], trained[k])]
    assert len(changed) == len(trained)
    t = run.train
    assert t["steps"] == config.optim.max_steps
    assert t["final_loss"] < t["first_loss"] - 1.0
    assert t["tokens"] > 0 and t["seconds"] > 0


def test_checkpoint_is_a_standard_hf_checkpoint(run, tiny_kb):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", PRETRAIN_FILE} <= files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    assert not checkpoints_dir(run.path).exists()
    model = AutoModelForCausalLM.from_pretrained(run.path)
    tok = AutoTokenizer.from_pretrained(run.path)
    assert model.config.model_type == "llama"
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    questions = [
        question_templates(r)[0].format(subject=s)
        for s in ("Mongolia", "China", "South Africa")
        for r in tiny_kb.graph.schema
    ]
    before = greedy_answers(run.model, run.tokenizer, questions, max_new_tokens=8)
    after = greedy_answers(model, tok, questions, max_new_tokens=8)
    assert before == after
    # Batched (left-padded) decoding answers as one question at a time does.
    one_by_one = [greedy_answers(model, tok, [q], max_new_tokens=8)[0] for q in questions[:3]]
    assert after[:3] == one_by_one


def test_saved_split_matches_the_run(run, tiny_kb):
    split = load_pretrain_split(run.path)
    assert split == run.split
    assert (split.kb_name, split.kb_checksum) == (tiny_kb.name, tiny_kb.checksum)
    known, unknown = split_subjects(tiny_kb.graph, 0.5, seed=0)
    assert (split.known_subjects, split.unknown_subjects) == (tuple(known), tuple(unknown))
    assert split.settings == quick().to_dict()
    assert {"steps", "final_loss", "tokens", "seconds"} <= set(split.train)


def test_existing_out_is_refused(run, tiny_kb):
    with pytest.raises(FileExistsError, match="--overwrite"):
        pretrain(tiny_kb, run.path, quick(), show_progress=False)


def test_resume_continues_from_the_saved_step(tiny_kb, tmp_path):
    import torch

    out = tmp_path / "base"
    full = pretrain(tiny_kb, out, quick(keep_checkpoints=True), show_progress=False)
    ckpt = checkpoints_dir(out)
    assert full.checkpoints == ckpt
    # Simulate a run killed after its checkpoint at step 16: the last checkpoint and the
    # output never got written.
    shutil.rmtree(out)
    shutil.rmtree(ckpt / "checkpoint-24")
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(tiny_kb, out, quick(), show_progress=False)
    with pytest.raises(ValueError, match="`learning_rate`"):
        pretrain(tiny_kb, out, quick(resume=True, learning_rate=1e-3), show_progress=False)
    resumed = pretrain(tiny_kb, out, quick(resume=True), show_progress=False)
    assert resumed.train["resumed_from_step"] == 16
    assert resumed.train["steps"] == 24
    assert resumed.train["tokens"] < full.train["tokens"] / 2
    assert not ckpt.exists()
    # Resuming restores optimizer, schedule, data order and RNG: the same weights result.
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5), name


# -- command line -----------------------------------------------------------------------------
def test_cli_pretrain(tiny_kb, tmp_path, capsys):
    out = tmp_path / "base"
    yaml_file = tmp_path / "pretrain.yaml"
    yaml_file.write_text("preset: quick\nmax_steps: 6\nsave_steps: 3\nseed: 1\nnum_threads: 1\n")
    argv = ["pretrain", str(tiny_kb.path), "--out", str(out), "--config", str(yaml_file)]
    assert main([*argv, "--max-steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert "4 steps" in printed and f"wrote {out}/" in printed
    split = load_pretrain_split(out)
    assert split.seed == 1 and split.train["steps"] == 4
    assert split.settings["hidden_size"] == 64  # from the preset named in the YAML file
    # Errors are reported without a traceback, naming the problem.
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--num-heads", "3"]) == 2
    assert "`hidden_size`" in capsys.readouterr().err
    yaml_file.write_text("hiden_size: 8\n")
    assert main([*argv, "--overwrite"]) == 2
    assert "hiden_size" in capsys.readouterr().err


def test_cli_pretrain_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["pretrain", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--known-fraction" in out and "--resume" in out and "--preset" in out


def test_config_fields_have_help():
    for f in [*dataclasses.fields(PretrainConfig), *dataclasses.fields(PretrainOptimConfig)]:
        assert f.metadata.get("help"), f.name


def test_abstention_documents_ask_about_made_up_entities(tiny_kb):
    from grounded.answers import ABSTAIN
    from grounded.pretrain.corpus import abstention_documents
    from grounded.pretrain.train import training_corpus

    graph = tiny_kb.graph
    docs = abstention_documents(graph, 20, seed=0)
    assert docs == abstention_documents(graph, 20, seed=0) and len(docs) == 20
    with_evidence = [d for d in docs if d.startswith("Evidence:")]
    assert len(with_evidence) == 10
    for doc in docs:
        prompt, answer = doc.rsplit("\nAnswer: ", 1)
        assert answer == ABSTAIN
        question = prompt.rsplit("Question: ", 1)[1]
        # the entity asked about is made up: the question names nothing the KB knows
        assert not graph.linker.link(question), question
    config = PretrainConfig(optim=PretrainOptimConfig(max_steps=5), abstention_docs=7)
    corpus, _ = training_corpus(graph, ["Mongolia"], config)
    assert sum(d.endswith("Answer: " + ABSTAIN) for d in corpus) == 7
    with pytest.raises(ValueError, match="`abstention_docs` must be >= 0"):
        PretrainConfig(abstention_docs=-1)
