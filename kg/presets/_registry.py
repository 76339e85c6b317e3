"""The preset registry: a name maps to a function that builds a :class:`KnowledgeSource`.

A preset converts data shipped inside an installed package (nothing is fetched at run
time) into triples, a schema, aliases and passages. New presets register themselves::

    @register_preset("countries")
    def countries() -> KnowledgeSource: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kg.source import KnowledgeSource

PresetFactory = Callable[..., KnowledgeSource]
"""A function that builds a preset; keyword arguments are the preset's settings."""

PRESETS: dict[str, PresetFactory] = {}
"""Every registered preset by name; fill it with :func:`register_preset`."""

_F = TypeVar("_F", bound=PresetFactory)


def register_preset(name: str) -> Callable[[_F], _F]:
    """Decorator that adds a preset factory to :data:`PRESETS` under ``name``.

    Args:
        name: the name users type (``grounded kb build --preset NAME``); non-empty, no spaces.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        ValueError: ``name`` is empty, holds whitespace, or is already registered.

    Example:
        >>> @register_preset("doc-example")
        ... def tiny() -> KnowledgeSource: ...
        >>> "doc-example" in PRESETS
        True
        >>> del PRESETS["doc-example"]
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"preset `name` must be a non-empty string without spaces; got {name!r}")
    if name in PRESETS:
        raise ValueError(
            f"preset `name` {name!r} is already registered (by {PRESETS[name].__module__}); "
            "choose another name"
        )

    def decorator(factory: _F) -> _F:
        PRESETS[name] = factory
        return factory

    return decorator


def list_presets() -> list[str]:
    """Names of every registered preset, sorted.

    Example:
        >>> "countries" in list_presets()
        True
    """
    return sorted(PRESETS)


def get_preset(name: str, **kwargs: Any) -> KnowledgeSource:
    """Build the preset registered as ``name``.

    Args:
        name: a name from :func:`list_presets`.
        **kwargs: settings of that preset (e.g. ``min_population=15000`` for ``cities``).

    Returns:
        The preset's knowledge source.

    Raises:
        ValueError: ``name`` is not a registered preset (the message lists the known names).
        ImportError: the package holding the preset's data is not installed (the message
            names the pip package).

    Example:
        >>> src = get_preset("countries")
        >>> src.name, len(src.triples) > 2000
        ('countries', True)
    """
    try:
        factory = PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown preset `name` {name!r}; known presets: {', '.join(list_presets())}"
        ) from None
    return factory(**kwargs)
