"""FakeProvider against real sockets, driven with httpx (no mocks)."""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tierroute.errors import ConfigError
from tierroute.testing import FakeProvider, Fault, ModelScript, RecordedRequest

USER = [{"role": "user", "content": "What is the capital of France?"}]
REPLY = "Paris is the capital of France and its largest city."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    scripts = {
        "budget-model": ModelScript(reply=REPLY),
        "echo-model": ModelScript(),
        "served": ModelScript(reply="hi", served_model="served-2025-01-01"),
    }
    with FakeProvider(models=scripts) as provider:
        yield provider


@pytest.fixture
def client(fp: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fp.base_url, timeout=10, headers={"Authorization": "Bearer sk-test-abcdef123456"}) as c:
        yield c


def chat(client: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": USER, **extra}
    return client.post("/chat/completions", json=body)


def sse_events(client: httpx.Client, body: dict[str, Any], path: str = "/chat/completions") -> list[str]:
    """Return the raw ``data:`` payloads of a streamed response."""
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


# ------------------------------------------------------------------------------------------- basics


def test_import_pulls_no_heavy_packages() -> None:
    code = (
        "import sys, tierroute.testing\n"
        "heavy = {'litellm', 'openai', 'torch', 'semantic_router', 'langchain_core', 'llama_index'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_base_url_and_lifecycle() -> None:
    provider = FakeProvider(models={"m": ModelScript(reply="x")})
    with pytest.raises(RuntimeError):
        _ = provider.base_url
    provider.start()
    try:
        assert provider.base_url == f"http://127.0.0.1:{provider.port}/v1"
        assert provider.anthropic_base_url == f"http://127.0.0.1:{provider.port}"
        assert httpx.get(f"{provider.url}/health").json() == {"status": "ok"}
        with pytest.raises(RuntimeError):
            provider.start()
    finally:
        provider.stop()
    provider.stop()  # idempotent
    assert not provider.running


def test_non_stream_completion(client: httpx.Client) -> None:
    response = chat(client, "budget-model")
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == "budget-model"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": REPLY, "refusal": None, "annotations": []}
    assert choice["finish_reason"] == "stop"
    # words * 4 / 3 rounded up: prompt has 6 words -> 8, reply has 10 words -> 14
    assert data["usage"] == {"prompt_tokens": 8, "completion_tokens": 14, "total_tokens": 22}


def test_served_model_reaches_caller(client: httpx.Client) -> None:
    assert chat(client, "served").json()["model"] == "served-2025-01-01"


def test_echo_replies_dict_and_callable(fp: FakeProvider, client: httpx.Client) -> None:
    assert chat(client, "echo-model").json()["choices"][0]["message"]["content"] == USER[0]["content"]
    fp.set_script("table", ModelScript(reply="fallback", replies={USER[0]["content"]: "from table"}))
    assert chat(client, "table").json()["choices"][0]["message"]["content"] == "from table"
    other = client.post("/chat/completions", json={"model": "table", "messages": [{"role": "user", "content": "?"}]})
    assert other.json()["choices"][0]["message"]["content"] == "fallback"
    fp.set_script("fn", ModelScript(reply=lambda body: f"{len(body['messages'])} message(s), t={body['temperature']}"))
    assert chat(client, "fn", temperature=0.5).json()["choices"][0]["message"]["content"] == "1 message(s), t=0.5"


def test_failing_reply_callable_is_a_500(fp: FakeProvider, client: httpx.Client) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("oops")

    fp.set_script("broken", ModelScript(reply=broken))
    response = chat(client, "broken")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "fake_script_error"
    assert chat(client, "budget-model").status_code == 200


def test_usage_override_and_max_tokens(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("fixed", ModelScript(reply=REPLY, usage=(100, 7)))
    assert chat(client, "fixed").json()["usage"] == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    cut = chat(client, "budget-model", max_tokens=4).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] <= 4
    assert REPLY.startswith(cut["choices"][0]["message"]["content"])


def test_unknown_model_is_openai_404(client: httpx.Client) -> None:
    response = chat(client, "nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "The model `nope` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


def test_invalid_json_and_unknown_url(client: httpx.Client) -> None:
    bad = client.post("/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert client.post("/nowhere", json={}).status_code == 404


def test_keep_alive_reuses_one_connection(fp: FakeProvider) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fp.port, timeout=5)
    payload = json.dumps({"model": "budget-model", "messages": USER})
    sockets = []
    for _ in range(3):
        conn.request("POST", "/v1/chat/completions", body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"] == REPLY
        sockets.append(conn.sock)
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    conn.close()


def test_one_hundred_concurrent_clients(fp: FakeProvider) -> None:
    # Every handler waits at a 100-party barrier: this only completes if all 100 requests are in flight at once.
    barrier = threading.Barrier(100)

    def meet(body: dict[str, Any]) -> str:
        barrier.wait(timeout=20)
        return "ok"

    fp.set_script("slow", ModelScript(reply=meet))

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    with httpx.Client(timeout=30, limits=limits) as c:  # one pool, 100 simultaneous connections

        def one(i: int) -> str:
            body = {"model": "slow", "messages": [{"role": "user", "content": f"request {i}"}]}
            r = c.post(f"{fp.base_url}/chat/completions", json=body)
            r.raise_for_status()
            return str(r.json()["choices"][0]["message"]["content"])

        with ThreadPoolExecutor(max_workers=100) as pool:
            results = list(pool.map(one, range(100)))
    assert results == ["ok"] * 100
    assert fp.call_count("slow") == 100
    assert sorted(r.call_number or 0 for r in fp.requests_for("slow")) == list(range(1, 101))


# ---------------------------------------------------------------------------------------- streaming


def test_stream_sse_with_usage(client: httpx.Client) -> None:
    body = {"model": "budget-model", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(client, body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert len(content) >= 3
    assert "".join(content) == REPLY
    finish = chunks[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 8, "completion_tokens": 14, "total_tokens": 22}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_usage_option(client: httpx.Client) -> None:
    events = sse_events(client, {"model": "budget-model", "messages": USER, "stream": True})
    chunks = [json.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


# ---------------------------------------------------------------------------------- tools and JSON


def test_tool_calls_non_stream(fp: FakeProvider, client: httpx.Client) -> None:
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    fp.set_script("tooly", ModelScript(reply="no tools", tool_calls=calls))
    data = chat(client, "tooly", tools=[WEATHER_TOOL]).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    # no tools offered, tool_choice none, or a tool result last -> a text answer
    assert chat(client, "tooly").json()["choices"][0]["message"]["content"] == "no tools"
    declined = chat(client, "tooly", tools=[WEATHER_TOOL], tool_choice="none").json()
    assert declined["choices"][0]["finish_reason"] == "stop"
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [{**call}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    after = client.post("/chat/completions", json={"model": "tooly", "messages": history, "tools": [WEATHER_TOOL]})
    assert after.json()["choices"][0]["message"]["content"] == "no tools"


def test_forced_tool_choice_synthesizes_arguments(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    data = chat(client, "budget-model", tools=[WEATHER_TOOL], tool_choice=choice).json()
    [call] = data["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert set(json.loads(call["function"]["arguments"])) == {"city"}


def test_tool_calls_stream(fp: FakeProvider, client: httpx.Client) -> None:
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {"tz": "CET"}}]
    fp.set_script("tooly", ModelScript(tool_calls=calls))
    events = sse_events(client, {"model": "tooly", "messages": USER, "tools": [WEATHER_TOOL], "stream": True})
    chunks = [json.loads(e) for e in events[:-1]]
    assembled: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            slot = assembled.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.get("id", "")
            slot["name"] += delta.get("function", {}).get("name", "")
            slot["arguments"] += delta.get("function", {}).get("arguments", "")
    assert [a["name"] for a in assembled.values()] == ["get_weather", "get_time"]
    assert [json.loads(a["arguments"]) for a in assembled.values()] == [{"city": "Paris"}, {"tz": "CET"}]
    assert all(a["id"].startswith("call_") for a in assembled.values())
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_response_format_json(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("js", ModelScript(reply="plain", json_reply={"answer": "Paris"}))
    out = chat(client, "js", response_format={"type": "json_object"}).json()["choices"][0]["message"]["content"]
    assert json.loads(out) == {"answer": "Paris"}
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}, "ok": {"type": "boolean"}},
        "required": ["city", "population", "ok"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}
    out = chat(client, "budget-model", response_format=fmt).json()["choices"][0]["message"]["content"]
    assert json.loads(out) == {"city": REPLY, "population": 0, "ok": True}
    plain = chat(client, "budget-model", response_format={"type": "json_object"}).json()
    assert json.loads(plain["choices"][0]["message"]["content"]) == {"response": REPLY}


# -------------------------------------------------------------------------------------------- faults


def test_rate_limit_fault(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("rl", ModelScript(faults=[Fault("rate_limit", retry_after=7)]))
    response = chat(client, "rl")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert error["message"].startswith("Rate limit reached for rl")
    assert (error["type"], error["param"], error["code"]) == ("requests", None, "rate_limit_exceeded")
    fp.set_script("rl1", ModelScript(faults=[Fault("rate_limit")]))
    assert chat(client, "rl1").headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (500, "The server had an error while processing your request. Sorry about that!"),
        (502, "Bad gateway."),
        (503, "The engine is currently overloaded, please try again later."),
    ],
)
def test_server_error_fault(fp: FakeProvider, client: httpx.Client, status: int, message: str) -> None:
    fp.set_script("se", ModelScript(faults=[Fault("server_error", status=status)]))
    response = chat(client, "se")
    assert response.status_code == status
    assert response.json() == {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def test_timeout_fault_hangs_then_closes(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("hang", ModelScript(faults=[Fault("timeout", hang_s=0.5)]))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json={"model": "hang", "messages": USER}, timeout=0.1)
    with pytest.raises(httpx.RemoteProtocolError):  # after hang_s the server closes without a response
        client.post("/chat/completions", json={"model": "hang", "messages": USER}, timeout=5)
    assert [r.outcome for r in fp.requests_for("hang")] == ["timeout", "timeout"]


def test_stop_interrupts_a_hang() -> None:
    provider = FakeProvider(models={"hang": ModelScript(faults=[Fault("timeout", hang_s=60)])}).start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        body = {"model": "hang", "messages": USER}
        future = pool.submit(httpx.post, f"{provider.base_url}/chat/completions", json=body, timeout=30)
        while not provider.requests:
            time.sleep(0.01)
        provider.stop()
        with pytest.raises(httpx.HTTPError):
            future.result(timeout=10)


def test_connection_reset_fault(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("rst", ModelScript(faults=[Fault("connection_reset")]))
    with pytest.raises(httpx.ReadError) as info:
        chat(client, "rst")
    assert isinstance(info.value.__context__, ConnectionResetError) or "reset" in str(info.value).lower()
    assert chat(client, "budget-model").status_code == 200  # the client recovers on a new connection


def test_truncated_stream_fault(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("cut", ModelScript(reply=REPLY, faults=[Fault("truncated_stream", after_chunks=3)]))
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
        client.stream("POST", "/chat/completions", json={"model": "cut", "messages": USER, "stream": True}) as response,
    ):
        assert response.status_code == 200
        received.extend(line for line in response.iter_lines() if line.startswith("data: "))
    chunks = [json.loads(line[len("data: ") :]) for line in received]
    assert len(chunks) == 4  # role chunk + 3 content chunks
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert "data: [DONE]" not in received
    with pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"):
        chat(client, "cut")  # non-stream: the body is cut in half


def test_content_policy_fault(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("cp", ModelScript(faults=[Fault("content_policy")]))
    response = chat(client, "cp")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("Your request was rejected as a result of our safety system.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "content_policy_violation")


def test_context_window_fault_and_script_window(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("cw", ModelScript(faults=[Fault("context_window")]))
    response = chat(client, "cw")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
            "9000 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    fp.set_script("small", ModelScript(reply="fits", context_window=10))
    assert chat(client, "small").status_code == 200  # 8 estimated prompt tokens
    long = [{"role": "user", "content": "word " * 30}]
    too_long = client.post("/chat/completions", json={"model": "small", "messages": long})
    assert too_long.status_code == 400
    assert "maximum context length is 10 tokens. However, your messages resulted in 40 tokens" in too_long.text
    assert [r.outcome for r in fp.requests_for("small")] == ["ok", "context_window"]


def test_auth_fault_masks_key(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("auth", ModelScript(faults=[Fault("auth")]))
    response = chat(client, "auth")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["message"].startswith("Incorrect API key provided: sk-...3456.")
    assert "sk-test-abcdef123456" not in response.text
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


def test_bad_request_fault(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("bad", ModelScript(faults=[Fault("bad_request", message="Invalid 'temperature'.")]))
    response = chat(client, "bad")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Invalid 'temperature'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_faults_do_not_touch_embeddings(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("down", ModelScript(faults=[Fault("server_error")]))
    assert client.post("/embeddings", json={"model": "down", "input": "x"}).status_code == 200
    assert chat(client, "down").status_code == 500


# ------------------------------------------------------------------------------------------ schedules


def failing_calls(fp: FakeProvider, client: httpx.Client, model: str, n: int) -> list[int]:
    return [i for i in range(1, n + 1) if chat(client, model).status_code != 200]


def test_schedule_every(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("s", ModelScript(faults=[Fault("server_error", every=3)]))
    assert failing_calls(fp, client, "s", 9) == [3, 6, 9]


def test_schedule_first(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("s", ModelScript(faults=[Fault("rate_limit", first=2)]))
    assert failing_calls(fp, client, "s", 5) == [1, 2]


def test_schedule_calls(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("s", ModelScript(faults=[Fault("auth", calls={1, 4})]))
    assert failing_calls(fp, client, "s", 5) == [1, 4]


def test_schedule_rate_is_deterministic_per_seed(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("s", ModelScript(faults=[Fault("server_error", rate=0.3, seed=7)]))
    first = failing_calls(fp, client, "s", 40)
    fp.reset()
    assert failing_calls(fp, client, "s", 40) == first
    assert 4 <= len(first) <= 20
    fp.set_script("s", ModelScript(faults=[Fault("server_error", rate=0.3, seed=8)]))
    fp.reset()
    assert failing_calls(fp, client, "s", 40) != first
    assert Fault("rate_limit", rate=0.3, seed=7).fires(first[0], 0.0)


def test_schedule_window(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("s", ModelScript(faults=[Fault("server_error", window=(0.0, 0.3))]))
    fp.reset()  # restarts the window clock
    assert chat(client, "s").status_code == 500
    time.sleep(0.4)
    assert chat(client, "s").status_code == 200
    assert not Fault("server_error", window=(1.0, 2.0)).fires(1, 0.5)
    assert Fault("server_error", window=(1.0, 2.0)).fires(1, 1.5)


def test_first_firing_fault_wins_and_schedules_combine(fp: FakeProvider, client: httpx.Client) -> None:
    faults = [Fault("rate_limit", calls={2}), Fault("server_error", every=2), Fault("auth", first=3, every=3)]
    fp.set_script("s", ModelScript(faults=faults))
    statuses = [chat(client, "s").status_code for _ in range(6)]
    assert statuses == [200, 429, 401, 500, 200, 500]


# ------------------------------------------------------------------------------------------ recording


def test_recording_and_reset(fp: FakeProvider, client: httpx.Client) -> None:
    fp.set_script("flaky", ModelScript(faults=[Fault("rate_limit", every=2)]))
    chat(client, "flaky")
    chat(client, "flaky", temperature=0)
    chat(client, "budget-model")
    records = fp.requests_for("flaky")
    assert [r.outcome for r in records] == ["ok", "rate_limit"]
    assert [r.call_number for r in records] == [1, 2]
    first = records[0]
    assert isinstance(first, RecordedRequest)
    assert first.path == "/v1/chat/completions" and first.method == "POST" and first.model == "flaky"
    assert first.body == {"model": "flaky", "messages": USER}
    assert first.headers["authorization"] == "Bearer sk-test-abcdef123456"
    assert abs(first.timestamp - time.time()) < 60
    assert records[1].body["temperature"] == 0
    assert len(fp.requests) == 3
    fp.reset()
    assert fp.requests == [] and fp.call_count("flaky") == 0
    assert chat(client, "flaky").status_code == 200  # counting restarts from 1


def test_set_and_remove_script_at_runtime(fp: FakeProvider, client: httpx.Client) -> None:
    assert chat(client, "late").status_code == 404
    fp.set_script("late", ModelScript(reply="now here"))
    assert chat(client, "late").json()["choices"][0]["message"]["content"] == "now here"
    fp.set_script("late", ModelScript(reply="changed"))
    assert chat(client, "late").json()["choices"][0]["message"]["content"] == "changed"
    fp.remove_script("late")
    assert chat(client, "late").status_code == 404
    assert [r.outcome for r in fp.requests_for("late")] == ["not_found", "ok", "ok", "not_found"]


# ------------------------------------------------------------------------------- embeddings, models


def test_embeddings_are_deterministic(client: httpx.Client) -> None:
    one = client.post("/embeddings", json={"model": "budget-model", "input": ["alpha", "beta"]}).json()
    two = client.post("/embeddings", json={"model": "budget-model", "input": "alpha"}).json()
    assert one["object"] == "list" and one["model"] == "budget-model"
    alpha, beta = (d["embedding"] for d in one["data"])
    assert [d["index"] for d in one["data"]] == [0, 1]
    assert len(alpha) == 16 and alpha == two["data"][0]["embedding"] and alpha != beta
    assert math.isclose(sum(v * v for v in alpha), 1.0, rel_tol=1e-9)
    assert one["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_embedding_dimensions_and_base64(fp: FakeProvider, client: httpx.Client) -> None:
    body: dict[str, Any] = {"model": "budget-model", "input": "alpha", "dimensions": 5}
    floats = client.post("/embeddings", json=body).json()["data"][0]["embedding"]
    assert len(floats) == 5
    encoded = client.post("/embeddings", json={**body, "encoding_format": "base64"}).json()["data"][0]["embedding"]
    decoded = struct.unpack("<5f", base64.b64decode(encoded))
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(decoded, floats, strict=True))
    fp.set_script("wide", ModelScript(embedding_dim=32))
    assert len(client.post("/embeddings", json={"model": "wide", "input": "x"}).json()["data"][0]["embedding"]) == 32
    with FakeProvider(models={"e": ModelScript()}, embedding_dim=8) as other:
        data = httpx.post(f"{other.base_url}/embeddings", json={"model": "e", "input": "x"}).json()["data"]
        assert len(data[0]["embedding"]) == 8
    assert client.post("/embeddings", json={"model": "missing", "input": "x"}).status_code == 404


def test_models_endpoint(client: httpx.Client) -> None:
    listing = client.get("/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["budget-model", "echo-model", "served"]
    assert client.get("/models/echo-model").json()["id"] == "echo-model"
    assert client.get("/models/nope").json()["error"]["code"] == "model_not_found"


# ----------------------------------------------------------------------------------------- Anthropic


def test_anthropic_messages(fp: FakeProvider) -> None:
    fp.set_script("claude", ModelScript(reply=REPLY, served_model="claude-test-1"))
    with httpx.Client(base_url=fp.anthropic_base_url, timeout=10) as c:
        body = {"model": "claude", "max_tokens": 100, "system": "Be brief.", "messages": USER}
        data = c.post("/v1/messages", json=body).json()
        assert data["type"] == "message" and data["model"] == "claude-test-1"
        assert data["content"] == [{"type": "text", "text": REPLY}]
        assert data["stop_reason"] == "end_turn"
        assert data["usage"] == {"input_tokens": 11, "output_tokens": 14}  # "Be brief." adds 2 words
        events = sse_events(c, {**body, "stream": True}, path="/v1/messages")
        parsed = [json.loads(e) for e in events]
        assert parsed[0]["type"] == "message_start" and parsed[-1]["type"] == "message_stop"
        text = "".join(e["delta"]["text"] for e in parsed if e["type"] == "content_block_delta")
        assert text == REPLY
        fp.set_script("claude-rl", ModelScript(faults=[Fault("rate_limit", retry_after=3)]))
        limited = c.post("/v1/messages", json={**body, "model": "claude-rl"})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        assert limited.json()["type"] == "error" and limited.json()["error"]["type"] == "rate_limit_error"


# --------------------------------------------------------------------------------- scripts and CLI


def write_matrix(path: Path) -> Path:
    rows = [
        {
            "id": "q1",
            "prompt": "What is 2+2?",
            "messages": None,
            "task_type": "math",
            "scores": {"big": 1.0, "small": 0.0},
            "tokens": {"small": {"prompt": 12, "completion": 3}},
            "responses": {"small": "5"},
        },
        {
            "id": "q2",
            "prompt": "ignored",
            "messages": [{"role": "user", "content": "Name a color."}],
            "task_type": "chat",
            "scores": {"big": 1.0, "small": 1.0},
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_quality_matrix_script(tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path / "matrix.jsonl")
    scripts = {
        "small": ModelScript.from_quality_matrix(matrix, "small"),
        "big": ModelScript.from_quality_matrix(str(matrix), "big", served_model="big-v2"),
    }
    with FakeProvider(models=scripts) as fp, httpx.Client(base_url=fp.base_url) as c:

        def ask(model: str, prompt: str) -> dict[str, Any]:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
            return dict(c.post("/chat/completions", json=body).json())

        small = ask("small", "What is 2+2?")
        assert small["choices"][0]["message"]["content"] == "5"
        assert small["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        assert ask("small", "Name a color.")["choices"][0]["message"]["content"] == "[small] answer to q2 (score 1.0)"
        big = ask("big", "What is 2+2?")
        assert big["choices"][0]["message"]["content"] == "[big] answer to q1 (score 1.0)"
        assert big["model"] == "big-v2"
        assert "no quality-matrix row" in ask("big", "unrelated")["choices"][0]["message"]["content"]
    with pytest.raises(ConfigError, match="'nobody' is in no quality-matrix row"):
        ModelScript.from_quality_matrix(matrix, "nobody")


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.faults\[0\]: unknown key 'evry'"):
        ModelScript.from_dict({"faults": [{"kind": "rate_limit", "evry": 2}]}, path="models.m")
    with pytest.raises(ConfigError, match=r"models\.m: unknown key 'replyy'"):
        ModelScript.from_dict({"replyy": "x"}, path="models.m")
    with pytest.raises(ConfigError, match="unknown fault kind 'explode'"):
        Fault.from_dict({"kind": "explode"})
    with pytest.raises(ConfigError, match="missing required key 'kind'"):
        Fault.from_dict({"every": 2})
    fault = {"kind": "timeout", "window": [1, 2], "calls": [1, 3], "hang_s": 2}
    script = ModelScript.from_dict({"reply": "hi", "usage": [3, 4], "faults": [fault]})
    assert script.usage == (3, 4)
    assert script.faults == [Fault("timeout", window=(1.0, 2.0), calls=frozenset({1, 3}), hang_s=2)]


def test_from_script_file_yaml_and_json(tmp_path: Path) -> None:
    write_matrix(tmp_path / "m.jsonl")
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text(
        "embedding_dim: 4\n"
        "models:\n"
        "  budget:\n"
        "    reply: cheap answer\n"
        "    faults:\n"
        "      - {kind: rate_limit, every: 2, retry_after: 3}\n"
        "  small:\n"
        "    quality_matrix: m.jsonl\n"
        "    latency_s: 0\n",
        encoding="utf-8",
    )
    provider = FakeProvider.from_script_file(yaml_file)
    assert provider.embedding_dim == 4
    assert provider.model_names() == ["budget", "small"]
    budget = provider.script("budget")
    assert budget is not None and budget.faults == [Fault("rate_limit", every=2, retry_after=3)]
    small = provider.script("small")
    assert small is not None and small.replies["What is 2+2?"] == "5"
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps({"models": {"a": {"reply": "x"}}, "extra": 1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'extra'"):
        FakeProvider.from_script_file(json_file)


def test_cli_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(
        "models:\n"
        "  budget-model:\n"
        "    reply: from the cli\n"
        "    faults: [{kind: server_error, calls: [2], status: 503}]\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tierroute.testing", "--port", "0", "--script", str(script)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        body = {"model": "budget-model", "messages": USER}
        first = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10)
        assert first.json()["choices"][0]["message"]["content"] == "from the cli"
        assert httpx.post(f"{base_url}/chat/completions", json=body, timeout=10).status_code == 503
        assert [m["id"] for m in httpx.get(f"{base_url}/models").json()["data"]] == ["budget-model"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_reports_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps({"models": {"m": {"faults": [{"kind": "nope"}]}}}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tierroute.testing", "--script", str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "models.m.faults[0].kind: unknown fault kind 'nope'" in result.stderr
