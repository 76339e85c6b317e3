"""grounded: stop language models from making things up about a domain.

Importing this package is cheap; heavy libraries (torch, transformers, faiss) load inside
the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
