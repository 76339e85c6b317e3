"""The reader: generated reading items, the reading probe's scoring, and a tiny reader that
learns to copy answers from evidence about entities it never saw."""

from __future__ import annotations

import json
import random
import re

import pytest

from grounded.answers import ABSTAIN, format_answer
from grounded.data.prompts import format_prompt
from grounded.data.reading import (
    ReadingItem,
    generic_english,
    synthetic_reading_item,
    synthetic_reading_items,
)
from grounded.pretrain.config import ReaderConfig
from grounded.pretrain.model import IGNORE_INDEX
from grounded.pretrain.probe import score_reading
from grounded.pretrain.reader import (
    READER_FILE,
    ReadingBlocks,
    load_reader,
    pretrain_reader,
    reader_command,
    reading_probe_sets,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _has(line: str, word: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", line, re.IGNORECASE) is not None


def _verb_base(item: ReadingItem) -> str | None:
    # A verb relation is asked in its base form ("What does X own?" for "owns").
    return item.relation[:-1] if item.relation.endswith("s") else None


def _line_answers(item: ReadingItem, line: str) -> bool:
    return _has(line, item.subject) and _has(line, item.relation)


# -- builders, checked by hand -----------------------------------------------------------------
def test_synthetic_item_by_hand():
    rng = random.Random(3)
    item = synthetic_reading_item(rng, 3, gold_position=2, p_famous=0.0)
    gold = item.evidence[2]
    assert len(item.evidence) == 3
    assert len(item.objects) == 1
    assert _line_answers(item, gold) and item.objects[0] in gold
    # Distractors: the same relation of another subject, the same subject with another relation.
    first, second = item.evidence[:2]
    assert sum(_line_answers(item, line) for line in item.evidence) == 1
    kinds = {(_has(x, item.subject), _has(x, item.relation)) for x in (first, second)}
    assert kinds == {(False, True), (True, False)}
    assert _has(item.question, item.subject)
    doc = f"{format_prompt(item.question, item.evidence)} {format_answer(item.objects)}"
    assert doc.endswith(f"Answer: {item.objects[0]}.")
    assert doc.startswith(f"Evidence:\n- {first}\n- {second}\n- {gold}\nQuestion: ")


@pytest.mark.parametrize("kind", ["subject", "relation"])
def test_unanswerable_items_lack_what_they_say(kind):
    items = [
        synthetic_reading_item(random.Random(i), 1 + i % 5, unanswerable=kind) for i in range(60)
    ]
    for it in items:
        assert it.objects == [] and format_answer(it.objects) == ABSTAIN
        assert not any(_line_answers(it, line) for line in it.evidence)
        named = any(_has(line, it.subject) for line in it.evidence)
        assert named is (kind == "relation")  # "relation": the subject is there, alone


def test_answerable_items_hold_one_answer_line_and_are_seeded():
    items = synthetic_reading_items(200, seed=5, p_unanswerable=0.0, p_multi=0.0)
    assert items == synthetic_reading_items(200, seed=5, p_unanswerable=0.0, p_multi=0.0)
    assert items != synthetic_reading_items(200, seed=6, p_unanswerable=0.0, p_multi=0.0)
    for it in items:
        gold = [line for line in it.evidence if _line_answers(it, line)]
        assert len(gold) == 1 and it.objects[0] in gold[0], it
    positions = {next(i for i, x in enumerate(it.evidence) if _line_answers(it, x)) for it in items}
    assert positions == {0, 1, 2, 3, 4}  # gold not always first


def test_held_out_pools_never_meet_training_pools():
    train = synthetic_reading_items(3000, seed=0)
    held = [it for s in reading_probe_sets(100).values() for it in s]
    assert {it.relation for it in train}.isdisjoint({it.relation for it in held})
    train_questions = {re.sub(re.escape(it.subject), "S", it.question) for it in train}
    for it in held:
        q = re.sub(re.escape(it.subject), "S", it.question)
        assert q not in train_questions


def test_made_up_relation_share_moves_training_only():
    """`p_made_up` raises the share of made-up relation words on the training side; the
    held-out side (the probe) draws exactly as before, so probe scores stay comparable."""
    from grounded.data.reading import _NOUNS, _VERBS

    real = {n.replace("_", " ") for n in _NOUNS} | {v for v, _ in _VERBS}

    def share(p: float | None) -> float:
        rng = random.Random(0)
        items = [synthetic_reading_item(rng, 3, p_made_up=p) for _ in range(1000)]
        return sum(it.relation not in real for it in items) / len(items)

    assert 0.30 < share(None) < 0.40 and share(0.9) > 0.85 and share(0.0) == 0.0
    for p in (None, 0.0, 0.9):
        held = synthetic_reading_item(random.Random(3), 5, held_out=True, p_made_up=p)
        assert held == synthetic_reading_item(random.Random(3), 5, held_out=True)
    with pytest.raises(ValueError, match="p_made_up_relation"):
        ReaderConfig(p_made_up_relation=1.5)


def test_probe_sets_shape():
    sets = reading_probe_sets(10)
    assert [len(v) for v in sets.values()] == [10, 10, 10]
    assert all(len(it.evidence) == 1 and it.objects for it in sets["1_line"])
    assert all(len(it.evidence) == 5 and len(it.objects) == 1 for it in sets["5_lines"])
    assert all(not it.objects for it in sets["unanswerable"])
    assert sets == reading_probe_sets(10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`lines`"):
        synthetic_reading_item(random.Random(0), 0)
    with pytest.raises(ValueError, match="`unanswerable`"):
        synthetic_reading_item(random.Random(0), 2, unanswerable="object")
    with pytest.raises(ValueError, match="`min_lines`"):
        synthetic_reading_items(2, seed=0, min_lines=3, max_lines=2)
    with pytest.raises(ValueError, match="`p_multi`"):
        synthetic_reading_items(2, seed=0, p_multi=2.0)
    with pytest.raises(ValueError, match="`max_lines`"):
        ReaderConfig(max_lines=0)


def test_generic_english_is_fixed_text():
    texts = generic_english()
    assert texts == generic_english()
    assert "the" in texts and " language" in texts


# -- the probe's scoring, by hand ---------------------------------------------------------------
def test_score_reading_by_hand():
    items = [
        ReadingItem("What is the hue of Ab?", ["The hue of Ab is Cor."], ["Cor"], "Ab", "hue"),
        ReadingItem("What is the hue of Ab?", ["Ab owns Cor."], [], "Ab", "hue"),
        ReadingItem("Q?", ["Ab owns Cor.", "Ab owns Dex."], ["Cor", "Dex"], "Ab", "owns"),
        ReadingItem("Q?", ["The hue of Ab is Cor."], ["Cor"], "Ab", "hue"),
    ]
    result = score_reading(items, ["Cor.", ABSTAIN, "Cor and Dex.", ABSTAIN])
    assert (result["correct"], result["total"], result["abstained"]) == (3, 4, 2)
    assert result["accuracy"] == 0.75
    assert result["examples"] == [{"question": "Q?", "expected": "Cor.", "answer": ABSTAIN}]
    with pytest.raises(ValueError, match="answers"):
        score_reading(items, ["Cor."])


# -- training data and a tiny reader --------------------------------------------------------------
TINY = {
    "vocab_size": 600,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "block_size": 128,
    "max_lines": 1,
    "p_unanswerable": 0.0,
    "p_famous": 0.0,
    "p_multi": 0.0,
    "batch_size": 16,
    "learning_rate": 1e-2,
    "loss_on": "all",
    "warmup_ratio": 0.05,
    "save_steps": 100,
    "logging_steps": 10,
    "probe_items": 8,
}


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory):
    out = tmp_path_factory.mktemp("reader") / "reader"
    return pretrain_reader(out, ReaderConfig(max_steps=400, **TINY), show_progress=False)


def test_blocks_are_seeded_curriculum_and_answer_only_loss(tiny_reader):
    _, tok, _ = load_reader(tiny_reader.path)
    settings = {**TINY, "max_lines": 5, "curriculum_fraction": 0.5, "loss_on": "answer"}
    config = ReaderConfig(max_steps=10, **settings)
    blocks = ReadingBlocks(tok, config, 100)
    # A ramp of 50 blocks, 10 per level.
    levels = [blocks.max_lines_at(i) for i in (0, 9, 10, 29, 30, 40, 99)]
    assert levels == [1, 1, 2, 3, 4, 5, 5]
    a, b = blocks[7], blocks[7]
    assert a["input_ids"].tolist() == b["input_ids"].tolist()
    labels, ids = a["labels"].tolist(), a["input_ids"].tolist()
    kept = [t for t, y in zip(ids, labels, strict=True) if y != IGNORE_INDEX]
    text = tok.decode(kept, skip_special_tokens=True)
    assert "Evidence" not in text and "Question" not in text  # the loss is on answers only
    assert text.strip().endswith(".") or text.strip().endswith(ABSTAIN)
    docs, starts = blocks.documents(7)
    assert tok.decode(docs[0][: starts[0]], skip_special_tokens=True).endswith("Answer:")
    # `question`: the loss starts where the question does, after the evidence
    asked = ReadingBlocks(
        tok, ReaderConfig(max_steps=10, **{**settings, "loss_on": "question"}), 100
    )
    docs, starts = asked.documents(7)
    head = tok.decode(docs[0][: starts[0]], skip_special_tokens=True)
    tail = tok.decode(docs[0][starts[0] :], skip_special_tokens=True)
    assert head.startswith("Evidence") and "Question" not in head
    assert tail.lstrip().startswith("Question:") and "Answer:" in tail


def test_tiny_reader_reads_fresh_items(tiny_reader):
    """Trained for seconds, the reader uses evidence it never saw to answer.

    60 fresh held-out items of one line (new names, relations and phrasings). For each, the
    log-likelihood of its answer given its own evidence is compared with the same question
    and answer given another item's evidence: a model that ignores its evidence gains
    nothing (positive on half the items by chance); this one gains on most items, by over
    half a nat on average. (Measured: 0.87 of items, 1.38 nats; a tiny model needs far more
    steps to copy exactly, see README "A base that reads".)
    """
    import torch

    model, tok, manifest = load_reader(tiny_reader.path)
    train = manifest["train"]
    assert train["final_loss"] < train["first_loss"]
    model.eval()

    def answer_logprob(prompt: str, answer: str) -> float:
        ids = tok(f"{prompt} {answer}")["input_ids"]
        n = len(tok(prompt)["input_ids"])
        with torch.no_grad():
            logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        return sum(logp[j - 1, ids[j]].item() for j in range(n, len(ids)))

    items = reading_probe_sets(60, seed=11)["1_line"]
    gains = []
    for i, it in enumerate(items):
        other = items[(i + 1) % len(items)]
        answer = format_answer(it.objects)
        own = answer_logprob(format_prompt(it.question, it.evidence), answer)
        swapped = answer_logprob(format_prompt(it.question, other.evidence), answer)
        gains.append(own - swapped)
    positive = sum(g > 0 for g in gains) / len(gains)
    assert positive >= 0.7 and sum(gains) / len(gains) >= 0.5, (positive, gains)


def test_reader_folder_round_trips_with_checksums(tiny_reader, tmp_path):
    import shutil

    path = shutil.copytree(tiny_reader.path, tmp_path / "reader")
    manifest = json.loads((path / READER_FILE).read_text())
    assert set(manifest["checksums"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    command = f"python -m grounded pretrain-reader --out {tiny_reader.path}"
    assert manifest["command"].startswith(command)
    assert "--max-steps 400" in manifest["command"]
    assert manifest["train"]["cpu_minutes"] > 0 and manifest["train"]["probe_curve"]
    (path / "config.json").write_text((path / "config.json").read_text() + " ")
    with pytest.raises(ValueError, match=r"config\.json"):
        load_reader(path)


def test_reader_command_lists_changed_settings():
    cmd = reader_command("R", ReaderConfig(seed=3, max_steps=50))
    assert cmd == "python -m grounded pretrain-reader --out R --seed 3 --max-steps 50"


# -- continuing from a reader on a knowledge base -----------------------------------------------
def test_pretrain_continues_from_a_reader_with_reading_in_the_mix(tiny_kb, tiny_reader, tmp_path):
    import torch
    from safetensors.torch import load_file

    from grounded.pretrain import PretrainConfig, pretrain, split_subjects
    from grounded.pretrain.train import training_corpus

    config = PretrainConfig.from_preset(
        "quick", init=str(tiny_reader.path), max_steps=6, num_threads=1, block_size=256
    )
    known, _ = split_subjects(tiny_kb.graph, config.known_fraction, config.seed)
    docs, _ = training_corpus(tiny_kb.graph, known, config)
    plain, _ = training_corpus(
        tiny_kb.graph, known, PretrainConfig.from_preset("quick", max_steps=6)
    )
    assert len(docs) == 2 * len(plain)  # as many generated reading documents as KB documents
    assert set(plain) < set(docs)
    result = pretrain(tiny_kb, tmp_path / "base", config, show_progress=False)
    assert result.train["init"]["path"] == str(tiny_reader.path)
    before = load_file(tiny_reader.path / "model.safetensors")
    after = load_file(tmp_path / "base" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed  # trained from the reader's weights, same shapes
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(tmp_path / "base").get_vocab()
    assert vocab == AutoTokenizer.from_pretrained(tiny_reader.path).get_vocab()
    with pytest.raises(FileNotFoundError, match="pretrain-reader"):
        pretrain(tiny_kb, tmp_path / "b2", PretrainConfig.from_preset("quick", init=str(tmp_path)))
