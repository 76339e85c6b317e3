"""Lazy package exports: importing a package stays cheap, names load on first use.

Why by hand: PEP 562 module ``__getattr__`` is the standard mechanism; this only writes it
once for every package of grounded instead of once per ``__init__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, loading each name from ``where[name]``.

    A loaded name is cached in ``namespace`` (the package's ``globals()``), so it loads once.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"Guard": "grounded.verify.guard"},
        ...     globals())  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
