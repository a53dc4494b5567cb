"""Turn a :class:`ModelScript` and a chat request into a provider-neutral :class:`Answer`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tierroute.testing._script import ModelScript
from tierroute.testing._text import (
    estimate_tokens,
    last_message_is_tool_result,
    last_user_text,
    prompt_text,
    schema_example,
)

__all__ = ["Answer", "ToolCall", "compose_answer", "prompt_tokens_for"]

Api = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class ToolCall:
    """One tool call in an answer: ``arguments`` is a JSON string, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    """What the fake model says, before it is shaped as an OpenAI or Anthropic response."""

    text: str | None
    finish_reason: Literal["stop", "length", "tool_calls"]
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[ToolCall] = field(default_factory=list)


def _lookup(table: Mapping[str, Any], key: str) -> Any:
    if key in table:
        return table[key]
    stripped = key.strip()
    return next((v for k, v in table.items() if k.strip() == stripped), None)


def prompt_tokens_for(script: ModelScript, body: Mapping[str, Any]) -> int:
    """Prompt tokens reported for a request: the script's override, else the estimate.

    Args:
        script: The model's script.
        body: The chat request body.

    Returns:
        The prompt token count (also what ``context_window`` is checked against).
    """
    if script.usage is not None:
        return script.usage[0]
    pair = _lookup(script.prompt_usage, last_user_text(body))
    if pair is not None:
        return int(pair[0])
    return estimate_tokens(prompt_text(body))


def _reply_text(script: ModelScript, body: Mapping[str, Any]) -> str:
    last = last_user_text(body)
    scripted = _lookup(script.replies, last)
    if scripted is not None:
        return str(scripted)
    if callable(script.reply):
        return str(script.reply(dict(body)))
    return last if script.reply == "echo" else script.reply


def _tools(body: Mapping[str, Any]) -> dict[str, Any]:
    """Tool name -> parameter schema, for OpenAI and Anthropic tool lists."""
    tools: dict[str, Any] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            tools[function["name"]] = function.get("parameters", {})
        elif isinstance(tool.get("name"), str):
            tools[tool["name"]] = tool.get("input_schema", {})
    return tools


def _tool_choice(body: Mapping[str, Any]) -> str | None:
    """Normalise tool_choice to None (auto), "none", "any" (some tool must be called) or a tool name."""
    choice = body.get("tool_choice")
    if choice in (None, "auto"):
        return None
    if choice in ("none", "required", "any"):
        return "none" if choice == "none" else "any"
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
        if kind == "tool" and isinstance(choice.get("name"), str):
            return str(choice["name"])
        if kind in ("any", "none"):
            return str(kind)
    return None


def _call_id(api: Api, model: str, call_number: int, index: int) -> str:
    digest = hashlib.sha256(f"{model}:{call_number}:{index}".encode()).hexdigest()[:24]
    return f"toolu_{digest}" if api == "anthropic" else f"call_{digest}"


def _tool_calls(script: ModelScript, body: Mapping[str, Any], api: Api, model: str, call_number: int) -> list[ToolCall]:
    tools = _tools(body)
    choice = _tool_choice(body)
    if not tools or choice == "none" or last_message_is_tool_result(body):
        return []
    planned = [(str(c["name"]), c.get("arguments", {})) for c in script.tool_calls]
    if choice not in (None, "any"):
        planned = [(name, args) for name, args in planned if name == choice]
    if not planned and choice is not None:
        name = next(iter(tools)) if choice == "any" else choice
        planned = [(name, schema_example(tools.get(name, {})))]
    return [
        ToolCall(
            id=_call_id(api, model, call_number, i),
            name=name,
            arguments=args if isinstance(args, str) else json.dumps(args),
        )
        for i, (name, args) in enumerate(planned)
    ]


def _json_text(script: ModelScript, body: Mapping[str, Any], text: str) -> str:
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping) or response_format.get("type") not in ("json_object", "json_schema"):
        return text
    if script.json_reply is not None:
        reply = script.json_reply
        return reply if isinstance(reply, str) else json.dumps(reply)
    try:
        json.loads(text)
    except ValueError:
        pass
    else:
        return text
    spec = response_format.get("json_schema")
    if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
        return json.dumps(schema_example(spec["schema"], text))
    return json.dumps({"response": text})


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def compose_answer(script: ModelScript, body: Mapping[str, Any], *, api: Api, model: str, call_number: int) -> Answer:
    """Decide the reply text or tool calls, the finish reason and the usage for one chat call.

    Args:
        script: The model's script.
        body: The chat request body.
        api: Which wire format the answer will be shaped for (affects tool-call ids only).
        model: The requested model name (seeds tool-call ids).
        call_number: The 1-based call number (seeds tool-call ids).

    Returns:
        The answer. A text longer than ``max_tokens`` (estimated) is cut, with finish reason ``"length"``.
    """
    prompt_tokens = prompt_tokens_for(script, body)
    calls = _tool_calls(script, body, api, model, call_number)
    override = script.usage or _lookup(script.prompt_usage, last_user_text(body))
    if calls:
        completion = estimate_tokens(" ".join(f"{c.name} {c.arguments}" for c in calls)) or 1
        return Answer(
            text=None,
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=int(override[1]) if override is not None else completion,
            tool_calls=calls,
        )
    text = _json_text(script, body, _reply_text(script, body))
    finish: Literal["stop", "length"] = "stop"
    limit = _max_tokens(body)
    if override is None and limit is not None and estimate_tokens(text) > limit:
        words = text.split(" ")
        keep = max(1, (limit * 3) // 4)
        while keep > 1 and estimate_tokens(" ".join(words[:keep])) > limit:
            keep -= 1
        text, finish = " ".join(words[:keep]), "length"
    return Answer(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=int(override[1]) if override is not None else estimate_tokens(text),
    )
