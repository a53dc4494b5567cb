"""LiteLLM talks real HTTP to FakeProvider: replies, streaming, tools, and each fault as LiteLLM's exception."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import openai
from litellm.exceptions import MidStreamFallbackError
from tierroute.testing import FakeProvider, Fault, ModelScript

MESSAGES = [{"role": "user", "content": "Summarize the plot of Hamlet in one line."}]
REPLY = "A prince avenges his father and nearly everyone dies."
NO_RETRY: dict[str, Any] = {"num_retries": 0, "max_retries": 0, "api_key": "sk-fake-key-0000"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# fault -> the LiteLLM exception it surfaces as (observed with litellm 1.110.2, provider "openai/")
FAULT_CASES: list[tuple[str, Fault, type[Exception]]] = [
    ("rate_limit", Fault("rate_limit"), litellm.RateLimitError),
    ("server_error_500", Fault("server_error", status=500), litellm.InternalServerError),
    ("server_error_502", Fault("server_error", status=502), litellm.BadGatewayError),
    ("server_error_503", Fault("server_error", status=503), litellm.ServiceUnavailableError),
    ("timeout", Fault("timeout", hang_s=5), litellm.Timeout),
    ("content_policy", Fault("content_policy"), litellm.ContentPolicyViolationError),
    ("context_window", Fault("context_window"), litellm.ContextWindowExceededError),
    ("auth", Fault("auth"), litellm.AuthenticationError),
    ("bad_request", Fault("bad_request"), litellm.BadRequestError),
]


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    scripts = {
        "budget-model": ModelScript(reply=REPLY, served_model="budget-model-2025-01-01"),
        "tooly": ModelScript(reply="done", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        "reset": ModelScript(faults=[Fault("connection_reset")]),
        "cut": ModelScript(reply=REPLY, faults=[Fault("truncated_stream", after_chunks=2)]),
        **{name: ModelScript(reply=REPLY, faults=[fault]) for name, fault, _ in FAULT_CASES},
    }
    with FakeProvider(models=scripts) as provider:
        yield provider


def cause_chain(exc: BaseException) -> list[type[BaseException]]:
    chain: list[type[BaseException]] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 20:
        chain.append(type(current))
        current = current.__cause__ or current.__context__
    return chain


async def test_acompletion_reply_usage_and_served_model(fp: FakeProvider) -> None:
    response = await litellm.acompletion(
        model="openai/budget-model", api_base=fp.base_url, messages=MESSAGES, **NO_RETRY
    )
    assert response.choices[0].message.content == REPLY
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "budget-model-2025-01-01"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (11, 12)
    [record] = fp.requests_for("budget-model")
    assert record.outcome == "ok" and record.headers["authorization"] == "Bearer sk-fake-key-0000"


def test_completion_stream_with_usage(fp: FakeProvider) -> None:
    stream = litellm.completion(
        model="openai/budget-model",
        api_base=fp.base_url,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **NO_RETRY,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    usage = next(getattr(c, "usage", None) for c in reversed(chunks) if getattr(c, "usage", None))
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 12)
    assert fp.requests_for("budget-model")[0].body["stream"] is True


async def test_tool_calls_through_litellm(fp: FakeProvider) -> None:
    response = await litellm.acompletion(
        model="openai/tooly", api_base=fp.base_url, messages=MESSAGES, tools=[WEATHER_TOOL], **NO_RETRY
    )
    assert response.choices[0].finish_reason == "tool_calls"
    [call] = response.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}

    stream = litellm.completion(
        model="openai/tooly", api_base=fp.base_url, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True, **NO_RETRY
    )
    rebuilt = litellm.stream_chunk_builder(list(stream))
    [streamed] = rebuilt.choices[0].message.tool_calls
    assert streamed.function.name == "get_weather" and json.loads(streamed.function.arguments) == {"city": "Paris"}
    assert rebuilt.choices[0].finish_reason == "tool_calls"


async def test_json_response_format(fp: FakeProvider) -> None:
    fp.set_script("js", ModelScript(json_reply={"verdict": "tragedy"}))
    response = await litellm.acompletion(
        model="openai/js", api_base=fp.base_url, messages=MESSAGES, response_format={"type": "json_object"}, **NO_RETRY
    )
    assert json.loads(response.choices[0].message.content) == {"verdict": "tragedy"}


async def test_embeddings_through_litellm(fp: FakeProvider) -> None:
    response = await litellm.aembedding(model="openai/budget-model", api_base=fp.base_url, input=["a", "b"], **NO_RETRY)
    vectors = [d["embedding"] for d in response.data]
    assert len(vectors) == 2 and all(len(v) == 16 for v in vectors) and vectors[0] != vectors[1]


@pytest.mark.parametrize(("name", "fault", "expected"), FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
async def test_fault_maps_to_litellm_exception_acompletion(
    fp: FakeProvider, name: str, fault: Fault, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as info:
        await litellm.acompletion(
            model=f"openai/{name}", api_base=fp.base_url, messages=MESSAGES, timeout=1, **NO_RETRY
        )
    if expected is litellm.BadRequestError:  # the generic 400 must not look like a more specific one
        assert not isinstance(info.value, (litellm.ContentPolicyViolationError, litellm.ContextWindowExceededError))
    assert [r.outcome for r in fp.requests_for(name)] == [fault.kind]


@pytest.mark.parametrize(("name", "fault", "expected"), FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_fault_maps_to_litellm_exception_stream(
    fp: FakeProvider, name: str, fault: Fault, expected: type[Exception]
) -> None:
    with pytest.raises(expected):
        stream = litellm.completion(
            model=f"openai/{name}", api_base=fp.base_url, messages=MESSAGES, stream=True, timeout=1, **NO_RETRY
        )
        list(stream)


def test_rate_limit_exposes_retry_after(fp: FakeProvider) -> None:
    fp.set_script("rl", ModelScript(faults=[Fault("rate_limit", retry_after=4)]))
    with pytest.raises(litellm.RateLimitError) as info:
        litellm.completion(model="openai/rl", api_base=fp.base_url, messages=MESSAGES, **NO_RETRY)
    assert info.value.response is not None and info.value.response.headers["retry-after"] == "4"


async def test_unknown_model_is_not_found(fp: FakeProvider) -> None:
    with pytest.raises(litellm.NotFoundError):
        await litellm.acompletion(model="openai/missing", api_base=fp.base_url, messages=MESSAGES, **NO_RETRY)


async def test_connection_reset_surfaces_as_connection_error(fp: FakeProvider) -> None:
    # LiteLLM's OpenAI handler wraps openai.APIConnectionError into OpenAIError(status_code=500), so a reset
    # arrives as InternalServerError("Connection error."); the socket error stays in the cause chain.
    with pytest.raises(litellm.InternalServerError, match="Connection error") as info:
        await litellm.acompletion(model="openai/reset", api_base=fp.base_url, messages=MESSAGES, **NO_RETRY)
    assert openai.APIConnectionError in cause_chain(info.value)
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        list(litellm.completion(model="openai/reset", api_base=fp.base_url, messages=MESSAGES, stream=True, **NO_RETRY))


def test_truncated_stream_surfaces_mid_stream(fp: FakeProvider) -> None:
    stream = litellm.completion(model="openai/cut", api_base=fp.base_url, messages=MESSAGES, stream=True, **NO_RETRY)
    received: list[str] = []
    with pytest.raises(MidStreamFallbackError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert isinstance(info.value.original_exception, litellm.APIConnectionError)
    assert "".join(received) == "A prince"  # two content chunks arrived before the cut
    assert info.value.generated_content == "A prince"


async def test_truncated_stream_async_and_non_stream(fp: FakeProvider) -> None:
    stream = await litellm.acompletion(
        model="openai/cut", api_base=fp.base_url, messages=MESSAGES, stream=True, **NO_RETRY
    )
    with pytest.raises(MidStreamFallbackError) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.original_exception, litellm.APIConnectionError)
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        await litellm.acompletion(model="openai/cut", api_base=fp.base_url, messages=MESSAGES, **NO_RETRY)


async def test_anthropic_provider_against_messages_endpoint(fp: FakeProvider) -> None:
    fp.set_script("claude-fake", ModelScript(reply=REPLY, served_model="claude-fake-2025"))
    fp.set_script("claude-busy", ModelScript(faults=[Fault("rate_limit")]))
    kwargs: dict[str, Any] = {"api_base": fp.anthropic_base_url, "max_tokens": 64, **NO_RETRY}
    response = await litellm.acompletion(model="anthropic/claude-fake", messages=MESSAGES, **kwargs)
    assert response.choices[0].message.content == REPLY
    assert response.model == "claude-fake-2025"
    stream = await litellm.acompletion(model="anthropic/claude-fake", messages=MESSAGES, stream=True, **kwargs)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == REPLY
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(model="anthropic/claude-busy", messages=MESSAGES, **kwargs)
    assert {r.path for r in fp.requests_for("claude-fake")} == {"/v1/messages"}
