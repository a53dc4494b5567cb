"""Pure helpers for the fake provider: token estimates, message text, JSON examples, embeddings.

Nothing here touches sockets or shared state, so every function is safe to call from any thread.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "content_text",
    "embedding_vector",
    "estimate_tokens",
    "last_message_is_tool_result",
    "last_user_text",
    "prompt_text",
    "schema_example",
    "split_pieces",
]

_PIECE = re.compile(r"\s*\S+")


def estimate_tokens(text: str) -> int:
    """Estimate a token count the way the fake provider reports it.

    Args:
        text: Any text.

    Returns:
        ``ceil(words * 4 / 3)``: deterministic and close enough to real tokenizers for English prose.
    """
    return math.ceil(len(text.split()) * 4 / 3)


def content_text(content: Any) -> str:
    """Return the plain text of one message's ``content`` (OpenAI or Anthropic shape).

    Args:
        content: A string, ``None``, or a list of parts such as ``{"type": "text", "text": ...}``
            (Anthropic ``tool_result`` blocks contribute their nested text).

    Returns:
        The text parts joined by newlines; images and other non-text parts are skipped.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return content_text([content])
    texts: list[str] = []
    if isinstance(content, Sequence):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "tool_result":
                    texts.append(content_text(part.get("content")))
    return "\n".join(t for t in texts if t)


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, Mapping)]


def last_user_text(body: Mapping[str, Any]) -> str:
    """Return the text of the last ``user`` message of a chat request body.

    Args:
        body: An OpenAI ``/v1/chat/completions`` or Anthropic ``/v1/messages`` request body.

    Returns:
        The text, or ``""`` when the request has no user message.
    """
    for message in reversed(_messages(body)):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def prompt_text(body: Mapping[str, Any]) -> str:
    """Return all prompt text of a chat request: system prompt, messages and tool-call arguments.

    Args:
        body: An OpenAI or Anthropic chat request body.

    Returns:
        The texts joined by newlines; the basis of the prompt-token estimate.
    """
    texts = [content_text(body.get("system"))]
    for message in _messages(body):
        texts.append(content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                texts.append(str(call["function"].get("arguments", "")))
    return "\n".join(t for t in texts if t)


def last_message_is_tool_result(body: Mapping[str, Any]) -> bool:
    """Tell whether the conversation ends with a tool result (so the model should answer in text).

    Args:
        body: An OpenAI or Anthropic chat request body.

    Returns:
        True for a final OpenAI ``tool`` message or a final Anthropic user message holding a ``tool_result``.
    """
    messages = _messages(body)
    if not messages:
        return False
    last = messages[-1]
    if last.get("role") in ("tool", "function"):
        return True
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(part, Mapping) and part.get("type") == "tool_result" for part in content
    )


def split_pieces(text: str, max_pieces: int = 12) -> list[str]:
    """Split text into several stream pieces that concatenate back to the exact text.

    Args:
        text: The full reply.
        max_pieces: Upper bound on the number of pieces; words are grouped to stay under it.

    Returns:
        At least two pieces for any text longer than one character, else ``[text]`` (or ``[]`` for ``""``).
    """
    if not text:
        return []
    words = _PIECE.findall(text)
    tail = text[sum(len(w) for w in words) :]
    if words:
        words[-1] += tail
    else:
        words = [text]
    if len(words) == 1:
        half = len(text) // 2
        return [text[:half], text[half:]] if half else [text]
    size = math.ceil(len(words) / max_pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def schema_example(schema: Any, text: str = "example", _depth: int = 0) -> Any:
    """Build a small value that satisfies a JSON schema (good enough for structured-output tests).

    Args:
        schema: A JSON schema (``$ref`` is not resolved; unknown shapes yield ``{}``).
        text: The value used for string fields.
        _depth: Recursion guard.

    Returns:
        An example value: every declared property present, the first ``enum`` / ``anyOf`` choice taken.
    """
    if not isinstance(schema, Mapping) or _depth > 8:
        return {}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return schema_example((non_null or options)[0], text, _depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        return text
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        return [schema_example(schema.get("items", {}), text, _depth + 1)]
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        return {str(name): schema_example(sub, text, _depth + 1) for name, sub in properties.items()}
    return {}


def embedding_vector(text: str, dim: int) -> list[float]:
    """Return a deterministic unit-length vector derived from a SHA-256 hash of the text.

    Args:
        text: The input to embed.
        dim: Vector dimension (>= 1).

    Returns:
        ``dim`` floats; equal inputs give equal vectors, different inputs almost surely differ.
    """
    values: list[float] = []
    block = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        for (word,) in struct.iter_unpack("<I", digest):
            values.append(word / 2**31 - 1.0)
        block += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
