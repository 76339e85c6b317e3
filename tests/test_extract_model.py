"""The model extractor (issue 19, 2b): its output format and constraint on hand-written
generations, training data from any KB and from labelled text, training a tiny LM, the
extractor folder's round trip and errors, and the CLI."""

from __future__ import annotations

import json
import math
import shutil

import cases
import pytest
from tiny_lm import make_tokenizer

from grounded.cli.main import main
from grounded.extract import ExtractConfig, examples_from_kb, parse_generation, read_labelled
from grounded.extract.format import find_span, line_confidences
from grounded.extract.model import AllowedTokens, ExtractorModel, text_token_ids
from kg import Relation, Schema, SourceFileError, Triple
from kg.manifest import ArtifactError, ArtifactMissingError, read_manifest

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the format and its constraint, on hand-written generations ------------------------------


def test_parse_generation_worked_by_hand():
    schema = Schema([Relation("capital", "The capital of {subject} is {object}.")])
    text = "Ulaanbaatar, the capital of Mongolia, lies on the Tuul River."
    gen = (
        "Mongolia | capital | Ulaanbaatar\nMongolia | capital | Ulan Bator\n"
        "Mongol | capital | Ulaanbaatar\nMongolia | river | Tuul River\n| capital |"
    )
    triples, counts = parse_generation(gen, text, schema)
    assert [(t.subject, t.relation, t.object) for t in triples] == [
        ("Mongolia", "capital", "Ulaanbaatar")
    ]
    assert (triples[0].subject_start, triples[0].object_start) == (28, 0)
    # "Ulan Bator" is not written; "Mongol" is only part of a word; "river" is no relation
    assert (counts.not_a_span, counts.unknown_relation, counts.malformed) == (2, 1, 1)
    assert counts.dropped() == 4
    assert parse_generation("none", text, schema)[1].none == 1
    assert parse_generation("", text, schema)[1].none == 1


def test_find_span_and_line_confidences():
    text = "Dune  was written by\nFrank Herbert."
    assert find_span('"Frank Herbert"', text) == ("Frank Herbert", 21)
    assert find_span("dune was", text) == ("Dune was", 0)
    assert find_span("Herb", text) is None
    assert find_span("...", text) is None
    # line 1: exp((ln .5 + ln .8) / 2) = sqrt(.4); line 2: .25
    conf = line_confidences(["x |", " y\n", "\n", "z"], [0.5, 0.8, 1.0, 0.25])
    assert [round(c, 6) for c in conf] == [round(math.sqrt(0.4), 6), 0.25]


def test_allowed_tokens_masks_each_row():
    import torch

    mask = torch.tensor([[True, False, True], [False, True, False]])
    scores = torch.tensor(
        [
            [1.0, 5.0, 2.0],
            [3.0, 0.5, 4.0],
        ]
    )
    out = AllowedTokens(mask)(None, scores)
    assert out.argmax(-1).tolist() == [2, 1]
    assert torch.isinf(out[0, 1]) and torch.isinf(out[1, 0]) and out[1, 1] == 0.5


def test_text_tokens_cover_every_word_alone():
    tok = make_tokenizer(["Dune was written by Frank Herbert."] * 5, vocab_size=300)
    allowed = text_token_ids(tok, "Dune was written by Frank Herbert.")
    for word in ("Herbert", " Herbert", "Frank", "Dune", " Dune"):
        assert set(tok(word, add_special_tokens=False)["input_ids"]) <= allowed


def test_config_needs_a_folder_for_the_model_extractor():
    with pytest.raises(ValueError, match="--extractor-model FOLDER"):
        ExtractConfig(documents=["a.txt"], relations="r.json", extractors=["model"])
    config = ExtractConfig(documents=["a.txt"], relations="r.json", extractor_model="ex")
    assert config.extractors == ["questions", "templates", "model"]


# -- training data ---------------------------------------------------------------------------


def _books():
    return cases.ExtractorCase.schema()


FACTS = [
    Triple("Dune", "author", "Frank Herbert"),
    Triple("Dune", "publisher", "Chilton Books"),
    Triple("Frank Herbert", "birthplace", "Tacoma"),
    Triple("Emma", "author", "Jane Austen"),
    Triple("Jane Austen", "birthplace", "Steventon"),
    Triple("Emma", "genre", "novel"),  # not in the schema: skipped
]


def test_kb_examples_state_their_triples_as_spans():
    schema = _books()
    ex = examples_from_kb(FACTS, schema, max_examples=50, distractor_share=0.2, seed=3)
    assert len(ex) == 50 and sum(e.origin == "distractor" for e in ex) == 10
    assert any(len(e.triples) > 1 for e in ex)  # several facts in one example
    facts = {(t.subject, t.relation, t.object) for t in FACTS}
    for e in ex:
        assert bool(e.triples) == (e.origin == "kb")
        assert e.target() == ("none" if not e.triples else e.target())
        for h, r, t in e.triples:
            assert r in schema and (h, r, t) in facts
            assert find_span(h, e.text) and find_span(t, e.text), e.text
    texts = {e.text for e in ex}
    assert any("was written by" in t for t in texts) and any(" wrote " in t for t in texts)
    assert ex == examples_from_kb(FACTS, schema, max_examples=50, distractor_share=0.2, seed=3)
    assert ex != examples_from_kb(FACTS, schema, max_examples=50, distractor_share=0.2, seed=4)
    with pytest.raises(ValueError, match="distractor_share"):
        examples_from_kb(FACTS, schema, distractor_share=1.0)


def test_labelled_text_reads_spans_and_names_bad_lines(tmp_path):
    schema = _books()
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"text": "Dune was written by Frank Herbert.",
                    "triples": [["Dune", "author", "Frank Herbert"], ["Dune", "author", "Ann"]]})
        + "\n\n" + json.dumps({"text": "It rained.", "triples": []}) + "\n"
    )  # fmt: skip
    rows, dropped = read_labelled(good, schema)
    assert [(r.triples, r.target()) for r in rows] == [
        ((("Dune", "author", "Frank Herbert"),), "Dune | author | Frank Herbert"),
        ((), "none"),
    ]
    assert dropped == 1  # "Ann" is not in the sentence
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"text": "Dune was written by Frank Herbert.",
                    "triples": [{"subject": "Dune", "relation": "writer",
                                 "object": "Frank Herbert"}]})
        + "\n{not json\n" + json.dumps({"triples": []}) + "\n"
    )  # fmt: skip
    with pytest.raises(SourceFileError) as err:
        read_labelled(bad, schema)
    assert [(line, reason.split(" ")[0]) for _, line, reason in err.value.errors] == [
        (1, "relation"), (2, "invalid"), (3, 'needs'),
    ]  # fmt: skip
    assert "'writer' is not in the schema" in str(err.value) and "bad.jsonl:1" in str(err.value)


# -- a tiny LM trained as an extractor -------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Llama (tokenizer trained on the examples) LoRA-trained on rendered books."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from grounded.extract.training import (
        ExtractorAdapterConfig,
        ExtractorOptimConfig,
        ExtractorTrainConfig,
        train_extractor,
    )
    from grounded.model.artifacts import load_base

    schema = _books()
    examples = examples_from_kb(FACTS, schema, max_examples=64, seed=0)
    tok = make_tokenizer([e.prompt() + e.target() for e in examples] * 3, vocab_size=400)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, initializer_range=0.4,
    )  # fmt: skip
    base = tmp_path_factory.mktemp("exbase") / "llama"
    LlamaForCausalLM(config).save_pretrained(base)
    tok.save_pretrained(base)
    tokenizer, lm = load_base(base)
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    cfg = ExtractorTrainConfig(
        base=str(base),
        adapter=ExtractorAdapterConfig(layers="top1", lora_dropout=0.0),
        optim=ExtractorOptimConfig(max_steps=30, learning_rate=1e-2, logging_steps=3),
    )
    model, log = train_extractor(examples, schema, cfg, lm=lm, tokenizer=tokenizer,
                                 show_progress=False)  # fmt: skip
    model.metadata["base"] = {"spec": str(base)}
    folder = model.save_pretrained(tmp_path_factory.mktemp("ex") / "extractor")
    return model, log, before, folder, schema, base


def test_training_changes_the_adapter_and_lowers_the_loss(trained):
    model, log, before, *_ = trained
    assert log.steps == 30 and log.examples == 64
    first, last = sum(log.losses[:3]) / 3, sum(log.losses[-3:]) / 3
    assert last < first * 0.8, log.losses
    lora = {n: p for n, p in model.model.named_parameters() if "lora_" in n}
    # top1 of 2 layers: only layer 1 is wrapped; lora_B starts at zero and must move
    assert lora and all(".layers.1." in n for n in lora)
    assert any(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)
    for n, p in model.model.named_parameters():
        if "lora_" not in n:  # the base stays frozen
            key = n.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch_equal(p, before[key]), n


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_save_load_round_trip(trained):
    model, _, _, folder, schema, base = trained
    manifest = read_manifest(folder, "grounded-extractor", 1)
    assert {"adapter_model.safetensors", "adapter_config.json", "schema.json",
            "extractor.json"} <= set(manifest["checksums"])  # fmt: skip
    assert {"torch", "transformers", "peft"} <= set(manifest["versions"])
    record = json.loads((folder / "extractor.json").read_text())
    assert record["base"]["spec"] == str(base)
    assert record["settings"]["adapter"]["layers"] == "top1"
    assert record["data"]["examples"] == 64 and record["format"]["none"] == "none"
    loaded = ExtractorModel.from_pretrained(folder, merge=False)
    assert loaded.schema.to_dict() == schema.to_dict()
    texts = ["Dune was written by Frank Herbert.", "Little is known about Emma."]
    a, b = model.read(texts, max_new_tokens=16), loaded.read(texts, max_new_tokens=16)
    assert [r.generation for r in a] == [r.generation for r in b]
    for r in a:  # whatever a tiny model writes, only schema relations and spans survive
        for t, conf in r.triples:
            assert t.relation in schema and 0.0 <= conf <= 1.0
            assert t.subject in r.generation and find_span(t.subject, texts[a.index(r)])


def test_a_bad_extractor_folder_names_the_file_and_the_fix(trained, tmp_path, tiny_kb):
    *_, folder, _, _ = trained
    with pytest.raises(ArtifactMissingError, match="train-extractor"):
        ExtractorModel.from_pretrained(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "adapter_model.safetensors").unlink()
    with pytest.raises(ArtifactMissingError, match=r"adapter_model\.safetensors"):
        ExtractorModel.from_pretrained(broken)
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    (tampered / "schema.json").write_text('{"relations": []}')
    with pytest.raises(ArtifactError, match=r"schema\.json.*(?s:.*)train-extractor"):
        ExtractorModel.from_pretrained(tampered)
    with pytest.raises(ArtifactError, match="grounded-extractor"):
        ExtractorModel.from_pretrained(tiny_kb.path)


def test_cli_trains_and_extracts(tiny_kb, tiny_base, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["kb", "train-extractor", "--help"])
    assert e.value.code == 0
    assert "head | relation | tail" in capsys.readouterr().out
    out = tmp_path / "extractor"
    args = ["kb", "train-extractor", "--kb", str(tiny_kb.path), "--base", str(tiny_base),
            "--kb-examples", "16", "--max-steps", "2", "--lora-layers", "top1",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_manifest(out, "grounded-extractor", 1)
    assert main(args) != 0  # an extractor is there: replaced only with --overwrite
    assert "--overwrite" in capsys.readouterr().err
    doc = tmp_path / "doc.txt"
    doc.write_text("The capital of Mongolia is Ulaanbaatar. Little is known about Peru.\n")
    ex = tmp_path / "extracted"
    assert main(["kb", "extract", str(doc), "--relations", str(tiny_kb.path / "relations.json"),
                 "--extractor-model", str(out), "--out", str(ex)]) == 0  # fmt: skip
    summary = json.loads((ex / "extraction.json").read_text())
    assert summary["sentences"] == 2
