"""A tierroute backend whose tiers are LlamaIndex LLM objects (``tiers={"budget": SomeLLM(...)}``).

The cascade calls it like the LiteLLM backend: one attempt per call, no retries of its own. Requests arrive
as OpenAI message dicts and are handed to the tier's LLM as ``ChatMessage`` objects (tools as LlamaIndex
tools, through ``achat_with_tools``); provider exceptions propagate unchanged, so
:func:`tierroute.errors_map.classify` sees the provider's own error (a 429 is a rate limit, a 400 with a
content-filter body a policy refusal).

Turn the tier object's own retries off (``max_retries=1`` for ``llama_index.llms.litellm.LiteLLM``,
``max_retries=0`` for ``llama_index.llms.openai.OpenAI``): the cascade owns retries and fallbacks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from llama_index.core.tools.types import BaseTool, ToolMetadata, ToolOutput
from tierroute.backends.base import BackendResponse, StreamChunk
from tierroute.errors import ConfigError
from tierroute.types import RouteRequest, Usage

from llamaindex_tierroute.utils import (
    from_openai_message,
    tool_calls_from_message,
    tool_selections_to_calls,
    usage_from_response,
)

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatResponse

__all__ = ["LlamaIndexBackend", "SpecTool"]

_PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")


@dataclass
class _SpecMetadata(ToolMetadata):
    """Tool metadata whose parameters are a JSON schema given as is (not a pydantic model)."""

    parameters: dict[str, Any] = field(default_factory=dict)

    def get_parameters_dict(self) -> dict[str, Any]:
        return dict(self.parameters)


class SpecTool(BaseTool):
    """A LlamaIndex tool made from an OpenAI tool definition, so a tier LLM can be offered it.

    It only describes the tool: the caller of the router runs tools, never the tier.

    Args:
        spec: ``{"type": "function", "function": {"name", "description", "parameters"}}``.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        fn = spec.get("function") or {}
        self._meta = _SpecMetadata(
            description=str(fn.get("description") or ""),
            name=str(fn.get("name") or ""),
            fn_schema=None,
            parameters=dict(fn.get("parameters") or {"type": "object", "properties": {}}),
        )

    @property
    def metadata(self) -> ToolMetadata:
        """The tool's name, description and parameter schema."""
        return self._meta

    def __call__(self, input: Any) -> ToolOutput:
        """Never called: tools run in the application that asked the router, not in the tier.

        Raises:
            RuntimeError: Always.
        """
        raise RuntimeError(f"tool {self._meta.name!r} describes a tool for the model; the application runs it")


def _served_model(raw: Any, fallback: str) -> str:
    model = raw.get("model") if isinstance(raw, Mapping) else getattr(raw, "model", None)
    return str(model) if isinstance(model, str) and model else fallback


def _finish_reason(raw: Any) -> str | None:
    choices = raw.get("choices") if isinstance(raw, Mapping) else getattr(raw, "choices", None)
    if not choices:
        return None
    first = choices[0]
    reason = first.get("finish_reason") if isinstance(first, Mapping) else getattr(first, "finish_reason", None)
    return str(reason) if reason else None


class LlamaIndexBackend:
    """Serves tiers with LlamaIndex LLM objects.

    Args:
        llms: The LLM serving each tier.
        prices: Per-tier list prices, ``{"budget": {"input_cost_per_token": ..., "output_cost_per_token": ...}}``;
            tiers without one are priced from LiteLLM's price map by the LLM's ``metadata.model_name``
            (0.0 when the map does not know it).

    Raises:
        ConfigError: A tier's object is not a LlamaIndex ``LLM``, or a price entry is malformed.
    """

    def __init__(self, llms: Mapping[str, LLM], prices: Mapping[str, Mapping[str, float]] | None = None) -> None:
        for tier, llm in llms.items():
            if not isinstance(llm, LLM):
                raise ConfigError(
                    f"tier {tier!r} is a {type(llm).__name__}, not a LlamaIndex LLM",
                    path=f"tiers.{tier}",
                    hint="pass a llama_index.core.llms.LLM instance (e.g. OpenAI(...), LiteLLM(...)) or drop it",
                )
        self.llms = dict(llms)
        self.prices: dict[str, dict[str, float]] = {}
        for tier, price in (prices or {}).items():
            unknown = sorted(set(price) - set(_PRICE_KEYS))
            if unknown:
                raise ConfigError(
                    f"unknown price key(s) {unknown} for tier {tier!r}",
                    path=f"prices.{tier}",
                    hint=f"use {list(_PRICE_KEYS)}",
                )
            self.prices[tier] = {k: float(price.get(k, 0.0)) for k in _PRICE_KEYS}
        self._window: dict[str, int] = {}
        self._tools: dict[str, bool] = {}

    def _llm(self, tier: str) -> LLM:
        try:
            return self.llms[tier]
        except KeyError:
            raise KeyError(f"no LlamaIndex LLM serves tier {tier!r}; tiers: {sorted(self.llms)}") from None

    def tiers(self) -> list[str]:
        """Tiers served by an LLM object."""
        return list(self.llms)

    # ---- calling ------------------------------------------------------------------------------------

    def _prepare(self, tier: str, request: RouteRequest, params: Mapping[str, Any]) -> tuple[LLM, dict[str, Any]]:
        """The LLM and the keyword arguments of its chat call (``messages`` or ``chat_history`` + tools)."""
        llm = self._llm(tier)
        messages = [from_openai_message(m) for m in request.messages]
        kwargs = dict(params)
        if not (request.tools and isinstance(llm, FunctionCallingLLM)):
            return llm, {"messages": messages, **kwargs}
        choice = kwargs.pop("tool_choice", None)
        parallel = kwargs.pop("parallel_tool_calls", True)  # OpenAI's default
        if choice is not None:
            kwargs["tool_choice"] = choice
        return llm, {
            "tools": [SpecTool(t) for t in request.tools],
            "chat_history": messages,
            "allow_parallel_tool_calls": bool(parallel),
            "tool_required": choice == "required",
            **kwargs,
        }

    @staticmethod
    def _tool_calls(llm: LLM, response: ChatResponse, wanted: bool) -> list[ToolSelection]:
        if not wanted:
            return []
        if isinstance(llm, FunctionCallingLLM):
            try:
                return llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
            except NotImplementedError:
                pass
        return tool_calls_from_message(response.message)

    def _to_backend(self, tier: str, llm: LLM, response: ChatResponse, request: RouteRequest) -> BackendResponse:
        calls = tool_selections_to_calls(self._tool_calls(llm, response, bool(request.tools)))
        text = response.message.content or ""
        usage = usage_from_response(response) or self._estimate(tier, request, text)
        return BackendResponse(
            text=text,
            tool_calls=calls,
            finish_reason=_finish_reason(response.raw) or ("tool_calls" if calls else "stop"),
            usage=usage,
            served_model=_served_model(response.raw, llm.metadata.model_name),
            raw=response.raw,
        )

    async def acall(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> BackendResponse:
        """One call to the tier's LLM (``achat``, or ``achat_with_tools`` when the request has tools)."""
        llm, kw = self._prepare(tier, request, params)
        if "tools" in kw:
            assert isinstance(llm, FunctionCallingLLM)
            response = await asyncio.wait_for(llm.achat_with_tools(**kw), timeout_s)
        else:
            response = await asyncio.wait_for(llm.achat(**kw), timeout_s)
        return self._to_backend(tier, llm, response, request)

    async def astream(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[StreamChunk]:
        """Stream the tier's answer; ``timeout_s`` bounds the wait for each chunk.

        Text arrives as it streams; tool calls, the finish reason and usage come on the last chunk.
        """
        llm, kw = self._prepare(tier, request, params)
        if "tools" in kw:
            assert isinstance(llm, FunctionCallingLLM)
            gen = await asyncio.wait_for(llm.astream_chat_with_tools(**kw), timeout_s)
        else:
            gen = await asyncio.wait_for(llm.astream_chat(**kw), timeout_s)
        it = gen.__aiter__()
        last: ChatResponse | None = None
        seen = ""
        served = llm.metadata.model_name
        while True:
            try:
                response = await asyncio.wait_for(it.__anext__(), timeout_s)
            except StopAsyncIteration:
                break
            last = response
            content = response.message.content or ""
            delta = response.delta
            if delta is None:  # some integrations only give the text so far
                delta = content[len(seen) :] if content.startswith(seen) else content
            seen = content
            served = _served_model(response.raw, served)
            if delta:
                yield StreamChunk(text=delta, served_model=served, raw=response.raw)
        calls = tool_selections_to_calls(self._tool_calls(llm, last, bool(request.tools))) if last else []
        usage = usage_from_response(last) or self._estimate(tier, request, seen)
        yield StreamChunk(
            tool_call_deltas=[{"index": i, **c.to_openai()} for i, c in enumerate(calls)],
            finish_reason="tool_calls" if calls else "stop",
            usage=usage,
            served_model=served,
            raw=last.raw if last is not None else None,
        )

    # ---- what the cascade asks before and after calling ---------------------------------------------

    def _estimate(self, tier: str, request: RouteRequest, text: str) -> Usage:
        """Token counts when the LLM reported none (many integrations omit usage when streaming)."""
        return Usage(self.count_tokens(tier, request), _count_text(self._llm(tier).metadata.model_name, text))

    def context_window(self, tier: str) -> int | None:
        """The tier LLM's ``metadata.context_window``."""
        if tier not in self._window:
            self._window[tier] = int(self._llm(tier).metadata.context_window)
        return self._window[tier]

    def num_output(self, tier: str) -> int | None:
        """The tier LLM's ``metadata.num_output`` (None when it reports none)."""
        n = int(self._llm(tier).metadata.num_output)
        return n if n > 0 else None

    def count_tokens(self, tier: str, request: RouteRequest) -> int:
        """Prompt tokens, counted with LiteLLM's tokenizer for the LLM's model (estimated without LiteLLM)."""
        model = self._llm(tier).metadata.model_name
        try:
            import litellm

            kw: dict[str, Any] = {"model": model, "messages": [dict(m) for m in request.messages]}
            if request.tools:
                kw["tools"] = [dict(t) for t in request.tools]
            return int(litellm.token_counter(**kw))
        except Exception:  # no litellm, or a message shape its counter rejects: estimate
            text = "\n".join(request.texts) + (json.dumps(list(request.tools)) if request.tools else "")
            return len(text) // 4 + 4 * len(request.messages)

    def supports_tools(self, tier: str) -> bool:
        """Whether the tier's LLM is a ``FunctionCallingLLM`` whose metadata says it can call functions."""
        if tier not in self._tools:
            llm = self._llm(tier)
            self._tools[tier] = isinstance(llm, FunctionCallingLLM) and bool(llm.metadata.is_function_calling_model)
        return self._tools[tier]

    def price(self, tier: str, usage: Usage) -> float:
        """List price of the usage: the configured price, else LiteLLM's map for the model, else 0.0."""
        price = self.prices.get(tier)
        if price is not None:
            return usage.prompt_tokens * price["input_cost_per_token"] + (
                usage.completion_tokens * price["output_cost_per_token"]
            )
        try:
            import litellm

            p, c = litellm.cost_per_token(
                model=self._llm(tier).metadata.model_name,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception:  # not in the price map (or no litellm): unknown cost
            return 0.0
        return float(p) + float(c)


def _count_text(model: str, text: str) -> int:
    if not text:
        return 0
    try:
        import litellm

        return int(litellm.token_counter(model=model, text=text))
    except Exception:
        return max(1, len(text) // 4)
