"""``LangChainBackend``: tiers served by LangChain chat models (``ChatOpenAI``, ``ChatAnthropic``, ...).

It implements tierroute's backend protocol (:class:`tierroute.backends.base.Backend`), so the cascade retries,
falls back and prices these tiers exactly as it does LiteLLM model groups. Provider exceptions raised by a tier
model propagate as they are (an ``openai.RateLimitError`` stays one) and :func:`tierroute.errors_map.classify`
classifies them. Build tier models with ``max_retries=0``: the cascade owns retries.

Tier models are called without the caller's LangChain callbacks, so their tokens do not reach stream handlers a
second time; every attempt (tier, served model, failure kind, tokens, cost) is in the answer's
``response_metadata["tierroute"]["attempts"]``. (With tracing switched on globally by environment variable,
LangSmith still records each tier call, as a run of its own.)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from tierroute.backends.base import BackendResponse, StreamChunk
from tierroute.errors import ConfigError
from tierroute.tokens import count_tokens
from tierroute.types import RouteRequest, Usage

from langchain_tierroute._convert import (
    backend_response_from_message,
    to_langchain_messages,
    to_langchain_tool_choice,
    usage_from_metadata,
)

__all__ = ["LangChainBackend", "model_name_of"]

log = logging.getLogger("tierroute")

_PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")
#: Tier calls run without the caller's callbacks: their tokens must not reach stream handlers twice (LangGraph's
#: "messages" mode, ``astream_events``) and each attempt is already in ``response_metadata["tierroute"]``.
_DETACHED: RunnableConfig = {"callbacks": []}
#: Chat parameters that shape the call rather than being passed through as call kwargs.
_BIND_PARAMS = frozenset({"tool_choice", "parallel_tool_calls", "stop"})


def model_name_of(model: BaseChatModel) -> str:
    """The provider model a LangChain chat model calls (``model_name``/``model``), else its class name."""
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _can_bind_tools(model: BaseChatModel) -> bool:
    if type(model).bind_tools is BaseChatModel.bind_tools:
        return False
    profile = model.profile or {}
    return profile.get("tool_calling") is not False


class LangChainBackend:
    """Calls tiers that are LangChain chat models.

    Args:
        models: Tier name -> chat model.
        prices: Tier name -> ``{"input_cost_per_token": ..., "output_cost_per_token": ...}`` (USD). Tiers
            without an entry are priced from LiteLLM's price map by the model's name when LiteLLM knows it,
            else at 0.
        context_windows: Tier name -> maximum input tokens; default from the model's LangChain profile
            (``max_input_tokens``), else no pre-check.

    Raises:
        ConfigError: A model is not a LangChain chat model, or a price entry has unknown keys.
    """

    def __init__(
        self,
        models: Mapping[str, BaseChatModel],
        *,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        context_windows: Mapping[str, int] | None = None,
    ) -> None:
        for tier, model in models.items():
            if not isinstance(model, BaseChatModel):
                raise ConfigError(
                    f"tier {tier!r} is a {type(model).__name__}, not a LangChain chat model",
                    path=f"tiers.{tier}",
                    hint="pass a BaseChatModel such as ChatOpenAI(...), or a tierroute Backend",
                )
            retries = getattr(model, "max_retries", None)
            if isinstance(retries, int) and retries > 0:
                log.warning(
                    "tier %r model retries by itself (max_retries=%d); build it with max_retries=0 so tierroute's "
                    "cascade owns retries and fallbacks",
                    tier,
                    retries,
                )
        for tier, price in (prices or {}).items():
            unknown = sorted(set(price) - set(_PRICE_KEYS))
            if unknown:
                raise ConfigError(
                    f"unknown price key(s) {unknown} for tier {tier!r}",
                    path=f"tier_prices.{tier}",
                    hint=f"use {list(_PRICE_KEYS)} (USD per token)",
                )
        self.models = dict(models)
        self.prices = {t: dict(p) for t, p in (prices or {}).items()}
        self.windows = dict(context_windows or {})
        self._map_prices: dict[str, tuple[float, float] | None] = {}
        self._bind_params: dict[type, frozenset[str]] = {}

    # ---- calling ------------------------------------------------------------------------------------

    def tiers(self) -> list[str]:
        """The tiers these models serve."""
        return list(self.models)

    def _bind_tools_params(self, model: BaseChatModel) -> frozenset[str]:
        cls = type(model)
        if cls not in self._bind_params:
            self._bind_params[cls] = frozenset(inspect.signature(model.bind_tools).parameters)
        return self._bind_params[cls]

    def _prepare(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any]
    ) -> tuple[Runnable[Any, Any], list[BaseMessage], dict[str, Any]]:
        model = self.models[tier]
        runnable: Runnable[Any, Any] = model
        if request.tools:
            bind: dict[str, Any] = {}
            choice = to_langchain_tool_choice(params.get("tool_choice"))
            if choice is not None:
                bind["tool_choice"] = choice
            if params.get("parallel_tool_calls") is not None and "parallel_tool_calls" in self._bind_tools_params(
                model
            ):
                bind["parallel_tool_calls"] = params["parallel_tool_calls"]
            runnable = model.bind_tools([dict(t) for t in request.tools], **bind)
        kwargs = {k: v for k, v in params.items() if k not in _BIND_PARAMS and v is not None}
        if params.get("stop"):
            stop = params["stop"]
            kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
        return runnable, to_langchain_messages(request.messages), kwargs

    async def acall(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> BackendResponse:
        """One call to the tier's model; its exceptions propagate unchanged (``TimeoutError`` past ``timeout_s``)."""
        runnable, messages, kwargs = self._prepare(tier, request, params)
        message = await asyncio.wait_for(runnable.ainvoke(messages, _DETACHED, **kwargs), timeout_s)
        if not isinstance(message, BaseMessage):
            raise TypeError(f"tier {tier!r} model returned a {type(message).__name__}, not a message")
        return backend_response_from_message(message, model_name_of(self.models[tier]))

    async def astream(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[StreamChunk]:
        """Stream the tier's model; each chunk must arrive within ``timeout_s``.

        A LangChain model reports failure by raising, so a stream that ends normally is complete: its closing
        chunk carries the model's finish reason (or ``stop`` / ``tool_calls`` when it reported none) and the
        summed usage.
        """
        runnable, messages, kwargs = self._prepare(tier, request, params)
        default_model = model_name_of(self.models[tier])
        it = runnable.astream(messages, _DETACHED, **kwargs).__aiter__()
        finish: str | None = None
        served: str | None = None
        usage = Usage()
        saw_usage = False
        saw_tools = False
        try:
            while True:
                try:
                    part = await asyncio.wait_for(it.__anext__(), timeout_s)
                except StopAsyncIteration:
                    break
                if not isinstance(part, AIMessageChunk):
                    continue
                meta = part.response_metadata or {}
                finish = meta.get("finish_reason") or meta.get("stop_reason") or finish
                served = meta.get("model_name") or meta.get("model") or served
                got = usage_from_metadata(part.usage_metadata)
                if got is not None:
                    saw_usage = True
                    usage = Usage(
                        usage.prompt_tokens + got.prompt_tokens, usage.completion_tokens + got.completion_tokens
                    )
                deltas = [
                    {
                        "index": c.get("index") if c.get("index") is not None else 0,
                        "id": c.get("id"),
                        "type": "function",
                        "function": {"name": c.get("name"), "arguments": c.get("args") or ""},
                    }
                    for c in part.tool_call_chunks
                ]
                saw_tools = saw_tools or bool(deltas)
                text = part.text
                if text or deltas:
                    yield StreamChunk(text=text, tool_call_deltas=deltas, served_model=served or default_model)
        finally:
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()
        yield StreamChunk(
            finish_reason=str(finish or ("tool_calls" if saw_tools else "stop")),
            usage=usage if saw_usage else None,
            served_model=served or default_model,
        )

    # ---- capabilities and prices --------------------------------------------------------------------

    def context_window(self, tier: str) -> int | None:
        """Configured window, else the model profile's ``max_input_tokens``, else None (no pre-check)."""
        if tier in self.windows:
            return self.windows[tier]
        profile = self.models[tier].profile or {}
        size = profile.get("max_input_tokens")
        return int(size) if isinstance(size, int) else None

    def count_tokens(self, tier: str, request: RouteRequest) -> int:
        """Prompt tokens (cl100k estimate over every message's text, plus 4 per message for framing)."""
        return sum(count_tokens(t) for t in request.texts) + 4 * len(request.texts)

    def supports_tools(self, tier: str) -> bool:
        """Whether the tier's model implements ``bind_tools`` (and its profile does not deny tool calling)."""
        return _can_bind_tools(self.models[tier])

    def _per_token(self, tier: str) -> tuple[float, float] | None:
        if tier in self.prices:
            p = self.prices[tier]
            return float(p.get("input_cost_per_token", 0.0)), float(p.get("output_cost_per_token", 0.0))
        if tier not in self._map_prices:
            self._map_prices[tier] = _litellm_price(model_name_of(self.models[tier]))
        return self._map_prices[tier]

    def price(self, tier: str, usage: Usage) -> float:
        """List price of the usage on the tier (configured prices, else LiteLLM's map, else 0)."""
        per = self._per_token(tier)
        if per is None:
            return 0.0
        return usage.prompt_tokens * per[0] + usage.completion_tokens * per[1]


def _litellm_price(model: str) -> tuple[float, float] | None:
    """Per-token prices from LiteLLM's price map (a plain lookup: no provider guessing, no network)."""
    try:
        import litellm
    except ImportError:
        return None
    info = litellm.model_cost.get(model)
    if not isinstance(info, Mapping):
        return None
    inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if inp is None and out is None:
        return None
    return float(inp or 0.0), float(out or 0.0)
