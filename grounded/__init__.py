"""grounded: stop language models from making things up about a domain.

Importing this package is cheap; heavy libraries (torch, transformers, faiss) load inside
the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.retrieval import Evidence, HybridRetriever, RetrievalConfig

_LAZY = {
    "Evidence": "grounded.retrieval",
    "HybridRetriever": "grounded.retrieval",
    "KnowledgeBase": "grounded.kb",
    "RetrievalConfig": "grounded.retrieval",
}

__all__ = ["Evidence", "HybridRetriever", "KnowledgeBase", "RetrievalConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'grounded' has no attribute {name!r}")
