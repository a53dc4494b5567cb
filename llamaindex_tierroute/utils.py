"""Pure converters between LlamaIndex's chat types and tierroute's OpenAI-shaped ones.

Direction in (adapter -> core): :func:`to_openai_messages` turns ``ChatMessage`` lists into OpenAI message
dicts for :class:`tierroute.RouteRequest`; :func:`tool_specs` turns ``BaseTool`` objects into OpenAI tool
definitions. Direction out (core -> adapter): :func:`completion_to_chat_response` builds the ``ChatResponse``
(text, tool calls, token counts, the ``tierroute`` trace, the provider payload as ``raw``) and
:class:`StreamAccumulator` does the same chunk by chunk. The tier-object backend uses the reverse pair
(:func:`from_openai_message`, :func:`tool_selections_to_calls`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from tierroute.backends.base import StreamChunk, ToolCall
from tierroute.errors import InvalidRequestError
from tierroute.types import RouteTrace, Usage

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool
    from tierroute.router import Completion

__all__ = [
    "METADATA_KEY",
    "StreamAccumulator",
    "completion_to_chat_response",
    "from_openai_message",
    "normalize_tool_calls",
    "resolve_tool_choice",
    "to_openai_message",
    "to_openai_messages",
    "tool_calls_from_message",
    "tool_selections_to_calls",
    "tool_specs",
    "usage_from_response",
    "usage_kwargs",
]

#: Key of the routing trace in ``ChatResponse.additional_kwargs``.
METADATA_KEY = "tierroute"

_ASSISTANT_ROLES = frozenset({MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL})
# message.additional_kwargs keys that are part of the OpenAI message format; anything else stays local
_PASSED_KWARGS = ("tool_call_id", "name")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


# ---- ChatMessage -> OpenAI dict ---------------------------------------------------------------------


def normalize_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` dicts from dicts or SDK objects (OpenAI, LiteLLM) in any mix.

    Arguments that arrive as a dict are serialised to the JSON string OpenAI expects.
    """
    out: list[dict[str, Any]] = []
    for call in calls or []:
        fn = _get(call, "function")
        args = _get(fn, "arguments")
        if not isinstance(args, str):
            args = json.dumps(args if args is not None else {})
        out.append(
            {
                "id": _get(call, "id"),
                "type": "function",
                "function": {"name": _get(fn, "name"), "arguments": args},
            }
        )
    return out


def _block_part(block: Any, path: str) -> dict[str, Any] | None:
    """One OpenAI content part for a LlamaIndex content block (None for blocks that are not sent)."""
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        url = str(block.url) if block.url else block.inline_url()
        image: dict[str, Any] = {"url": url}
        if block.detail:
            image["detail"] = block.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(block, AudioBlock):
        data = block.resolve_audio(as_base64=True).read().decode("utf-8")
        return {"type": "input_audio", "input_audio": {"data": data, "format": block.format or "wav"}}
    if isinstance(block, DocumentBlock):
        data = block._get_b64_string(block.resolve_document())
        mime = block.document_mimetype or block._guess_mimetype() or "application/pdf"
        file: dict[str, Any] = {"file_data": f"data:{mime};base64,{data}"}
        if block.title:
            file["filename"] = block.title
        return {"type": "file", "file": file}
    if isinstance(block, CitableBlock):
        texts = [c.text for c in block.content if isinstance(c, TextBlock)]
        return {"type": "text", "text": "\n".join(texts)}
    if isinstance(block, CitationBlock):
        cited = block.cited_content
        return {"type": "text", "text": cited.text} if isinstance(cited, TextBlock) else None
    if isinstance(block, (ThinkingBlock, CachePoint, ToolCallBlock)):
        return None  # reasoning is not sent back; cache hints are provider-specific; tool calls go elsewhere
    raise InvalidRequestError(
        f"{path} is a {type(block).__name__}, which the OpenAI chat format cannot carry; "
        "send text, image, audio or document blocks"
    )


def to_openai_message(message: ChatMessage, index: int = 0) -> dict[str, Any]:
    """One LlamaIndex ``ChatMessage`` as an OpenAI message dict.

    Text-only content becomes a string (blocks joined with newlines, as ``ChatMessage.content`` does); images,
    audio and documents become content parts. Tool calls come from ``additional_kwargs["tool_calls"]`` (dicts
    or SDK objects) or from ``ToolCallBlock`` blocks; ``tool_call_id`` and ``name`` are passed through; other
    ``additional_kwargs`` stay local.

    Raises:
        InvalidRequestError: A block the OpenAI format cannot carry (e.g. video).
    """
    role = "assistant" if message.role in _ASSISTANT_ROLES else message.role.value
    parts = [p for j, b in enumerate(message.blocks) if (p := _block_part(b, f"messages[{index}].blocks[{j}]"))]
    kwargs = message.additional_kwargs
    calls = normalize_tool_calls(kwargs.get("tool_calls"))
    if not calls:
        calls = [
            {
                "id": b.tool_call_id,
                "type": "function",
                "function": {
                    "name": b.tool_name,
                    "arguments": b.tool_kwargs if isinstance(b.tool_kwargs, str) else json.dumps(b.tool_kwargs),
                },
            }
            for b in message.blocks
            if isinstance(b, ToolCallBlock)
        ]
    content: str | list[dict[str, Any]] | None
    if all(p["type"] == "text" for p in parts):
        content = "\n".join(p["text"] for p in parts)
        if not content and calls:
            content = None
    else:
        content = parts
    out: dict[str, Any] = {"role": role, "content": content}
    if calls and role == "assistant":
        out["tool_calls"] = calls
    for key in _PASSED_KWARGS:
        if kwargs.get(key) is not None:
            out[key] = kwargs[key]
    return out


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Every message as an OpenAI message dict (see :func:`to_openai_message`)."""
    return [to_openai_message(m, i) for i, m in enumerate(messages)]


def tool_specs(tools: Sequence[BaseTool | Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """OpenAI tool definitions for LlamaIndex tools (OpenAI-shaped dicts are taken as they are)."""
    specs: list[dict[str, Any]] = []
    for tool in tools or []:
        if isinstance(tool, Mapping):
            specs.append(dict(tool))
        else:
            specs.append(tool.metadata.to_openai_tool(skip_length_check=True))
    return specs


def resolve_tool_choice(choice: str | Mapping[str, Any] | None, tool_required: bool) -> str | dict[str, Any]:
    """OpenAI ``tool_choice``: ``auto``/``none``/``required``, or a tool name turned into a function choice."""
    if choice is None:
        return "required" if tool_required else "auto"
    if isinstance(choice, Mapping):
        return dict(choice)
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


# ---- core -> ChatResponse ----------------------------------------------------------------------------


def usage_kwargs(usage: Usage) -> dict[str, int]:
    """Token counts under the keys llama-index-llms-litellm uses."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _assistant(text: str, calls: list[dict[str, Any]]) -> ChatMessage:
    kwargs: dict[str, Any] = {"tool_calls": calls} if calls else {}
    content = text if text or not calls else None
    return ChatMessage(role=MessageRole.ASSISTANT, content=content, additional_kwargs=kwargs)


def completion_to_chat_response(completion: Completion) -> ChatResponse:
    """A routed :class:`~tierroute.router.Completion` as a LlamaIndex ``ChatResponse``.

    ``additional_kwargs`` holds the token counts and ``"tierroute"`` (the trace's ``to_dict()``); ``raw`` is the
    served provider payload; tool calls are OpenAI dicts in ``message.additional_kwargs["tool_calls"]``.
    """
    resp = completion.response
    calls = [c.to_openai() for c in resp.tool_calls]
    return ChatResponse(
        message=_assistant(resp.text, calls),
        raw=resp.raw,
        additional_kwargs={**usage_kwargs(resp.usage), METADATA_KEY: completion.trace.to_dict()},
    )


class StreamAccumulator:
    """Builds cumulative ``ChatResponse`` objects from the core's stream chunks.

    Each chunk with text or tool-call deltas gives a response (``delta`` = the new text, ``message`` = everything
    so far); :meth:`final` gives the closing response carrying usage and the complete routing trace.
    """

    def __init__(self) -> None:
        self.text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.raw: Any = None

    def tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls assembled so far (OpenAI dicts, fresh copies)."""
        return [
            {"id": c["id"], "type": "function", "function": dict(c["function"])} for _, c in sorted(self._calls.items())
        ]

    def _merge(self, delta: Mapping[str, Any]) -> None:
        index = int(delta.get("index") or 0)
        fn = delta.get("function") or {}
        call = self._calls.setdefault(index, {"id": None, "function": {"name": "", "arguments": ""}})
        if delta.get("id"):
            call["id"] = delta["id"]
        if fn.get("name"):
            call["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            call["function"]["arguments"] += fn["arguments"]

    def add(self, chunk: StreamChunk) -> ChatResponse | None:
        """Take one chunk; return the response to yield, or None for a chunk with nothing new to show."""
        self.usage = chunk.usage or self.usage
        self.raw = chunk.raw if chunk.raw is not None else self.raw
        for delta in chunk.tool_call_deltas:
            self._merge(delta)
        if chunk.text:
            self.text.append(chunk.text)
        if not chunk.text and not chunk.tool_call_deltas:
            return None
        return ChatResponse(message=_assistant("".join(self.text), self.tool_calls()), delta=chunk.text, raw=chunk.raw)

    def final(self, trace: RouteTrace | None) -> ChatResponse:
        """The closing response: the whole message, token counts and the ``tierroute`` trace."""
        extra: dict[str, Any] = usage_kwargs(self.usage or Usage())
        if trace is not None:
            extra[METADATA_KEY] = trace.to_dict()
        return ChatResponse(
            message=_assistant("".join(self.text), self.tool_calls()), delta="", raw=self.raw, additional_kwargs=extra
        )


# ---- tool calls out of a ChatResponse ----------------------------------------------------------------


def _parse_arguments(args: Any) -> dict[str, Any]:
    if isinstance(args, Mapping):
        return dict(args)
    if not args:
        return {}
    try:
        parsed = json.loads(args)
    except (ValueError, TypeError):
        try:
            parsed = parse_partial_json(str(args))
        except (ValueError, TypeError, JSONDecodeError):
            return {}
    return dict(parsed) if isinstance(parsed, Mapping) else {}


def tool_calls_from_message(message: ChatMessage) -> list[ToolSelection]:
    """Tool selections in a message: OpenAI-style ``additional_kwargs["tool_calls"]``, else ``ToolCallBlock`` s."""
    selections = [
        ToolSelection(
            tool_id=str(c["id"] or f"call_{i}"),
            tool_name=str(c["function"]["name"]),
            tool_kwargs=_parse_arguments(c["function"]["arguments"]),
        )
        for i, c in enumerate(normalize_tool_calls(message.additional_kwargs.get("tool_calls")))
        if c["function"]["name"]
    ]
    if selections:
        return selections
    return [
        ToolSelection(
            tool_id=b.tool_call_id or f"call_{i}", tool_name=b.tool_name, tool_kwargs=_parse_arguments(b.tool_kwargs)
        )
        for i, b in enumerate(message.blocks)
        if isinstance(b, ToolCallBlock)
    ]


def tool_selections_to_calls(selections: Sequence[ToolSelection]) -> list[ToolCall]:
    """Tool calls for the core from LlamaIndex tool selections (arguments serialised to JSON)."""
    return [
        ToolCall(id=s.tool_id or f"call_{i}", name=s.tool_name, arguments=json.dumps(s.tool_kwargs))
        for i, s in enumerate(selections)
    ]


# ---- OpenAI dict -> ChatMessage (for tier objects) ---------------------------------------------------


def from_openai_message(message: Mapping[str, Any]) -> ChatMessage:
    """An OpenAI message dict as a LlamaIndex ``ChatMessage`` (the form LlamaIndex LLM integrations read).

    Tool calls go to ``additional_kwargs["tool_calls"]`` as OpenAI dicts; ``tool_call_id`` and ``name`` to
    ``additional_kwargs``; text and image parts to blocks.
    """
    role = str(message.get("role"))
    content = message.get("content")
    blocks: list[Any] = []
    if isinstance(content, str):
        blocks.append(TextBlock(text=content))
    elif isinstance(content, Sequence):
        for part in content:
            if isinstance(part, str):
                blocks.append(TextBlock(text=part))
            elif part.get("type") == "text":
                blocks.append(TextBlock(text=str(part.get("text", ""))))
            elif part.get("type") == "image_url":
                image = part.get("image_url") or {}
                url = image.get("url") if isinstance(image, Mapping) else image
                detail = image.get("detail") if isinstance(image, Mapping) else None
                blocks.append(ImageBlock(url=str(url), detail=detail))
    kwargs: dict[str, Any] = {}
    if message.get("tool_calls"):
        kwargs["tool_calls"] = normalize_tool_calls(message["tool_calls"])
    for key in _PASSED_KWARGS:
        if message.get(key) is not None:
            kwargs[key] = message[key]
    return ChatMessage(role=MessageRole(role), blocks=blocks, additional_kwargs=kwargs)


def usage_from_response(response: ChatResponse | None) -> Usage | None:
    """Token usage a LlamaIndex LLM reported: ``additional_kwargs`` counts, else the raw payload's ``usage``."""
    if response is None:
        return None
    extra = response.additional_kwargs
    for p_key, c_key in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        if extra.get(p_key) or extra.get(c_key):
            return Usage(int(extra.get(p_key) or 0), int(extra.get(c_key) or 0))
    usage = _get(response.raw, "usage")
    if usage is None:
        return None
    prompt = _get(usage, "prompt_tokens", None) or _get(usage, "input_tokens", 0)
    completion = _get(usage, "completion_tokens", None) or _get(usage, "output_tokens", 0)
    if not prompt and not completion:
        return None
    return Usage(int(prompt or 0), int(completion or 0))
