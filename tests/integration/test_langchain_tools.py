"""Tools and structured output through the router: they reach whichever tier serves, after any fallback."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from tierroute import InvalidRequestError
from tierroute.testing import FakeProvider, Fault

from langchain_tierroute import ChatTierRoute

from .test_langchain_support import attempts, fake_provider, fault, lc_config, script


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="City name")


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


JOKE = {"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse."}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


def test_tools_reach_the_tier_that_serves_after_a_fallback(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("server_error"))
    fp.set_script("lc-mid-model", script("mid", tool_calls=[{"name": "GetWeather", "arguments": {"city": "Paris"}}]))
    llm = ChatTierRoute(config=lc_config(fp.base_url)).bind_tools([GetWeather, add], tool_choice="any")
    msg = llm.invoke("What is the weather in Paris?")
    assert msg.tool_calls == [
        {"name": "GetWeather", "args": {"city": "Paris"}, "id": msg.tool_calls[0]["id"], "type": "tool_call"}
    ]
    assert attempts(msg.response_metadata)[-1] == ("mid", None, False)
    for model in ("lc-budget-model", "lc-mid-model"):
        body = fp.requests_for(model)[-1].body
        assert tool_names(body) == ["GetWeather", "add"] and body["tool_choice"] == "required"


def test_tool_choice_by_name_and_tool_history_round_trip(fp: FakeProvider) -> None:
    llm = ChatTierRoute(config=lc_config(fp.base_url))
    first = llm.bind_tools([GetWeather, add], tool_choice="add").invoke("what is 2 + 3?")
    (call,) = first.tool_calls
    assert call["name"] == "add" and set(call["args"]) == {"a", "b"}
    body = fp.requests_for("lc-budget-model")[-1].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    history = [HumanMessage("what is 2 + 3?"), first, ToolMessage("5", tool_call_id=call["id"], name="add")]
    final = llm.bind_tools([GetWeather, add]).invoke(history)
    assert final.content == "budget answer" and not final.tool_calls
    sent = fp.requests_for("lc-budget-model")[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call["id"] and sent[2]["tool_call_id"] == call["id"]
    with pytest.raises(InvalidRequestError, match="names no bound tool"):
        llm.bind_tools([add], tool_choice="multiply")


def test_v1_output_history_is_sent_as_openai_messages(fp: FakeProvider) -> None:
    # v1 output keeps tool calls as content blocks; they must not reach the provider as content, and the
    # context-window pre-check (LiteLLM's token counter) must be able to read the history
    fp.set_script("lc-budget-model", script("budget", tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 3}}]))
    llm = ChatTierRoute(config=lc_config(fp.base_url, windows={"budget": 4000}), output_version="v1")
    model = llm.bind_tools([add])
    first = model.invoke("what is 2 + 3?")
    assert any(block["type"] == "tool_call" for block in first.content_blocks)
    call = first.tool_calls[0]
    final = model.invoke([HumanMessage("what is 2 + 3?"), first, ToolMessage("5", tool_call_id=call["id"])])
    assert final.response_metadata["tierroute"]["tier"] == "budget"
    sent = fp.requests_for("lc-budget-model")[-1].body["messages"]
    assert sent[1]["role"] == "assistant" and isinstance(sent[1]["content"], str)
    assert sent[1]["tool_calls"][0]["function"]["name"] == "add"


def test_streamed_tool_calls_assemble(fp: FakeProvider) -> None:
    fp.set_script(
        "lc-budget-model", script("budget", tool_calls=[{"name": "GetWeather", "arguments": {"city": "Oslo"}}])
    )
    llm = ChatTierRoute(config=lc_config(fp.base_url)).bind_tools([GetWeather])
    full: AIMessageChunk | None = None
    for chunk in llm.stream("weather in Oslo?"):
        assert isinstance(chunk, AIMessageChunk)
        full = chunk if full is None else full + chunk
    assert full is not None
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("GetWeather", {"city": "Oslo"})]
    assert full.response_metadata["finish_reason"] == "tool_calls"
    assert full.usage_metadata is not None and full.usage_metadata["output_tokens"] > 0


def test_non_ascii_arguments_and_malformed_ones(fp: FakeProvider) -> None:
    name = "你好啊集团 こんにちは株式会社 Ünïcødé"
    fp.set_script("lc-budget-model", script("budget", tool_calls=[{"name": "GetWeather", "arguments": {"city": name}}]))
    llm = ChatTierRoute(config=lc_config(fp.base_url)).bind_tools([GetWeather], tool_choice="GetWeather")
    assert llm.invoke("weather?").tool_calls[0]["args"] == {"city": name}
    fp.set_script("lc-budget-model", script("budget", tool_calls=[{"name": "GetWeather", "arguments": '{"city": '}]))
    msg = llm.invoke("weather?")
    assert not msg.tool_calls
    (bad,) = msg.invalid_tool_calls
    assert bad["name"] == "GetWeather" and bad["args"] == '{"city": ' and "JSON" in str(bad["error"])


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
async def test_structured_output_methods(fp: FakeProvider, method: str) -> None:
    for t in ("budget", "mid", "premium"):
        fp.set_script(f"lc-{t}-model", script(t, json_reply=JOKE, tool_calls=[{"name": "Joke", "arguments": JOKE}]))
    llm = ChatTierRoute(config=lc_config(fp.base_url))
    joke = await llm.with_structured_output(Joke, method=method).ainvoke("Tell me a joke about cats as JSON")
    assert joke == Joke(**JOKE)
    body = fp.requests_for("lc-budget-model")[-1].body
    if method == "function_calling":
        assert tool_names(body) == ["Joke"] and body["tool_choice"]["function"]["name"] == "Joke"
    elif method == "json_schema":
        spec = body["response_format"]["json_schema"]
        assert spec["name"] == "Joke" and set(spec["schema"]["properties"]) == {"setup", "punchline"}
    else:
        assert body["response_format"] == {"type": "json_object"}
    as_dict = await llm.with_structured_output(Joke.model_json_schema(), method=method).ainvoke("joke")
    assert as_dict == JOKE


async def test_structured_output_include_raw_keeps_routing_metadata(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("server_error"), tool_calls=[{"name": "Joke", "arguments": JOKE}])
    fp.set_script("lc-mid-model", script("mid", tool_calls=[{"name": "Joke", "arguments": JOKE}]))
    out = (
        await ChatTierRoute(config=lc_config(fp.base_url))
        .with_structured_output(Joke, include_raw=True)
        .ainvoke("joke")
    )
    assert out["parsed"] == Joke(**JOKE) and out["parsing_error"] is None
    raw = out["raw"]
    assert isinstance(raw, AIMessage) and raw.response_metadata["tierroute"]["tier"] == "mid"
    with pytest.raises(InvalidRequestError, match="strict"):
        ChatTierRoute(config=lc_config(fp.base_url)).with_structured_output(Joke, method="json_mode", strict=True)


def test_tool_requests_skip_a_tier_that_cannot_call_tools(fp: FakeProvider) -> None:
    fp.set_script("lc-mid-model", script("mid", tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 2}}]))
    llm = ChatTierRoute(
        config=lc_config(fp.base_url, drop=("budget",)),
        tiers={"budget": GenericFakeChatModel(messages=cycle(["plain text from a model without tools"]))},
    )
    assert llm.invoke("hello").content == "plain text from a model without tools"  # no tools: budget serves
    msg = llm.bind_tools([add]).invoke("1 + 2?")
    assert msg.tool_calls[0]["args"] == {"a": 1, "b": 2}
    assert attempts(msg.response_metadata) == [("budget", None, True), ("mid", None, False)]
    assert msg.response_metadata["tierroute"]["attempts"][0]["error"] == "tier cannot call tools"
    params = fp.requests_for("lc-mid-model")[-1].body["tools"][0]["function"]["parameters"]
    assert params["properties"]["a"]["type"] == "integer" and params["required"] == ["a", "b"]
