"""Session-wide fixtures: the real encoder and a tiny knowledge base load once per run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: tiny models run fastest so, and CI shares 2 cores.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def encoder():
    """The real packaged default encoder (all-MiniLM-L6-v2), loaded once per test session."""
    from index import Encoder

    return Encoder.default()


@pytest.fixture(scope="session")
def tiny_kb(tmp_path_factory, encoder):
    """The hand-written 20-entity knowledge base of ``tiny.py``, built once per session."""
    from tiny import tiny_source

    from grounded.kb import KnowledgeBase

    out = tmp_path_factory.mktemp("tiny") / "kb"
    return KnowledgeBase.build(tiny_source(), out, encoder=encoder, show_progress=False)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tiny_kb):
    """A tiny random Llama (hidden 32, 2 layers) + BPE tokenizer for the tiny KB, on disk."""
    from tiny_lm import save_tiny_base

    return save_tiny_base(tmp_path_factory.mktemp("base") / "llama", tiny_kb, "llama")


@pytest.fixture(scope="session")
def tiny_examples(tiny_kb):
    """Four training examples of the tiny KB (prompts with evidence, answers, negatives)."""
    from grounded.data import build_examples, build_groups

    groups = build_groups(tiny_kb, None, out_of_kb=4)
    rows = build_examples(tiny_kb, groups.seen, p_no_gold=0.3, link_mentions=True)
    return [dict(r) for r in rows][:4]


@pytest.fixture(scope="session")
def tiny_gpt2_base(tmp_path_factory, tiny_kb):
    """The same as ``tiny_base`` with a GPT-2 architecture (the generic path)."""
    from tiny_lm import save_tiny_base

    return save_tiny_base(tmp_path_factory.mktemp("base") / "gpt2", tiny_kb, "gpt2")


@pytest.fixture(scope="session")
def tiny_claims(tiny_kb):
    """Fact-checking claims with retrieved evidence from the tiny KB (grounded.factcheck)."""
    from grounded.factcheck import ClaimDataConfig, build_claim_data

    config = ClaimDataConfig(max_train_claims=60, max_test_claims=30, test_fraction=0.3)
    return build_claim_data(tiny_kb, config, show_progress=False)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A random 2-layer BERT (hidden 32) with the MiniLM tokenizer, saved as a base model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from index import default_encoder_path

    folder = tmp_path_factory.mktemp("bert") / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path(), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checker(tiny_claims, tiny_bert_dir, tmp_path_factory):
    """A fact-checker on the tiny BERT, trained 30 steps on the tiny claims and saved.

    Returns ``(checker, log, folder)``.
    """
    from grounded.factcheck import FactCheckerConfig, train_checker

    config = FactCheckerConfig(
        base_model=str(tiny_bert_dir),
        max_length=64,
        max_steps=30,
        learning_rate=1e-3,
        train_batch_size=8,
        logging_steps=1,
        warmup_ratio=0.0,
    )
    checker, log = train_checker(tiny_claims.dataset["train"], config, show_progress=False)
    folder = tmp_path_factory.mktemp("checker") / "checker"
    checker.metadata["data"] = {"evidence_k": 5}
    checker.save_pretrained(folder)
    return checker, log, folder


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory, tiny_kb, tiny_base, tiny_checker):
    """``grounded demo --quick`` on the tiny KB, run once: (folder, argv, what it printed)."""
    import contextlib
    import io

    from grounded.cli.main import main

    out = tmp_path_factory.mktemp("quick-demo") / "demo"
    argv = ["demo", "--out", str(out), "--quick", "--kb", str(tiny_kb.path), "--base",
            str(tiny_base), "--checker", str(tiny_checker[2]), "--variants", "sft", "grounded",
            "--per-group", "2", "--quiet"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"the quick demo failed with exit code {code}: {printed.getvalue()}")
    return out, argv, printed.getvalue()
