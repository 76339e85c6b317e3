"""The registry of constraint losses; ``--constraint margin`` looks names up here (no torch)."""

from __future__ import annotations

from typing import Any

from grounded.registry import Registry

CONSTRAINTS = Registry("constraint")
CONSTRAINTS.register(
    "margin",
    "grounded.losses.constraint:MarginConstraint",
    help="hinge on log p(gold) - log p(negative) below `margin`",
)
CONSTRAINTS.register(
    "unlikelihood",
    "grounded.losses.constraint:UnlikelihoodConstraint",
    help="-log(1 - p(negative))",
)


def get_constraint(name: str, **kwargs: Any) -> Any:
    """An instance of the constraint loss registered as ``name``.

    Raises:
        ValueError: ``name`` is not registered (the message lists the choices).
    """
    return CONSTRAINTS.get(name)(**kwargs)
