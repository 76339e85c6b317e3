"""``grounded serve``: the real server on a free loopback port, called with the ``openai`` client.

The model is the quick demo's grounded model on the tiny KB (a session fixture), served in a
thread behind the guard (revise) and an API key; the shutdown test runs the CLI in a
subprocess and sends it SIGTERM with requests in flight.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from grounded.serve.app import create_app, uvicorn_config  # noqa: E402
from grounded.serve.config import ServeConfig  # noqa: E402
from grounded.serve.engine import Engine  # noqa: E402
from grounded.serve.protocol import words  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

KEY = "test-key-0123"
QUESTIONS = [
    "What is the capital of Mongolia?",
    "What is the capital of Australia?",
    "What is the capital of Freedonia?",
    "Which language is spoken in Mongolia?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def artifacts(quick_demo, tiny_kb, tiny_checker):
    out, _, _ = quick_demo
    return tiny_kb.path, out / "models" / "grounded", tiny_checker[2]


@pytest.fixture(scope="module")
def server(artifacts):
    """(base url, engine) of a server in a thread: guard revise, API key, 1 s read timeout."""
    kb, model, checker = artifacts
    config = ServeConfig(
        port=free_port(), guard="revise", batch_window_ms=50, max_body_bytes=65536,
        read_timeout_s=1.0, model_name="tiny-grounded", log_level="warning",
    )  # fmt: skip
    engine = Engine.load(kb, model, checker, config)
    srv = uvicorn.Server(uvicorn_config(create_app(engine, config, api_key=KEY), config))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}", engine
    srv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key=KEY, max_retries=0, timeout=60)


def post(url: str, body: bytes | dict, key: str | None = KEY, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return httpx.post(url, content=body, headers=headers, timeout=60, **kwargs)


def expected(engine: Engine, question: str, max_new_tokens: int):
    """What the model and guard say without the server (the worker is idle meanwhile)."""
    answer = engine.model.answer([question], max_new_tokens=max_new_tokens)[0]
    guarded = engine.guard.apply([question], [answer.text])[0]
    return answer, guarded


# -- the openai client ---------------------------------------------------------------------------
def test_plain_completion_matches_the_model_and_guard(server, client):
    _, engine = server
    q = QUESTIONS[0]
    r = client.chat.completions.create(
        model="tiny-grounded", messages=[{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": q}], max_tokens=8,
    )  # fmt: skip
    answer, guarded = expected(engine, q, 8)
    assert r.object == "chat.completion" and r.model == "tiny-grounded"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == guarded.text
    g = r.model_extra["grounding"]
    assert g["question"] == q
    assert [e["id"] for e in g["evidence"]] == [e.id for e in answer.evidence]
    assert [e["score"] for e in g["evidence"]] == [round(e.score, 6) for e in answer.evidence]
    assert g["guard"]["original"] == answer.text
    assert g["guard"]["action"] == guarded.action
    assert g["guard"]["changed"] == (guarded.text != answer.text)
    # the verdict of the answer's one claim (none when the model abstained)
    assert len(g["claims"]) == (0 if guarded.label is None else 1)
    if g["claims"]:
        assert g["claims"][0]["label"] == guarded.label
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_sends_the_same_answer_then_the_verdict_last(server, client):
    q = QUESTIONS[1]
    plain = client.chat.completions.create(
        model="tiny-grounded", messages=[{"role": "user", "content": q}], max_tokens=8
    )
    chunks = list(
        client.chat.completions.create(
            model="tiny-grounded",
            messages=[{"role": "user", "content": q}],
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and "grounding" in finals[0].model_extra
    assert finals[0].model_extra["grounding"]["guard"] == plain.model_extra["grounding"]["guard"]
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens  # usage comes last


def test_words_join_back():
    for text in ("", "Ulaanbaatar.", "I don't  know.", " a b "):
        assert "".join(words(text)) == text
    assert words("The capital is Ulaanbaatar.") == ["The", " capital", " is", " Ulaanbaatar."]


def test_audit_gives_the_verdicts_of_grounded_audit(server, artifacts):
    from grounded.factcheck.checker import FactChecker
    from grounded.kb import KnowledgeBase
    from grounded.verify.audit import Auditor, Document

    url, _ = server
    kb, _, checker = artifacts
    text = "The capital of Mongolia is Beijing. Mongolia borders China."
    r = post(f"{url}/v1/audit", {"text": text})
    assert r.status_code == 200, r.text
    got = r.json()
    auditor = Auditor(KnowledgeBase.load(kb), FactChecker.from_pretrained(checker))
    want = auditor.audit([Document(text, None, "text")]).to_dict()
    assert set(got) == set(want)
    assert got["rows"] == want["rows"] and got["totals"] == want["totals"]
    assert got["totals"]["labels"]["refuted"] >= 1
    claims = ["The capital of Australia is Canberra.", "The capital of Australia is Sydney."]
    r = post(f"{url}/v1/audit", {"claims": claims})
    rows = r.json()["rows"]
    assert [row["source"] for row in rows] == ["claims[0]", "claims[1]"]
    assert [row["label"] for row in rows] == ["supported", "refuted"]


def test_audit_many_equals_one_audit_per_request(tiny_kb):
    from grounded.verify.audit import Auditor, Document

    auditor = Auditor(tiny_kb)
    first = [Document("The capital of Mongolia is Beijing. Mongolia borders China.")]
    second = [Document("Canberra.", "What is the capital of Australia?"), Document("Bern.")]
    together = auditor.audit_many([first, second])
    for docs, report in zip((first, second), together, strict=True):
        alone = auditor.audit(docs)
        assert report.to_dict()["rows"] == alone.to_dict()["rows"]
        assert report.totals() == alone.totals()
    assert [r.documents for r in together] == [1, 2]


def test_text_parts_and_system_messages_are_read():
    from grounded.serve.protocol import ApiError, parse_chat

    body = {"model": "m", "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital "},
                                     {"type": "text", "text": "of Chad? "}]},
    ], "stream": True, "max_completion_tokens": 7}  # fmt: skip
    req = parse_chat(body, "m", 100)
    assert (req.question, req.max_tokens, req.stream) == ("What is the capital of Chad?", 7, True)
    with pytest.raises(ApiError) as info:
        parse_chat({**body, "max_tokens": 101}, "m", 100)
    assert info.value.status == 400 and info.value.param == "max_tokens"


def test_models_and_health(server, client):
    url, engine = server
    assert [m.id for m in client.models.list().data] == ["tiny-grounded"]
    assert client.models.retrieve("tiny-grounded").id == "tiny-grounded"
    health = httpx.get(f"{url}/health").json()  # no key needed
    assert health["status"] == "ok"
    assert health["kb"]["checksum"] == engine.auditor.kb.checksum
    assert health["model"]["adapter"]["name"] and health["uptime_s"] > 0
    assert health["guard"] == "revise"


def test_concurrent_requests_are_batched_and_answer_as_alone(server):
    url, engine = server
    before = dict(engine.stats)
    body = [{"model": "tiny-grounded", "max_tokens": 6,
             "messages": [{"role": "user", "content": q}]} for q in QUESTIONS * 2]  # fmt: skip
    with ThreadPoolExecutor(len(body)) as pool:
        replies = list(pool.map(lambda b: post(f"{url}/v1/chat/completions", b), body))
    assert all(r.status_code == 200 for r in replies)
    batches = engine.stats["batches"] - before.get("batches", 0)
    assert batches < len(body)  # the 50 ms window gathered requests into shared batches
    for b, r in zip(body, replies, strict=True):
        q = b["messages"][0]["content"]
        assert r.json()["choices"][0]["message"]["content"] == expected(engine, q, 6)[1].text


def test_one_batch_serves_mixed_max_tokens_as_alone(server):
    """The packed worker puts requests of different `max_tokens` in one batch (each row stops
    at its own), answers as one question at a time would, and /health counts the batch."""
    url, engine = server
    caps = [6, 1, 3, 6, 2, 6]
    questions = (QUESTIONS * 2)[: len(caps)]
    sizes = dict(engine.batch_sizes)
    futures = [engine.submit_chat(q, c) for q, c in zip(questions, caps, strict=True)]
    said = [f.result(timeout=120).answer.original for f in futures]
    assert said == [
        engine.model.answer([q], max_new_tokens=c)[0].text
        for q, c in zip(questions, caps, strict=True)
    ]
    formed = {k: v - sizes.get(k, 0) for k, v in engine.batch_sizes.items() if v > sizes.get(k, 0)}
    assert formed == {len(caps): 1}  # queued together: one batch for all six
    health = httpx.get(f"{url}/health").json()
    assert health["batch_sizes"][str(len(caps))] >= 1
    assert sum(k * v for k, v in engine.batch_sizes.items()) == engine.stats["batched_jobs"]


def test_padded_generation_answers_as_packed(server):
    """`generation: padded` (one left-padded batch per `max_tokens`, as evaluate) gives the
    packed worker's answers; its batch is split by `max_tokens` only inside the worker."""
    _, engine = server
    padded = Engine(engine.model, engine.auditor, None, ServeConfig(generation="padded"))
    caps = [6, 2, 6, 3]
    padded.start()
    try:
        got = [padded.submit_chat(q, c) for q, c in zip(QUESTIONS, caps, strict=True)]
        said = [f.result(timeout=120).answer.text for f in got]
    finally:
        padded.stop(60)
    futures = [engine.submit_chat(q, c) for q, c in zip(QUESTIONS, caps, strict=True)]
    assert said == [f.result(timeout=120).answer.original for f in futures]
    assert padded.batch_sizes == {len(caps): 1}


# -- bad input -----------------------------------------------------------------------------------
def _chat(**fields) -> bytes:
    body = {"model": "tiny-grounded", "messages": [{"role": "user", "content": "Capital of Chad?"}]}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


BAD = [
    ("malformed json", b'{"messages": [', 400, "invalid_json"),
    ("not an object", b"[1, 2]", 400, "invalid_json"),
    ("not utf-8", b'{"messages": "\xff"}', 400, "invalid_json"),
    ("missing messages", _chat(messages=...), 400, "missing_required_parameter"),
    ("empty messages", _chat(messages=[]), 400, "invalid_value"),
    ("wrong role", _chat(messages=[{"role": "robot", "content": "hi"}]), 400, "invalid_value"),
    ("tool role", _chat(messages=[{"role": "tool", "content": "hi"}]), 400, "invalid_value"),
    (
        "last not user",
        _chat(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]),
        400,
        "invalid_value",
    ),
    (
        "image part",
        _chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        400,
        "invalid_value",
    ),
    ("n > 1", _chat(n=3), 400, "invalid_value"),
    ("max_tokens 0", _chat(max_tokens=0), 400, "invalid_value"),
    ("max_tokens str", _chat(max_tokens="8"), 400, "invalid_type"),
    ("temperature 9", _chat(temperature=9), 400, "invalid_value"),
    ("unknown model", _chat(model="gpt-4"), 404, "model_not_found"),
    (
        "prompt over context",
        _chat(messages=[{"role": "user", "content": "capital " * 700}]),
        400,
        "context_length_exceeded",
    ),
    (
        "10 MB body",
        _chat(messages=[{"role": "user", "content": "x" * 10_000_000}]),
        413,
        "request_too_large",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_its_4xx_and_the_server_keeps_serving(server, name, body, status, code):
    url, _ = server
    r = post(f"{url}/v1/chat/completions", body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    if code == "context_length_exceeded":
        assert "tokens long" in error["message"] and "at most" in error["message"]
    ok = post(f"{url}/v1/chat/completions", _chat(max_tokens=4))
    assert ok.status_code == 200, ok.text


def test_context_error_states_both_lengths(server):
    url, engine = server
    question = "capital " * 700
    r = post(f"{url}/v1/chat/completions", _chat(messages=[{"role": "user", "content": question}]))
    message = r.json()["error"]["message"]
    assert f"is {engine.prompt_tokens(question.strip())} tokens long" in message
    assert f"at most {engine.prompt_limit(engine.model.max_new_tokens)}" in message


def test_bad_audit_bodies(server):
    url, _ = server
    for body in (
        {},
        {"text": 3},
        {"claims": []},
        {"claims": ["a", 2]},
        {"text": "a", "claims": []},
    ):
        r = post(f"{url}/v1/audit", body)
        assert r.status_code == 400 and r.json()["error"]["param"], body


def read_reply(s: socket.socket) -> str:
    """What the server sends until it closes the connection or ends its JSON error."""
    data = b""
    while not data.endswith(b"}}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_slow_client_times_out(server):
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: 200\r\n\r\n".encode()
            + b'{"messages": '
        )
        t0 = time.monotonic()
        reply = read_reply(s)
        assert time.monotonic() - t0 < 5  # read_timeout_s is 1
    assert reply.startswith("HTTP/1.1 408")
    assert "request_timeout" in reply
    # a head that trickles in (uvicorn alone would wait for it forever)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        reply = read_reply(s)
    assert reply.startswith("HTTP/1.1 408") and "request_timeout" in reply
    assert post(f"{url}/v1/chat/completions", _chat(max_tokens=4)).status_code == 200


def test_unknown_endpoint_and_method_are_openai_errors(server):
    url, _ = server
    r = httpx.get(f"{url}/v1/nothing", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 405 and "error" in r.json()


# -- security ------------------------------------------------------------------------------------
def test_api_key_is_required(server):
    url, _ = server
    for key in (None, "wrong", KEY + "x", KEY[:-1]):
        r = post(f"{url}/v1/chat/completions", _chat(), key=key)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(f"{url}/v1/models", headers={"Authorization": "Basic " + KEY})
    assert r.status_code == 401
    bad = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model="tiny-grounded", messages=[{"role": "user", "content": "hi"}]
        )


def test_defaults_bind_loopback_and_read_the_key_from_the_environment(monkeypatch):
    from grounded.serve.app import api_key_from_env

    config = ServeConfig()
    assert config.host == "127.0.0.1" and config.is_loopback
    assert not ServeConfig(host="0.0.0.0").is_loopback
    monkeypatch.delenv("GROUNDED_API_KEY", raising=False)
    assert api_key_from_env(config) is None
    monkeypatch.setenv("GROUNDED_API_KEY", "s3cret")
    assert api_key_from_env(config) == "s3cret"
    with pytest.raises(ValueError, match="`guard`"):
        ServeConfig(guard="maybe")
    with pytest.raises(ValueError, match="`generation` must be one of"):
        ServeConfig(generation="beam")
    with pytest.raises(ValueError, match="`prefill_max_padding` must be in"):
        ServeConfig(prefill_max_padding=-0.5)


def test_a_damaged_model_folder_stops_the_start(artifacts, tmp_path, capsys):
    from grounded.cli.main import main

    kb, model, _ = artifacts
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    with open(broken / "adapter_model.safetensors", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\0" * 8)
    assert main(["serve", str(kb), "--model", str(broken), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "grounded serve: error:" in err and "adapter_model.safetensors" in err


# -- shutdown ------------------------------------------------------------------------------------
def test_sigterm_finishes_the_requests_in_flight(artifacts):
    kb, model, _ = artifacts
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROUNDED_API_KEY": ""}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    # A 1.5 s batch window holds the requests in the queue while SIGTERM arrives.
    proc = subprocess.Popen(
        [sys.executable, "-m", "grounded", "serve", str(kb), "--model", str(model), "--port",
         str(port), "--batch-window-ms", "1500", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.2)
        bodies = [{"model": "grounded", "max_tokens": 4,
                   "messages": [{"role": "user", "content": q}]} for q in QUESTIONS]  # fmt: skip
        with ThreadPoolExecutor(len(bodies)) as pool:
            futures = [pool.submit(post, f"{url}/v1/chat/completions", b, None) for b in bodies]
            time.sleep(0.5)  # the requests are in the server's queue, inside the window
            assert not any(f.done() for f in futures)
            proc.send_signal(signal.SIGTERM)
            replies = [f.result() for f in futures]
        assert [r.status_code for r in replies] == [200] * len(bodies)
        assert all(r.json()["choices"][0]["message"]["role"] == "assistant" for r in replies)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
