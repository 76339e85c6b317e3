"""Session-wide fixtures: the real encoder and a tiny knowledge base load once per run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
