"""Name → implementation registries (injection modes, constraint losses, adapters).

Entries may be given as ``"module:attribute"`` strings so that listing the names (for
``--help`` and config validation) imports nothing heavy; the implementation is imported on
first :meth:`Registry.get`.

Example:
    >>> r = Registry("constraint")
    >>> r.register("margin", "grounded.losses.constraint:MarginConstraint", help="hinge")
    >>> r.names()
    ['margin']
"""

from __future__ import annotations

import importlib
from typing import Any


class Registry:
    """A named set of implementations of one interface.

    Args:
        kind: what the registry holds, used in error messages (``injection``, ``adapter``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[Any, str]] = {}

    def register(self, name: str, target: Any = None, *, help: str = "") -> Any:
        """Register ``target`` (an object or a ``"module:attribute"`` string) as ``name``.

        Without ``target``, returns a decorator.

        Raises:
            ValueError: ``name`` is already registered.
        """
        if target is None:

            def deco(obj: Any) -> Any:
                self.register(name, obj, help=help)
                return obj

            return deco
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = (target, help)
        return target

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def check(self, name: str, field: str | None = None) -> str:
        """Return ``name`` if registered.

        Raises:
            ValueError: naming ``field`` (default: the registry kind), the value and the choices.
        """
        if name not in self._entries:
            raise ValueError(f"`{field or self.kind}` must be one of {self.names()}, got {name!r}")
        return name

    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported on first use)."""
        self.check(name)
        target, help_text = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = (target, help_text)
        return target

    def describe(self) -> str:
        """``name (help); name (help)`` for command-line help."""
        return "; ".join(
            f"{n} ({self._entries[n][1]})" if self._entries[n][1] else n for n in self.names()
        )
