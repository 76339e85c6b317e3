"""Knowledge injection: evidence as prompt text and as soft tokens before the embeddings.

Importing this package is cheap: torch loads with the first module that needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from grounded.injection.registry import INJECTIONS, injection_name, parse_injection

if TYPE_CHECKING:
    from grounded.injection.base import EvidenceTensors, Injection
    from grounded.injection.config import InjectionConfig
    from grounded.injection.functional import (
        Injected,
        add_entity_vectors,
        position_ids_from_mask,
        prepend_soft_tokens,
    )
    from grounded.injection.layer import KnowledgeInjection, embedding_rms, get_injection

_LAZY = {
    "EvidenceTensors": "grounded.injection.base",
    "Injected": "grounded.injection.functional",
    "Injection": "grounded.injection.base",
    "InjectionConfig": "grounded.injection.config",
    "KnowledgeInjection": "grounded.injection.layer",
    "add_entity_vectors": "grounded.injection.functional",
    "embedding_rms": "grounded.injection.layer",
    "get_injection": "grounded.injection.layer",
    "position_ids_from_mask": "grounded.injection.functional",
    "prepend_soft_tokens": "grounded.injection.functional",
}

__all__ = [
    "INJECTIONS",
    "EvidenceTensors",
    "Injected",
    "Injection",
    "InjectionConfig",
    "KnowledgeInjection",
    "add_entity_vectors",
    "embedding_rms",
    "get_injection",
    "injection_name",
    "parse_injection",
    "position_ids_from_mask",
    "prepend_soft_tokens",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'grounded.injection' has no attribute {name!r}")
