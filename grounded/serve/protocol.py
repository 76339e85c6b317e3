"""The OpenAI wire format: reading requests (every bad input an :class:`ApiError` with its 4xx)
and writing chat completions, stream chunks and errors. Pure functions: no model, no server.

Only what a grounded model can honour is accepted: one answer (``n`` = 1), greedy decoding
(``temperature`` is accepted and does not change the answer), and the question is the last
message, which must be the user's. Earlier messages (a system prompt, a conversation) are
read and checked but not shown to the model: it answers from the prompt it was trained on.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grounded.serve.engine import ChatResult
    from grounded.verify.audit import Document

ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant")


class ApiError(Exception):
    """An error a client receives as OpenAI's ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # OpenAI's field name
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type,
            param,
            code,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object.

    Raises:
        ApiError: 400 when the body is not UTF-8 JSON or not an object.
    """
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(
            400,
            f"the request body is not valid JSON ({e}); send a JSON object",
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f"the request body must be a JSON object, got {type(value).__name__}",
            code="invalid_json",
        )
    return value


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat request: the question (the last user message) and the settings."""

    model: str
    question: str
    max_tokens: int | None
    stream: bool
    include_usage: bool


def _content(value: Any, where: str) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise ApiError(
                    400,
                    f"`{where}[{i}]` must be a text part {{'type': 'text', 'text': ...}}; "
                    "this model reads text only",
                    param=f"{where}[{i}]",
                    code="invalid_value",
                )
            if not isinstance(part.get("text"), str):
                raise ApiError(400, f"`{where}[{i}].text` must be a string", param=where)
            texts.append(part["text"])
        return "".join(texts)
    raise ApiError(
        400,
        f"`{where}` must be a string or a list of text parts, got {type(value).__name__}",
        param=where,
        code="invalid_type",
    )


def _integer(body: dict, name: str, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(
            400, f"`{name}` must be an integer, got {value!r}", param=name, code="invalid_type"
        )
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(
            400, f"`{name}` must be {bound}, got {value}", param=name, code="invalid_value"
        )
    return value


def parse_chat(body: dict[str, Any], served: str, max_tokens_limit: int) -> ChatRequest:
    """Check a ``/v1/chat/completions`` body.

    Args:
        body: the JSON object.
        served: the model name this server answers to.
        max_tokens_limit: the largest ``max_tokens`` accepted.

    Raises:
        ApiError: 400 for a missing or malformed field (named in ``param``), ``n`` > 1, a
            wrong role; 404 for another model name.
    """
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, f"`model` must be a string, got {model!r}", param="model")
    if model and model != served:
        raise ApiError(
            404,
            f"the model {model!r} does not exist here; this server answers as {served!r} "
            "(GET /v1/models lists it)",
            param="model",
            code="model_not_found",
        )
    if "messages" not in body:
        raise ApiError(
            400,
            "missing required parameter `messages`: a list of {'role', 'content'} messages "
            "ending with the user's question",
            param="messages",
            code="missing_required_parameter",
        )
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "`messages` must be a non-empty list of {'role', 'content'} messages",
            param="messages",
            code="invalid_value",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"`messages[{i}]` must be an object", param=f"messages[{i}]")
        role = m.get("role")
        if role not in ROLES:
            raise ApiError(
                400,
                f"`messages[{i}].role` is {role!r}; use one of {list(ROLES)} (this server "
                "runs no tools)",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        _content(m.get("content"), f"messages[{i}].content")
    last = len(messages) - 1
    if messages[last]["role"] != "user":
        raise ApiError(
            400,
            f"the last message is the {messages[last]['role']!r}'s; it must be the user's question",
            param=f"messages[{last}].role",
            code="invalid_value",
        )
    question = _content(messages[last]["content"], f"messages[{last}].content").strip()
    if not question:
        raise ApiError(
            400,
            "the user's message is empty; ask a question",
            param=f"messages[{last}].content",
            code="invalid_value",
        )
    n = _integer(body, "n", 1, None)
    if n is not None and n != 1:
        raise ApiError(
            400,
            f"`n` is {n}; a grounded model decodes greedily, so it gives one answer: n=1",
            param="n",
            code="invalid_value",
        )
    max_tokens = _integer(body, "max_tokens", 1, max_tokens_limit)
    completion = _integer(body, "max_completion_tokens", 1, max_tokens_limit)
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise ApiError(
            400,
            f"`temperature` must be a number between 0 and 2, got {temperature!r} (answers "
            "are greedy whatever it is)",
            param="temperature",
            code="invalid_value",
        )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise ApiError(400, f"`stream` must be true or false, got {stream!r}", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "`stream_options` must be an object", param="stream_options")
    return ChatRequest(
        model=served,
        question=question,
        max_tokens=max_tokens if max_tokens is not None else completion,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
    )


def parse_audit(body: dict[str, Any]) -> list[Document]:
    """Documents of a ``/v1/audit`` body: ``{"text": ...}`` (with an optional ``question``
    it answers) or ``{"claims": [...]}`` (each judged alone, as ``grounded audit --text``).

    Raises:
        ApiError: 400 when neither is given, or a field has the wrong type.
    """
    from grounded.verify.audit import Document

    has_text, has_claims = "text" in body, "claims" in body
    if has_text == has_claims:
        raise ApiError(
            400,
            "give `text` (a string) or `claims` (a list of strings), one of them",
            param="text" if not has_text else "claims",
            code="missing_required_parameter" if not has_text else "invalid_value",
        )
    question = body.get("question")
    if question is not None and not isinstance(question, str):
        raise ApiError(400, f"`question` must be a string, got {question!r}", param="question")
    if has_text:
        if not isinstance(body["text"], str):
            raise ApiError(400, "`text` must be a string", param="text", code="invalid_type")
        return [Document(body["text"], question, "text")]
    claims = body["claims"]
    if not isinstance(claims, list) or not claims:
        raise ApiError(
            400, "`claims` must be a non-empty list of strings", param="claims", code="invalid_type"
        )
    for i, c in enumerate(claims):
        if not isinstance(c, str):
            raise ApiError(400, f"`claims[{i}]` must be a string, got {c!r}", param=f"claims[{i}]")
    return [Document(c, question, f"claims[{i}]") for i, c in enumerate(claims)]


# -- responses -----------------------------------------------------------------------------------
def grounding_of(result: ChatResult, guard: str) -> dict[str, Any]:
    """The ``grounding`` field: evidence (ids, scores), each claim's verdict, the guard.

    The answer is verified as one claim in the context of its question (the guard's
    reading); ``claims`` is None when no guard is set (nothing was verified) and empty when
    the model abstained.
    """
    a = result.answer
    claims = None
    if result.guarded is not None:
        claims = [result.verdict.to_dict()] if result.verdict is not None else []
    return {
        "question": a.question,
        "evidence": [e.to_dict() for e in a.evidence],
        "claims": claims,
        "guard": (
            {
                "mode": guard,
                "action": result.guarded.action,
                "changed": result.guarded.text != result.guarded.original,
                "original": result.guarded.original,
                "reason": result.guarded.reason,
            }
            if result.guarded is not None
            else None
        ),
    }


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_completion(
    result: ChatResult, model: str, guard: str, usage: dict[str, int], finish: str
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object with the ``grounding`` field."""
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer.text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage,
        "grounding": grounding_of(result, guard),
    }


def words(text: str) -> list[str]:
    """``text`` cut into pieces that join back to it, one word (with its space) each."""
    pieces, start = [], 0
    for i in range(1, len(text)):
        if text[i] == " " and text[i - 1] != " ":
            pieces.append(text[start:i])
            start = i
    if text:
        pieces.append(text[start:])
    return pieces


def stream_events(
    result: ChatResult,
    model: str,
    guard: str,
    usage: dict[str, int] | None,
    finish: str,
) -> list[bytes]:
    """Server-sent events of one answer in OpenAI's ``chat.completion.chunk`` format.

    The first chunk carries the role, then one chunk per word, then the last chunk with
    ``finish_reason`` and ``grounding`` (the guard's verdict), then ``usage`` when asked,
    then ``[DONE]``. The answer is complete (and verified, behind a guard) before the first
    chunk: a revised answer is never half-sent.
    """
    cid, created = completion_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        obj = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": w}) for w in words(result.answer.text)]
    out.append(chunk({}, finish, grounding=grounding_of(result, guard)))
    if usage is not None:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
               "model": model, "choices": [], "usage": usage}  # fmt: skip
        out.append(f"data: {json.dumps(obj)}\n\n".encode())
    out.append(b"data: [DONE]\n\n")
    return out
