"""Dense retrieval over facts and passages: an offline sentence encoder and a FAISS index.

``import index`` is cheap: the names below are imported from their modules on first use
(numpy and FAISS with ``FactIndex``; torch and sentence-transformers only when an
:class:`Encoder` is created). ``index`` never imports training code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.config import IndexConfig, IndexKind
    from index.encoder import DEFAULT_ENCODER_NAME, Encoder, TextEncoder, default_encoder_path
    from index.eval import recall_against_exact
    from index.fact_index import FactIndex, Hit
    from index.storage import FORMAT_VERSION, read_manifest

_WHERE = {
    "DEFAULT_ENCODER_NAME": "index.encoder",
    "FORMAT_VERSION": "index.storage",
    "Encoder": "index.encoder",
    "FactIndex": "index.fact_index",
    "Hit": "index.fact_index",
    "IndexConfig": "index.config",
    "IndexKind": "index.config",
    "TextEncoder": "index.encoder",
    "default_encoder_path": "index.encoder",
    "read_manifest": "index.storage",
    "recall_against_exact": "index.eval",
}

__all__ = [
    "DEFAULT_ENCODER_NAME",
    "FORMAT_VERSION",
    "Encoder",
    "FactIndex",
    "Hit",
    "IndexConfig",
    "IndexKind",
    "TextEncoder",
    "default_encoder_path",
    "read_manifest",
    "recall_against_exact",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
