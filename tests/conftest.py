"""Session-wide fixtures: the real encoder and a tiny knowledge base load once per run.

Also the guard against the project's own deprecated calls: a deprecation or future warning
whose caller is code in ``grounded/``, ``kg/`` or ``index/`` fails the test that triggers
it (:func:`own_deprecation_culprit`), unless that code silences it on purpose (a
``warnings`` filter that ignores it, with the reason beside it); third-party ones (peft
calling deprecated transformers API, transformers calling its own) only show in the
summary. pyproject's ``filterwarnings`` fails warnings attributed to the project's modules.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OWN_PACKAGES = ("grounded", "kg", "index")
# Frames between a library's deprecated function and its caller that belong to neither:
# torch's nn.Module call machinery and standard-library wrappers.
_DISPATCH = ("torch", "functools", "contextlib")
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _package(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", "")).split(".", 1)[0]


def own_deprecation_culprit(frame: FrameType | None, stacklevel: int = 1) -> str | None:
    """``file:line`` of the project's code that caused a deprecation warning, or None.

    ``frame`` called ``warnings.warn`` with ``stacklevel``; the frame that level names is
    the caller the library blames. Frames of torch's module-call machinery in between are
    skipped: ``lm(past_key_values=...)`` reaches transformers' deprecation wrapper through
    ``nn.Module.__call__``, so the blamed frame is torch's and the real caller lies beyond.
    """
    for _ in range(stacklevel - 1):
        if frame is None:
            return None
        frame = frame.f_back
    while frame is not None and _package(frame) in _DISPATCH:
        frame = frame.f_back
    if frame is None or _package(frame) not in OWN_PACKAGES:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _silenced(message: object, category: type[Warning], frame: FrameType | None) -> bool:
    """True when the active filters ignore this warning, as attributed to ``frame``."""
    text = str(message)
    module = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    line = frame.f_lineno if frame is not None else 0
    for action, msg, cat, mod, lineno in warnings.filters:
        if (
            (msg is None or msg.match(text))
            and issubclass(category, cat)
            and (mod is None or mod.match(module))
            and lineno in (0, line)
        ):
            return action == "ignore"
    return False


_warn = warnings.warn


def _guarded_warn(message, category=None, stacklevel=1, source=None, **kwargs):
    cat = category or (type(message) if isinstance(message, Warning) else UserWarning)
    if issubclass(cat, _DEPRECATIONS):
        caller = sys._getframe(1)
        culprit = own_deprecation_culprit(caller, stacklevel)
        attributed = caller
        for _ in range(stacklevel - 1):
            attributed = attributed.f_back if attributed is not None else None
        if culprit is not None and not _silenced(message, cat, attributed):
            raise cat(f"{message} [called from the project's code at {culprit}]")
    return _warn(message, category, stacklevel + 1, source, **kwargs)


def pytest_configure(config):
    warnings.warn = _guarded_warn


def pytest_unconfigure(config):
    warnings.warn = _warn


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
    """A random 2-layer BERT (hidden 32) with the MiniLM tokenizer, saved as a base model
    (seeded: the same weights every session, so what is trained on it is reproducible)."""
    import torch
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
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checker(tiny_kb, tiny_bert_dir, tmp_path_factory):
    """A fact-checker on the tiny BERT, trained 30 steps through the Python API
    (:func:`train_factchecker`) on claims from the tiny KB, and saved.

    Nothing is patched by hand: the folder's metadata is what the API writes, so the verifier
    reads evidence as the checker was trained (``evidence_k`` 5, no alias notes).

    Returns ``(checker, log, folder)``.
    """
    from grounded.factcheck import CheckerOptimConfig, ClaimDataConfig, FactCheckerConfig
    from grounded.factcheck.training import train_factchecker

    # hard not-enough-info pairs off: this fixture pins the training mechanics (loss falls in
    # 30 steps on the tiny BERT); tests/test_hard_nei.py covers those pairs
    data_config = ClaimDataConfig(
        max_train_claims=60,
        max_test_claims=30,
        test_fraction=0.3,
        evidence_k=5,
        alias_notes=False,
        hard_nei=[],
    )
    optim = CheckerOptimConfig(
        max_steps=30,
        learning_rate=1e-3,
        per_device_train_batch_size=8,
        logging_steps=1,
        warmup_steps=0.0,
    )
    config = FactCheckerConfig(base_model=str(tiny_bert_dir), max_length=64, optim=optim)
    run = train_factchecker(
        tiny_kb, data_config=data_config, checker_config=config, show_progress=False
    )
    folder = tmp_path_factory.mktemp("checker") / "checker"
    run.checker.save_pretrained(folder)
    return run.checker, run.log, folder


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
