"""The HTTP face of a grounded model: OpenAI-compatible chat completions with grounding, and
the audit, over a model folder, its KB and a checker (``grounded serve``).

- :mod:`~grounded.serve.config`: :class:`ServeConfig`, the settings;
- :mod:`~grounded.serve.engine`: :class:`Engine`, the loaded artifacts and the batching worker;
- :mod:`~grounded.serve.protocol`: the OpenAI wire format and its errors;
- :mod:`~grounded.serve.app`: the Starlette app and :func:`serve` (uvicorn).

Importing this package is cheap: names load from their modules on first use.

Example:
    >>> engine = Engine.load("runs/demo/kb", "runs/demo/models/grounded")  # doctest: +SKIP
    >>> serve(engine, ServeConfig(port=8000))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grounded._lazy import lazy_exports

if TYPE_CHECKING:
    from grounded.serve.app import create_app, serve
    from grounded.serve.config import ServeConfig
    from grounded.serve.engine import ChatResult, Engine
    from grounded.serve.protocol import ApiError

_WHERE = {
    "ApiError": "grounded.serve.protocol",
    "ChatResult": "grounded.serve.engine",
    "Engine": "grounded.serve.engine",
    "ServeConfig": "grounded.serve.config",
    "create_app": "grounded.serve.app",
    "serve": "grounded.serve.app",
}

__all__ = ["ApiError", "ChatResult", "Engine", "ServeConfig", "create_app", "serve"]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
