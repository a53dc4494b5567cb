"""Pure converters between LangChain messages and tierroute's OpenAI-shaped requests, answers and stream chunks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    ToolCall,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, invalid_tool_call, tool_call
from langchain_core.messages.utils import convert_to_messages, convert_to_openai_messages
from tierroute.backends.base import BackendResponse, StreamChunk
from tierroute.backends.base import ToolCall as RouteToolCall
from tierroute.errors import InvalidRequestError
from tierroute.types import RouteTrace, Usage

__all__ = [
    "backend_response_from_message",
    "final_chunk",
    "message_from_backend",
    "message_chunk_from_stream",
    "openai_tool_choice",
    "response_metadata",
    "route_metadata",
    "to_langchain_messages",
    "to_langchain_tool_choice",
    "to_openai_messages",
    "usage_from_metadata",
    "usage_metadata",
]

#: Metadata keys LangChain adds for tracing; they are not routing input.
_TRACING_PREFIXES = ("ls_", "langsmith")
#: Content blocks an assistant message may hold in LangChain (v1 output, Anthropic) that are not content in the
#: OpenAI format: tool calls travel in ``tool_calls``; reasoning belongs to the provider that produced it.
_NOT_ASSISTANT_CONTENT = frozenset(
    {
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "tool_use",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "reasoning",
        "thinking",
        "redacted_thinking",
    }
)


def _assistant_content(content: Any) -> Any:
    """OpenAI assistant content: drop tool-call and reasoning blocks; a list of text parts becomes one string."""
    if not isinstance(content, list):
        return content
    parts = [p for p in content if not (isinstance(p, Mapping) and p.get("type") in _NOT_ASSISTANT_CONTENT)]
    if all(isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") == "text") for p in parts):
        return "".join(p if isinstance(p, str) else str(p.get("text") or "") for p in parts)
    return parts


# ---- LangChain -> OpenAI ---------------------------------------------------------------------------------


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat messages for LangChain messages.

    Tool calls, tool results, names and image blocks (OpenAI ``image_url`` and LangChain standard blocks)
    carry over. A human message holding Anthropic ``tool_result`` blocks becomes the ``tool`` messages first and
    then the remaining user text, the order OpenAI-style APIs require after an assistant's tool calls. Assistant
    content keeps its text: tool-call blocks (v1 output, Anthropic ``tool_use``) are already in ``tool_calls``,
    and reasoning blocks are dropped (another tier's provider cannot take them).
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        converted = convert_to_openai_messages([message])
        if isinstance(message, HumanMessage) and len(converted) > 1:
            converted = [m for m in converted if m.get("role") == "tool"] + [
                m for m in converted if m.get("role") != "tool"
            ]
        for m in converted:
            if m.get("role") == "assistant":
                m["content"] = _assistant_content(m.get("content"))
        out.extend(converted)
    return out


def route_metadata(metadata: Mapping[str, Any] | None, tags: Iterable[str] | None) -> dict[str, Any]:
    """Request metadata for the rules layer from a LangChain run's metadata and tags.

    Tracing keys (``ls_*``) are dropped; tags join any ``tags`` entry of the metadata, so a rule with
    ``tags: [...]`` matches ``config={"tags": [...]}``.
    """
    out = {k: v for k, v in (metadata or {}).items() if not k.startswith(_TRACING_PREFIXES)}
    tag_list = [str(t) for t in tags or ()]
    if tag_list:
        prior = out.get("tags")
        merged = [prior] if isinstance(prior, str) else list(prior or [])
        out["tags"] = merged + [t for t in tag_list if t not in merged]
    return out


def openai_tool_choice(choice: Any, tool_names: Sequence[str]) -> str | dict[str, Any] | None:
    """OpenAI ``tool_choice`` for LangChain's ``bind_tools(tool_choice=...)``.

    ``"any"``, ``"required"`` and ``True`` force some tool; ``"auto"`` and ``"none"`` pass through; a tool name
    forces that tool; a dict is taken as OpenAI-shaped; ``None`` and ``False`` leave it unset.

    Raises:
        InvalidRequestError: A name that is not one of the bound tools, or a value of another type.
    """
    if choice is None or choice is False:
        return None
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice in ("auto", "none"):
        return str(choice)
    if isinstance(choice, str):
        if choice not in tool_names:
            raise InvalidRequestError(
                f"tool_choice={choice!r} names no bound tool; bound tools: {list(tool_names)} "
                "(or use 'any', 'auto', 'none')"
            )
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, Mapping):
        return dict(choice)
    raise InvalidRequestError(f"tool_choice must be a string, a bool or a dict, got {type(choice).__name__}")


# ---- OpenAI -> LangChain ---------------------------------------------------------------------------------


def to_langchain_messages(messages: Iterable[Mapping[str, Any]]) -> list[BaseMessage]:
    """LangChain messages for OpenAI chat messages (tool calls with JSON arguments are parsed)."""
    return convert_to_messages([dict(m) for m in messages])


def to_langchain_tool_choice(choice: Any) -> str | None:
    """The portable LangChain ``tool_choice`` for an OpenAI one (``"any"``, ``"auto"``, ``"none"`` or a name)."""
    if choice is None:
        return None
    if choice == "required":
        return "any"
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return str(fn["name"])
        if isinstance(choice.get("name"), str):
            return str(choice["name"])
        kind = choice.get("type")
        if kind in ("any", "auto", "none"):
            return str(kind)
    return None


def usage_metadata(usage: Usage) -> UsageMetadata:
    """LangChain usage metadata for tierroute usage."""
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def usage_from_metadata(meta: Mapping[str, Any] | None) -> Usage | None:
    """The tierroute usage of LangChain usage metadata (None when absent)."""
    if not meta:
        return None
    return Usage(int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0))


def _tool_calls(calls: Sequence[RouteToolCall]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    good: list[ToolCall] = []
    bad: list[InvalidToolCall] = []
    for call in calls:
        raw = call.arguments or "{}"
        try:
            args = json.loads(raw)
        except ValueError as exc:
            bad.append(invalid_tool_call(name=call.name, args=raw, id=call.id, error=f"arguments are not JSON: {exc}"))
            continue
        if not isinstance(args, dict):
            bad.append(invalid_tool_call(name=call.name, args=raw, id=call.id, error="arguments are not a JSON object"))
            continue
        good.append(tool_call(name=call.name, args=args, id=call.id))
    return good, bad


def response_metadata(trace: RouteTrace | None, finish_reason: str | None, fallback_model: str) -> dict[str, Any]:
    """``response_metadata``: the served model as ``model_name``, the finish reason and the ``tierroute`` trace."""
    served = trace.served if trace is not None else None
    meta: dict[str, Any] = {
        "model_name": (served.served_model if served is not None else None) or fallback_model,
        "finish_reason": finish_reason,
    }
    if trace is not None:
        meta["tierroute"] = trace.to_dict()
    return meta


def message_from_backend(response: BackendResponse, trace: RouteTrace, fallback_model: str) -> AIMessage:
    """An ``AIMessage`` for a served answer: text, tool calls, usage and response metadata."""
    good, bad = _tool_calls(response.tool_calls)
    raw_id = getattr(response.raw, "id", None)
    return AIMessage(
        content=response.text,
        tool_calls=good,
        invalid_tool_calls=bad,
        usage_metadata=usage_metadata(response.usage),
        response_metadata=response_metadata(trace, response.finish_reason, fallback_model),
        id=raw_id if isinstance(raw_id, str) and raw_id else None,
    )


def message_chunk_from_stream(chunk: StreamChunk) -> AIMessageChunk | None:
    """An ``AIMessageChunk`` for a stream chunk with text or tool-call deltas (None for the others)."""
    if not chunk.text and not chunk.tool_call_deltas:
        return None
    calls: list[ToolCallChunk] = []
    for delta in chunk.tool_call_deltas:
        fn = delta.get("function") or {}
        calls.append(
            ToolCallChunk(
                name=fn.get("name") or None,
                args=fn.get("arguments") or None,
                id=delta.get("id") or None,
                index=delta.get("index"),
            )
        )
    return AIMessageChunk(content=chunk.text, tool_call_chunks=calls)


def final_chunk(trace: RouteTrace | None, finish_reason: str | None, fallback_model: str) -> AIMessageChunk:
    """The closing chunk of a stream: the only one with usage and response metadata (so merging counts once)."""
    served = trace.served if trace is not None else None
    usage = usage_metadata(served.usage) if served is not None else None
    return AIMessageChunk(
        content="",
        usage_metadata=usage,
        response_metadata=response_metadata(trace, finish_reason, fallback_model),
        chunk_position="last",
    )


# ---- LangChain answers -> tierroute (tier models) ----------------------------------------------------------


def backend_response_from_message(message: BaseMessage, default_model: str) -> BackendResponse:
    """A :class:`~tierroute.backends.base.BackendResponse` for a tier model's answer."""
    meta = message.response_metadata or {}
    calls = [
        RouteToolCall(id=str(tc.get("id") or ""), name=tc["name"], arguments=json.dumps(tc.get("args") or {}))
        for tc in getattr(message, "tool_calls", None) or []
    ]
    finish = meta.get("finish_reason") or meta.get("stop_reason")
    if finish is None:
        finish = "tool_calls" if calls else "stop"
    usage = usage_from_metadata(getattr(message, "usage_metadata", None)) or Usage()
    served = meta.get("model_name") or meta.get("model") or default_model
    return BackendResponse(
        text=message.text,
        tool_calls=calls,
        finish_reason=str(finish),
        usage=usage,
        served_model=str(served),
        raw=message,
    )
