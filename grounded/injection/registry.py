"""The registry of injection modes; ``--injection text,embedding`` looks names up here.

Importing this module is cheap (no torch): implementations load on first use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from grounded.registry import Registry

INJECTIONS = Registry("injection")
INJECTIONS.register(
    "text",
    "grounded.injection.text:TextInjection",
    help="retrieved evidence written into the prompt",
)
INJECTIONS.register(
    "embedding",
    "grounded.injection.embedding:EmbeddingInjection",
    help="the evidence's index vectors projected into soft tokens before the input embeddings",
)


def parse_injection(spec: str | Sequence[str], field: str = "injection") -> tuple[str, ...]:
    """Canonical modes of an injection spec: ``"text,embedding"`` → ``("text", "embedding")``.

    Names may be joined by ``+`` or ``,``; ``none`` (or an empty spec) means no injection.

    Raises:
        ValueError: a name is not registered (the message lists the choices).

    Example:
        >>> parse_injection("embedding+text"), parse_injection("none")
        (('text', 'embedding'), ())
    """
    raw = [spec] if isinstance(spec, str) else list(spec)
    parts = [p for item in raw for p in re.split(r"[,+\s]+", item.strip()) if p]
    names = sorted({p for p in parts if p != "none"}, key=lambda n: (n != "text", n))
    for name in names:
        if name not in INJECTIONS:
            raise ValueError(
                f"`{field}` must be `none` or names from {INJECTIONS.names()} joined by `+` or "
                f"`,`; got {spec!r}"
            )
    return tuple(names)


def injection_name(modes: Sequence[str]) -> str:
    """The display name of canonical modes: ``text+embedding`` or ``none``."""
    return "+".join(modes) or "none"
