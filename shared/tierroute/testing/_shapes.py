"""Wire shapes: OpenAI and Anthropic response bodies, stream events and error bodies.

Error bodies copy the providers' real ones (message wording, ``type``, ``code``) because clients such as
LiteLLM pick their exception class from them: e.g. ``context_length_exceeded`` or "maximum context length"
-> ``ContextWindowExceededError``, ``content_policy_violation`` -> ``ContentPolicyViolationError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tierroute.testing._answer import Answer, Api
from tierroute.testing._script import Fault
from tierroute.testing._text import split_pieces

__all__ = [
    "ErrorReply",
    "StreamPlan",
    "anthropic_message",
    "anthropic_stream",
    "error_reply",
    "openai_completion",
    "openai_stream",
]

_FINGERPRINT = "fp_tierroute_fake"


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error response: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class StreamPlan:
    """SSE frames of a stream: ``body`` (role and content frames) then ``tail`` (finish, usage, end marker)."""

    body: list[bytes]
    tail: list[bytes]


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


# --------------------------------------------------------------------------------------------------- OpenAI


def openai_completion(answer: Answer, *, model: str, response_id: str, created: int) -> dict[str, Any]:
    """Build a ``chat.completion`` body.

    Args:
        answer: What the model says.
        model: The ``model`` field (the served model name).
        response_id: ``chatcmpl-...`` id.
        created: Unix time.

    Returns:
        The JSON body.
    """
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ]
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
        "usage": _usage(answer),
    }


def openai_stream(answer: Answer, *, model: str, response_id: str, created: int, include_usage: bool) -> StreamPlan:
    """Build the ``chat.completion.chunk`` SSE frames of a streamed answer.

    Args:
        answer: What the model says.
        model: The ``model`` field.
        response_id: Shared id of all chunks.
        created: Unix time.
        include_usage: Add ``"usage": null`` to every chunk and a final usage chunk (``stream_options``).

    Returns:
        Role and content (or tool-call) frames, then the finish frame, the usage frame and ``data: [DONE]``.
    """

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": _FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return _sse(data)

    body = [chunk({"role": "assistant", "content": "" if answer.text is not None else None, "refusal": None})]
    for piece in split_pieces(answer.text or ""):
        body.append(chunk({"content": piece}))
    for index, call in enumerate(answer.tool_calls):
        opening = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        body.append(chunk({"tool_calls": [opening]}))
        for piece in split_pieces(call.arguments, max_pieces=4):
            body.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    tail = [chunk({}, answer.finish_reason)]
    if include_usage:
        tail.append(
            _sse(
                {
                    "id": response_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": _FINGERPRINT,
                    "choices": [],
                    "usage": _usage(answer),
                }
            )
        )
    tail.append(b"data: [DONE]\n\n")
    return StreamPlan(body=body, tail=tail)


# ------------------------------------------------------------------------------------------------ Anthropic

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def anthropic_message(answer: Answer, *, model: str, response_id: str) -> dict[str, Any]:
    """Build an Anthropic Messages API ``message`` body.

    Args:
        answer: What the model says.
        model: The ``model`` field.
        response_id: ``msg_...`` id.

    Returns:
        The JSON body.
    """
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)})
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP_REASONS[answer.finish_reason],
        "stop_sequence": None,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
    }


def anthropic_stream(answer: Answer, *, model: str, response_id: str) -> StreamPlan:
    """Build the SSE events of a streamed Anthropic message.

    Args:
        answer: What the model says.
        model: The ``model`` field.
        response_id: ``msg_...`` id.

    Returns:
        ``message_start``, ``ping`` and content-block frames, then ``message_delta`` and ``message_stop``.
    """
    start = anthropic_message(answer, model=model, response_id=response_id)
    start.update(content=[], stop_reason=None)
    start["usage"] = {"input_tokens": answer.prompt_tokens, "output_tokens": 1}
    body = [_sse({"type": "message_start", "message": start}, "message_start"), _sse({"type": "ping"}, "ping")]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if answer.text:
        deltas = [{"type": "text_delta", "text": p} for p in split_pieces(answer.text)]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for call in answer.tool_calls:
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in split_pieces(call.arguments, 4)]
        blocks.append(({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, deltas))
    for index, (opening, deltas) in enumerate(blocks):
        body.append(
            _sse({"type": "content_block_start", "index": index, "content_block": opening}, "content_block_start")
        )
        for delta in deltas:
            body.append(_sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"))
        body.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    tail = [
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _STOP_REASONS[answer.finish_reason], "stop_sequence": None},
                "usage": {"output_tokens": answer.completion_tokens},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return StreamPlan(body=body, tail=tail)


# --------------------------------------------------------------------------------------------------- errors


def _mask_key(key: str) -> str:
    return f"{key[:3]}...{key[-4:]}" if len(key) > 8 else "sk-...xxxx"


def _openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _anthropic_error(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def error_reply(
    api: Api,
    kind: str,
    *,
    model: str,
    fault: Fault | None = None,
    api_key: str = "",
    prompt_tokens: int = 0,
    context_limit: int | None = None,
) -> ErrorReply:
    """Build the provider's error response for a fault kind, ``"not_found"`` or ``"invalid_json"``.

    Args:
        api: ``"openai"`` or ``"anthropic"`` wire format.
        kind: A fault kind with an HTTP response, ``"not_found"`` or ``"invalid_json"``.
        model: The requested model (named in messages).
        fault: The fault, for ``status``, ``retry_after`` and ``message`` overrides.
        api_key: The caller's key, shown masked in the ``auth`` message.
        prompt_tokens: Prompt size, shown in the context-length message.
        context_limit: The window, shown in the context-length message (default 8192).

    Returns:
        Status, body and headers.
    """
    headers: dict[str, str] = {}
    status = 400
    custom = fault.message if fault is not None else None
    if kind == "rate_limit":
        retry = fault.retry_after if fault is not None else 1.0
        retry_text = str(int(retry)) if float(retry).is_integer() else f"{retry:g}"
        headers.update(
            {
                "Retry-After": retry_text,
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_text}s",
            }
        )
        status = 429
        if api == "anthropic":
            headers["anthropic-ratelimit-requests-remaining"] = "0"
            body = _anthropic_error(
                "rate_limit_error",
                custom or f"Number of request tokens has exceeded your per-minute rate limit for {model}.",
            )
        else:
            body = _openai_error(
                custom
                or f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
                f"Limit 60, Used 60, Requested 1. Please try again in {retry_text}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more.",
                "requests",
                "rate_limit_exceeded",
            )
    elif kind == "server_error":
        status = fault.status if fault is not None and fault.status is not None else 500
        if api == "anthropic":
            overloaded = status in (503, 529)
            body = _anthropic_error(
                "overloaded_error" if overloaded else "api_error",
                custom or ("Overloaded" if overloaded else "Internal server error"),
            )
        else:
            messages = {
                500: "The server had an error while processing your request. Sorry about that!",
                502: "Bad gateway.",
                503: "The engine is currently overloaded, please try again later.",
                504: "Gateway timeout.",
                529: "The engine is currently overloaded, please try again later.",
            }
            body = _openai_error(custom or messages.get(status, "Server error."), "server_error", None)
    elif kind == "content_policy":
        if api == "anthropic":
            body = _anthropic_error("invalid_request_error", custom or "Output blocked by content filtering policy")
        else:
            body = _openai_error(
                custom
                or "Your request was rejected as a result of our safety system. Your prompt may contain text "
                "that is not allowed by our safety system.",
                "invalid_request_error",
                "content_policy_violation",
            )
    elif kind == "context_window":
        limit = context_limit or (200000 if api == "anthropic" else 8192)
        used = prompt_tokens if prompt_tokens > limit else limit + 808
        if api == "anthropic":
            body = _anthropic_error(
                "invalid_request_error", custom or f"prompt is too long: {used} tokens > {limit} maximum"
            )
        else:
            body = _openai_error(
                custom
                or f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                f"{used} tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
    elif kind == "auth":
        status = 401
        if api == "anthropic":
            body = _anthropic_error("authentication_error", custom or "invalid x-api-key")
        else:
            body = _openai_error(
                custom
                or f"Incorrect API key provided: {_mask_key(api_key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
    elif kind == "not_found":
        status = 404
        if api == "anthropic":
            body = _anthropic_error("not_found_error", f"model: {model}")
        else:
            body = _openai_error(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
    else:  # bad_request, invalid_json
        text = (
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly.)"
            if kind == "invalid_json"
            else custom or "Invalid value for 'messages': the request was rejected by an injected bad_request fault."
        )
        body = (
            _anthropic_error("invalid_request_error", text)
            if api == "anthropic"
            else _openai_error(text, "invalid_request_error", None)
        )
    return ErrorReply(status=status, body=body, headers=headers)
