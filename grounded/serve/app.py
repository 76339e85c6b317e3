"""The HTTP face of a grounded model: a Starlette app over an
:class:`~grounded.serve.engine.Engine`.

Endpoints: ``POST /v1/chat/completions`` (OpenAI-compatible, with a ``grounding`` field),
``POST /v1/audit`` (the verdicts of ``grounded audit``), ``GET /v1/models`` and
``GET /health``. Every error is OpenAI's ``{"error": {"message", "type", "param", "code"}}``
with its status; handlers only parse, await the engine's futures and write JSON, so the
event loop never waits on the model.

Bodies are capped (``max_body_bytes``: 413) and must arrive within ``read_timeout_s`` (408).
With an API key set (the environment variable ``api_key_env`` names), every endpoint but
``/health`` asks for ``Authorization: Bearer KEY``, compared in constant time. No request
names a file: the artifacts are fixed when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from grounded.serve.protocol import (
    ApiError,
    chat_completion,
    parse_audit,
    parse_chat,
    parse_json,
    stream_events,
)

if TYPE_CHECKING:
    from grounded.serve.config import ServeConfig
    from grounded.serve.engine import ChatResult, Engine

log = logging.getLogger("grounded.serve")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SHORT_TEXT = 4096
"""Characters tokenized on the event loop itself; longer texts go to a thread."""

DRAIN_LIMIT = 64 * 1024 * 1024
"""An oversized body is read (and dropped) up to this much, so the client reads its 413
instead of a reset connection; beyond it the connection is closed."""


def api_key_from_env(config: ServeConfig) -> str | None:
    """The API key in the environment variable the config names; None when unset or empty."""
    key = os.environ.get(config.api_key_env, "")
    return key or None


async def off_loop(count: Any, text: str) -> int:
    """``count(text)``: inline for a short text (a thread hop costs more than tokenizing
    it), in a thread for a long one (up to ``max_body_bytes``), so the loop never stalls."""
    if len(text) <= SHORT_TEXT:
        return count(text)
    return await asyncio.to_thread(count, text)


def create_app(engine: Engine, config: ServeConfig, api_key: str | None = None) -> Starlette:
    """The ASGI app; the engine's worker starts and stops with the app's lifespan.

    Args:
        engine: the loaded model, KB and checker.
        config: the server's settings.
        api_key: the key clients must send; None: none asked.
    """
    served = engine.info.get("model", {}).get("name", "grounded")
    key = api_key.encode() if api_key else None

    def authorize(request: Request) -> None:
        if key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compare_digest takes the same time wherever the strings differ.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key):
            raise ApiError(
                401,
                "missing or wrong API key: send `Authorization: Bearer KEY` with the key the "
                f"server reads from ${config.api_key_env}",
                type="authentication_error",
                code="invalid_api_key",
            )

    async def read_json(request: Request) -> dict[str, Any]:
        limit = config.max_body_bytes
        declared = request.headers.get("content-length")
        too_large = ApiError(
            413,
            f"the request body is larger than the server's limit of {limit} bytes "
            "(`max_body_bytes`)",
            code="request_too_large",
        )

        async def read() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > DRAIN_LIMIT:
                    break
                if size <= limit:
                    chunks.append(chunk)
            if size > limit:
                raise too_large
            return b"".join(chunks)

        if declared is not None and declared.isdigit() and int(declared) > DRAIN_LIMIT:
            raise too_large
        try:
            body = await asyncio.wait_for(read(), config.read_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(
                408,
                f"the request body did not arrive within {config.read_timeout_s:g} s "
                "(`read_timeout_s`)",
                type="timeout_error",
                code="request_timeout",
            ) from None
        return parse_json(body)

    def check_capacity() -> None:
        if engine.pending >= config.max_pending:
            raise ApiError(
                429,
                f"{engine.pending} requests are waiting for the model; try again shortly",
                type="rate_limit_error",
                code="server_busy",
            )

    async def chat(request: Request) -> Response:
        authorize(request)
        body = await read_json(request)
        req = parse_chat(body, served, config.max_tokens)
        max_new = req.max_tokens or engine.model.max_new_tokens
        n_prompt = await off_loop(engine.prompt_tokens, req.question)
        limit = engine.prompt_limit(max_new)
        if n_prompt > limit:
            positions = engine.context_positions
            context = f", and its context of {positions} positions less max_tokens {max_new}"
            raise ApiError(
                400,
                f"the prompt is {n_prompt} tokens long (the question in the model's prompt "
                f"format, before evidence); this model reads at most {limit} "
                f"(`max_prompt_tokens` {engine.max_prompt_tokens} of its training"
                f"{context if positions is not None else ''}); shorten the question",
                param="messages",
                code="context_length_exceeded",
            )
        check_capacity()
        result: ChatResult = await asyncio.wrap_future(engine.submit_chat(req.question, max_new))
        said = result.guarded.original if result.guarded is not None else result.answer.text
        n_out = await off_loop(engine.count_tokens, said)
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                 "total_tokens": n_prompt + n_out}  # fmt: skip
        finish = "length" if n_out >= max_new else "stop"
        if req.stream:
            events = stream_events(
                result, served, config.guard, usage if req.include_usage else None, finish
            )
            return StreamingResponse(
                iter(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        return JSONResponse(chat_completion(result, served, config.guard, usage, finish))

    async def audit(request: Request) -> Response:
        authorize(request)
        docs = parse_audit(await read_json(request))
        check_capacity()
        report = await asyncio.wrap_future(engine.submit_audit(docs))
        return JSONResponse(report.to_dict())

    def model_card() -> dict[str, Any]:
        return {"id": served, "object": "model", "created": int(engine.started),
                "owned_by": "grounded"}  # fmt: skip

    async def models(request: Request) -> Response:
        authorize(request)
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def one_model(request: Request) -> Response:
        authorize(request)
        name = request.path_params["model"]
        if name != served:
            raise ApiError(
                404, f"the model {name!r} does not exist here; this server answers as "
                f"{served!r}", param="model", code="model_not_found",
            )  # fmt: skip
        return JSONResponse(model_card())

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                **engine.info,
                "uptime_s": round(time.time() - engine.started, 3),
                "pending": engine.pending,
                "served": dict(engine.stats),
                "batch_sizes": {str(k): v for k, v in sorted(engine.batch_sizes.copy().items())},
            }
        )

    async def on_api_error(request: Request, exc: Exception) -> Response:
        err = exc if isinstance(exc, ApiError) else ApiError(500, str(exc), type="server_error")
        return JSONResponse(err.to_dict(), status_code=err.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "")
        message = (
            f"no endpoint {request.method} {request.url.path}; see POST /v1/chat/completions, "
            "POST /v1/audit, GET /v1/models, GET /health"
            if status in (404, 405)
            else str(detail)
        )
        err = ApiError(status, message, code="not_found" if status == 404 else None)
        return JSONResponse(err.to_dict(), status_code=status)

    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("request failed", exc_info=exc)
        err = ApiError(
            500, f"the server failed on this request ({type(exc).__name__}: {exc})",
            type="server_error", code="internal_error",
        )  # fmt: skip
        return JSONResponse(err.to_dict(), status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            # uvicorn ends the lifespan after in-flight requests are answered.
            await asyncio.to_thread(engine.stop)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/audit", audit, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", one_model, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_error,
        },
        lifespan=lifespan,
    )


def serve(engine: Engine, config: ServeConfig, api_key: str | None = None) -> None:
    """Serve until SIGINT or SIGTERM; both finish the requests in flight, then return.

    ``api_key``: default the one in ``config.api_key_env``.
    """
    import uvicorn

    if api_key is None:
        api_key = api_key_from_env(config)
    if not config.is_loopback and api_key is None:
        log.warning(
            "serving on %s without an API key: anyone who reaches this address can use the "
            "model; set $%s",
            config.host,
            config.api_key_env,
        )
    app = create_app(engine, config, api_key)
    server = uvicorn.Server(uvicorn_config(app, config))
    if threading.current_thread() is not threading.main_thread():
        server.run()
        return
    # uvicorn finishes the requests in flight on SIGTERM/SIGINT, restores the handlers it
    # found and raises the signal again; handlers that only note it make the shutdown a
    # normal return (exit status 0) instead of a death by SIGTERM.
    caught: list[int] = []
    before = {s: signal.signal(s, lambda sig, frame: caught.append(sig)) for s in _SIGNALS}
    try:
        server.run()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    if caught:
        log.info(
            "stopped by %s after answering every request in flight", signal.Signals(caught[0]).name
        )


def uvicorn_config(app: Starlette, config: ServeConfig) -> Any:
    """uvicorn's settings for ``app``: graceful shutdown waits for every request in flight; a
    request head slower than ``read_timeout_s`` gets 408."""
    import uvicorn

    from grounded.serve.connection import head_timeout_protocol

    return uvicorn.Config(
        app,
        http=head_timeout_protocol(config.read_timeout_s),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.log_level == "debug",
        timeout_graceful_shutdown=None,
        timeout_keep_alive=5,
        server_header=False,
    )
