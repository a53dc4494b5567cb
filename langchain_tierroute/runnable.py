"""``RouterRunnable``: route between whole runnables (chains, agents, pipelines) with tierroute's decision layers.

Some teams' tiers are not single models but pipelines: a cheap extractive chain, a RAG chain on a mid model,
a multi-step agent on a premium one. ``RouterRunnable`` decides on the input's text with the same layers as
:class:`~langchain_tierroute.ChatTierRoute` (override, rules, semantic, classifier, default), runs the chosen
tier's runnable, and on an exception falls back along ``cascade.fallbacks`` (bounded by ``max_escalations``;
a content-policy refusal stops unless ``on_content_policy`` names a tier). Retries inside a tier are the
runnable's own business (``.with_retry()``).

Which tier served is recorded three ways: the tier runnable's child run is tagged ``tierroute:<tier>``; a
custom callback event named ``tierroute`` carries the trace (``on_custom_event`` in callbacks and
``astream_events``), and the router's own run gets ``tierroute_tier`` / ``tierroute_layer`` metadata; with
``with_trace=True`` the output is ``{"output": ..., "tierroute": {...}}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.config import patch_config
from tierroute.errors import CascadeExhaustedError, ConfigError, ContentPolicyError, InvalidRequestError
from tierroute.errors_map import classify, safe_message
from tierroute.hooks import run_before
from tierroute.router import TierRouter
from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace

from langchain_tierroute._convert import route_metadata, to_openai_messages, usage_from_metadata
from langchain_tierroute._setup import load_config

__all__ = ["RouterRunnable"]

_FAIL_FAST = frozenset({FailureKind.AUTH, FailureKind.BAD_REQUEST})


class RouterRunnable(Runnable[Any, Any]):
    """A runnable that sends each input to the runnable of the tier tierroute's decision layers choose.

    Args:
        tiers: Tier name -> runnable (or function) serving it; every tier of the config needs one.
        config: The tierroute config (RouterConfig, dict or YAML path); ``model_list`` may be empty since the
            tiers are runnables. Its ``routing`` and ``cascade.fallbacks`` apply.
        router: A :class:`~tierroute.TierRouter` to take decisions from instead of ``config`` (its hooks run).
        input_key: For dict inputs, the key holding the text or messages to route on (default: every string
            value of the dict, joined).
        hooks: tierroute request hooks that may change the decision (budgets, sticky sessions).
        with_trace: Return ``{"output": <tier output>, "tierroute": <trace dict>}`` instead of the bare output.
        name: The runnable's name in traces.

    Raises:
        ConfigError: No config (or router), or a tier without a runnable.

    Example:
        >>> router = RouterRunnable(  # doctest: +SKIP
        ...     config={"tiers": ["cheap", "deep"], "routing": {"rules": [{"name": "faq", "tier": "cheap",
        ...             "keywords": ["opening hours"]}]}, "default_tier": "deep"},
        ...     tiers={"cheap": faq_chain, "deep": rag_chain},
        ... )
        >>> router.invoke({"question": "What are your opening hours?"})  # doctest: +SKIP
    """

    def __init__(
        self,
        tiers: Mapping[str, Any],
        *,
        config: Any = None,
        router: TierRouter | None = None,
        input_key: str | None = None,
        hooks: Sequence[Any] = (),
        with_trace: bool = False,
        name: str | None = None,
    ) -> None:
        if router is None:
            if config is None:
                raise ConfigError("RouterRunnable needs config=... or router=...", path="config")
            router = TierRouter(load_config(config, external=tiers.keys()), hooks=list(hooks))
        elif hooks:
            router.hooks.extend(hooks)
        missing = [t for t in router.config.tiers if t not in tiers]
        if missing:
            raise ConfigError(
                f"tier(s) {missing} have no runnable", path="tiers", hint="pass tiers={name: runnable} for every tier"
            )
        self.router = router
        self.runnables: dict[str, Runnable[Any, Any]] = {t: coerce_to_runnable(r) for t, r in tiers.items()}
        self.input_key = input_key
        self.with_trace = with_trace
        self.name = name or "RouterRunnable"

    # ---- requests and plans -------------------------------------------------------------------------

    def _messages(self, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
        if isinstance(value, PromptValue):
            return to_openai_messages(value.to_messages())
        if isinstance(value, BaseMessage):
            return to_openai_messages([value])
        if isinstance(value, Mapping):
            if self.input_key is not None:
                if self.input_key not in value:
                    raise InvalidRequestError(
                        f"input has no key {self.input_key!r} (input_key); keys: {sorted(map(str, value))}"
                    )
                return self._messages(value[self.input_key])
            text = "\n".join(v for v in value.values() if isinstance(v, str))
            return [{"role": "user", "content": text}]
        if isinstance(value, Sequence):
            return to_openai_messages(convert_to_messages(value))
        raise InvalidRequestError(
            f"cannot route a {type(value).__name__}; pass a string, messages, a prompt value or a dict "
            "(set input_key to say which value to route on)"
        )

    def _request(self, value: Any, config: RunnableConfig) -> RouteRequest:
        metadata = route_metadata(config.get("metadata"), config.get("tags"))
        return RouteRequest.from_messages(self._messages(value), metadata=metadata)

    def _next(self, tier: str, tried: set[str]) -> str | None:
        """The first untried tier reachable from ``tier`` through ``cascade.fallbacks`` (depth first)."""
        seen: set[str] = set()
        fallbacks = self.router.config.cascade.fallbacks

        def walk(t: str) -> str | None:
            for nxt in fallbacks.get(t, []):
                if nxt in seen:
                    continue
                seen.add(nxt)
                if nxt not in tried:
                    return nxt
                found = walk(nxt)
                if found:
                    return found
            return None

        return walk(tier)

    def _after_failure(self, trace: RouteTrace, tier: str, exc: BaseException, tried: set[str]) -> str:
        """Record a failed attempt and choose the next tier; raise when there is none."""
        cascade = self.router.config.cascade
        att = trace.attempts[-1]
        kind = classify(exc)
        att.failure, att.error = kind, safe_message(exc)
        if kind == FailureKind.CONTENT_POLICY:
            target = cascade.on_content_policy
            if target == "stop" or target in tried:
                raise ContentPolicyError(
                    f"tier {tier!r} refused on content-policy grounds: {att.error}", trace
                ) from exc
            return target
        if kind in _FAIL_FAST:
            raise CascadeExhaustedError(f"tier {tier!r} failed with {kind.value}, which is not retried", trace) from exc
        nxt = self._next(tier, tried)
        if nxt is None or trace.escalations >= cascade.max_escalations:
            why = "no fallback left" if nxt is None else f"max_escalations={cascade.max_escalations} reached"
            raise CascadeExhaustedError(f"tier {tier!r} failed ({att.error}); {why}", trace) from exc
        trace.escalations += 1
        return nxt

    @staticmethod
    def _note_output(att: Attempt, output: Any) -> None:
        meta = getattr(output, "response_metadata", None)
        usage = usage_from_metadata(getattr(output, "usage_metadata", None))
        if usage is not None:
            att.usage = usage
        inner = meta.get("tierroute") if isinstance(meta, Mapping) else None
        if isinstance(inner, Mapping):
            att.cost_usd = float(inner.get("cost_usd") or 0.0)
            att.served_model = inner.get("served_model") or att.served_model
        elif isinstance(meta, Mapping) and meta.get("model_name"):
            att.served_model = str(meta["model_name"])

    def _child(self, tier: str, config: RunnableConfig, run_manager: Any) -> RunnableConfig:
        return patch_config(config, callbacks=run_manager.get_child(f"tierroute:{tier}"))

    def _finish(self, trace: RouteTrace, output: Any, run_manager: Any) -> Any:
        self._annotate(trace, run_manager)
        return {"output": output, "tierroute": trace.to_dict()} if self.with_trace else output

    @staticmethod
    def _annotate(trace: RouteTrace, run_manager: Any) -> None:
        served = trace.served
        extra_meta = {
            "tierroute_tier": served.tier if served else None,
            "tierroute_layer": trace.decision.layer,
            "tierroute_decided_tier": trace.decision.tier,
        }
        for handler in run_manager.handlers:
            run_map = getattr(handler, "run_map", None)
            run = run_map.get(str(run_manager.run_id)) if isinstance(run_map, dict) else None
            extra = getattr(run, "extra", None)
            if isinstance(extra, dict):
                extra.setdefault("metadata", {}).update(extra_meta)

    # ---- sync ---------------------------------------------------------------------------------------

    def _decide(self, request: RouteRequest) -> RouteDecision:
        from tierroute._sync import run_sync

        decision = self.router.decide(request)
        if not self.router.hooks:
            return decision
        return run_sync(run_before(self.router.hooks, request, decision, {}))

    def _invoke(self, value: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> Any:
        request = self._request(value, config)
        trace = RouteTrace(self._decide(request))
        tier, tried = trace.decision.tier, set[str]()
        while True:
            tried.add(tier)
            att = Attempt(tier=tier, model_group=tier, served_model=self.runnables[tier].get_name())
            trace.attempts.append(att)
            child = self._child(tier, config, run_manager)
            t0 = time.perf_counter()
            try:
                output = self.runnables[tier].invoke(value, child)
            except Exception as exc:
                att.latency_s = time.perf_counter() - t0
                tier = self._after_failure(trace, tier, exc, tried)
                continue
            att.latency_s = time.perf_counter() - t0
            self._note_output(att, output)
            dispatch_custom_event("tierroute", trace.to_dict(), config=child)
            return self._finish(trace, output, run_manager)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Route ``input`` and return the chosen tier's output.

        Raises:
            ContentPolicyError: A tier refused and ``on_content_policy`` is ``stop``.
            CascadeExhaustedError: Every tier allowed to run failed; ``.trace`` has the attempts.
        """
        return self._call_with_config(self._invoke, input, config, **kwargs)

    def _stream(
        self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> Iterator[Any]:
        value = _single(inputs)
        request = self._request(value, config)
        trace = RouteTrace(self._decide(request))
        tier, tried = trace.decision.tier, set[str]()
        while True:
            tried.add(tier)
            att = Attempt(tier=tier, model_group=tier, served_model=self.runnables[tier].get_name())
            trace.attempts.append(att)
            child = self._child(tier, config, run_manager)
            t0 = time.perf_counter()
            it = iter(self.runnables[tier].stream(value, child))
            try:
                first = next(it)
            except StopIteration:
                first = _EMPTY
            except Exception as exc:
                att.latency_s = time.perf_counter() - t0
                tier = self._after_failure(trace, tier, exc, tried)
                continue
            break  # a tier that has produced output is not abandoned: its errors propagate
        dispatch_custom_event("tierroute", trace.to_dict(), config=child)
        self._annotate(trace, run_manager)
        if first is not _EMPTY:
            yield first
            yield from it
        att.latency_s = time.perf_counter() - t0

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """Route ``input`` and stream the chosen tier's output; fallbacks happen before its first chunk."""
        yield from self._transform_stream_with_config(iter([input]), self._stream, config, **kwargs)

    # ---- async --------------------------------------------------------------------------------------

    async def _adecide(self, request: RouteRequest) -> RouteDecision:
        decision = await self.router.adecide(request)
        return await run_before(self.router.hooks, request, decision, {})

    async def _ainvoke(self, value: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig) -> Any:
        request = self._request(value, config)
        trace = RouteTrace(await self._adecide(request))
        tier, tried = trace.decision.tier, set[str]()
        while True:
            tried.add(tier)
            att = Attempt(tier=tier, model_group=tier, served_model=self.runnables[tier].get_name())
            trace.attempts.append(att)
            child = self._child(tier, config, run_manager)
            t0 = time.perf_counter()
            try:
                output = await self.runnables[tier].ainvoke(value, child)
            except Exception as exc:
                att.latency_s = time.perf_counter() - t0
                tier = self._after_failure(trace, tier, exc, tried)
                continue
            att.latency_s = time.perf_counter() - t0
            self._note_output(att, output)
            await adispatch_custom_event("tierroute", trace.to_dict(), config=child)
            return self._finish(trace, output, run_manager)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async :meth:`invoke`."""
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    async def _astream(
        self, inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> AsyncIterator[Any]:
        value = await _asingle(inputs)
        request = self._request(value, config)
        trace = RouteTrace(await self._adecide(request))
        tier, tried = trace.decision.tier, set[str]()
        while True:
            tried.add(tier)
            att = Attempt(tier=tier, model_group=tier, served_model=self.runnables[tier].get_name())
            trace.attempts.append(att)
            child = self._child(tier, config, run_manager)
            it = self.runnables[tier].astream(value, child).__aiter__()
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                first = _EMPTY
            except Exception as exc:
                tier = self._after_failure(trace, tier, exc, tried)
                continue
            break
        await adispatch_custom_event("tierroute", trace.to_dict(), config=child)
        self._annotate(trace, run_manager)
        if first is not _EMPTY:
            yield first
            async for part in it:
                yield part

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""

        async def one() -> AsyncIterator[Any]:
            yield input

        async for part in self._atransform_stream_with_config(one(), self._astream, config, **kwargs):
            yield part


_EMPTY: Any = object()


def _single(inputs: Iterator[Any]) -> Any:
    items = list(inputs)
    if len(items) != 1:
        raise InvalidRequestError(f"RouterRunnable routes one input at a time, got {len(items)}")
    return items[0]


async def _asingle(inputs: AsyncIterator[Any]) -> Any:
    items = [item async for item in inputs]
    if len(items) != 1:
        raise InvalidRequestError(f"RouterRunnable routes one input at a time, got {len(items)}")
    return items[0]
