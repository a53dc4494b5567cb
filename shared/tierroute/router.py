"""``TierRouter``: the entry point of the core: decide, then execute through the cascade."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierroute.backends.base import Backend, BackendResponse, StreamChunk, TierBackends
from tierroute.config import RouterConfig
from tierroute.errors import InvalidRequestError
from tierroute.hooks import RequestEvent, run_after, run_before
from tierroute.policies.chain import DecisionLayer, PolicyChain
from tierroute.types import RouteDecision, RouteRequest, RouteTrace

__all__ = ["CHAT_PARAMS", "Completion", "RouteStream", "TierRouter"]

RequestLike = RouteRequest | str | Iterable[Mapping[str, Any]]

#: OpenAI chat-completion parameters passed through to the tier; anything else is a typo and an error.
CHAT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "user",
        "response_format",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "metadata",
        "extra_headers",
    }
)


@dataclass(slots=True)
class Completion:
    """An answer and how it was obtained.

    Attributes:
        response: The served answer (text, tool calls, usage, served model, raw provider payload).
        trace: The decision and every attempt.
    """

    response: BackendResponse
    trace: RouteTrace

    @property
    def text(self) -> str:
        """The answer text."""
        return self.response.text

    @property
    def decision(self) -> RouteDecision:
        """The routing decision."""
        return self.trace.decision


class RouteStream:
    """An async (and sync) iterator of :class:`StreamChunk` whose :attr:`trace` fills in as it runs."""

    def __init__(self, agen: AsyncIterator[StreamChunk], traces: list[RouteTrace]) -> None:
        self._agen = agen
        self._traces = traces

    @property
    def trace(self) -> RouteTrace | None:
        """The trace (complete once the stream is exhausted)."""
        return self._traces[0] if self._traces else None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._agen

    def __iter__(self) -> Iterator[StreamChunk]:
        from tierroute._sync import iter_sync

        return iter_sync(self._agen)


class TierRouter:
    """Decides which tier serves each request and executes it through the cascade.

    Args:
        config: A validated :class:`~tierroute.config.RouterConfig`.
        encoder: A semantic-router ``DenseEncoder`` to use instead of the configured encoder.
        classifier: A trained classifier layer for the chain's classifier slot.
        backends: Backends for some tiers (e.g. framework model objects); the rest are LiteLLM model groups.
        store: Shared state; default from ``config.state`` (in-memory, or Redis).
        checks: Extra acceptance checks, callables ``(request, response) -> bool | (bool, reason)``.
        alert_callbacks: Called with each fallback/escalation-rate alert.
        hooks: Request hooks (ledger, budgets, metrics): see :mod:`tierroute.hooks`.

    Example:
        >>> router = TierRouter.from_yaml("examples/tierroute.yaml")  # doctest: +SKIP
        >>> router.decide("tl;dr of this thread please").tier  # doctest: +SKIP
        'budget'
    """

    def __init__(
        self,
        config: RouterConfig,
        *,
        encoder: Any | None = None,
        classifier: DecisionLayer | None = None,
        backends: Mapping[str, Backend] | None = None,
        store: Any | None = None,
        checks: Sequence[Callable[..., Any]] = (),
        alert_callbacks: Sequence[Callable[..., None]] = (),
        hooks: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.chain = PolicyChain(config, encoder=encoder, classifier=classifier)
        self._backends = dict(backends or {})
        self._store = store
        self._checks = list(checks)
        self._alert_callbacks = list(alert_callbacks)
        self._cascade: Any = None
        self.ledger: Any = None
        self.budgets: Any = None
        self.metrics: Any = None
        self.hooks: list[Any] = [*self._config_hooks(), *hooks]
        if self.ledger is not None:
            self.hooks.append(self.ledger)
        if self.metrics is not None:
            self.hooks.append(self.metrics)
        from tierroute.backends.litellm import RoutingMetadataHook

        self.hooks.append(RoutingMetadataHook())

    def _config_hooks(self) -> list[Any]:
        """Build the ledger, budget and metrics hooks the config asks for (budgets run first: they may downgrade)."""
        cfg = self.config
        out: list[Any] = []
        if cfg.metrics is not None:
            from tierroute.metrics import MetricsHook

            self.metrics = MetricsHook.from_config(cfg.metrics)
            self._alert_callbacks.append(self.metrics.on_alert)
        if cfg.budgets is not None:
            from tierroute.budgets import BudgetGuard

            self.budgets = BudgetGuard.from_config(
                cfg,
                backend=lambda: self.cascade.backend,
                state=lambda: self.cascade.store,
                alert_callbacks=self._alert_callbacks,
            )
            out.append(self.budgets)
        if cfg.ledger.url and cfg.ledger.enabled:
            from tierroute.ledger import Ledger

            self.ledger = Ledger.from_config(cfg.ledger)
        return out

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **kwargs: Any) -> TierRouter:
        """Build a router from a YAML config file.

        Raises:
            ConfigError: The file is missing or invalid.
        """
        external = frozenset((kwargs.get("backends") or {}).keys())
        return cls(RouterConfig.from_yaml(path, external_tiers=external), **kwargs)

    # ---- deciding -----------------------------------------------------------------------------------

    @staticmethod
    def _request(
        request: RequestLike, tools: Iterable[Mapping[str, Any]] | None, metadata: Mapping[str, Any] | None
    ) -> RouteRequest:
        if isinstance(request, RouteRequest):
            if tools is None and metadata is None:
                return request
            return RouteRequest.from_messages(
                request.messages,
                tools=tools if tools is not None else request.tools,
                metadata={**request.metadata, **(metadata or {})},
            )
        return RouteRequest.from_messages(request, tools=tools, metadata=metadata)

    def decide(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> RouteDecision:
        """Choose a tier for a prompt, a message list or a :class:`RouteRequest` (no model is called).

        Raises:
            InvalidRequestError: The messages cannot be routed (empty, bad roles, malformed content).
            RoutingError: A decision layer failed.
        """
        return self.chain.decide(self._request(request, tools, metadata), explain=explain)

    async def adecide(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> RouteDecision:
        """Async :meth:`decide`."""
        return await self.chain.adecide(self._request(request, tools, metadata), explain=explain)

    # ---- executing ----------------------------------------------------------------------------------

    @property
    def cascade(self) -> Any:
        """The :class:`~tierroute.cascade.Cascade` (built on first use)."""
        if self._cascade is None:
            from tierroute.backends.litellm import LiteLLMBackend
            from tierroute.cascade import Cascade
            from tierroute.state import build_state_store

            litellm_tiers = [t for t in self.config.tiers if t not in self._backends]
            by_tier: dict[str, Backend] = dict(self._backends)
            if litellm_tiers:
                lb = LiteLLMBackend(self.config)
                by_tier.update({t: lb for t in litellm_tiers})
            store = self._store if self._store is not None else build_state_store(self.config.state)
            self._store = store
            self._cascade = Cascade(
                self.config, TierBackends(by_tier), store, checks=self._checks, alert_callbacks=self._alert_callbacks
            )
        return self._cascade

    @staticmethod
    def _params(params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - CHAT_PARAMS)
        if unknown:
            raise InvalidRequestError(f"unknown chat parameter(s) {unknown}; supported: {sorted(CHAT_PARAMS)}")
        return dict(params)

    async def acomplete(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Completion:
        """Route and execute a chat request; ``params`` are OpenAI chat parameters (temperature, max_tokens...).

        Raises:
            InvalidRequestError: Bad messages or an unknown parameter.
            ContentPolicyError: The provider refused; not escalated.
            EscalationBudgetError: Escalation needed but the window's budget is spent.
            CascadeExhaustedError: Every allowed attempt failed.
        """
        req = self._request(request, tools, metadata)
        chat = self._params(params)
        event = RequestEvent(req, None, None)
        event.extra["params"] = chat
        t0 = time.perf_counter()
        try:
            decision = await self.chain.adecide(req)
            event.decision = decision = await run_before(self.hooks, req, decision, event.extra)
            result = await self.cascade.run(decision, req, chat)
            event.trace, event.response = result.trace, result.response
            return Completion(result.response, result.trace)
        except Exception as exc:
            event.error = exc
            event.trace = event.trace or getattr(exc, "trace", None)
            raise
        finally:
            event.latency_s = time.perf_counter() - t0
            if self.hooks:
                await run_after(self.hooks, event)

    def complete(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Completion:
        """Sync :meth:`acomplete` (runs on tierroute's background loop)."""
        from tierroute._sync import run_sync

        return run_sync(self.acomplete(request, tools=tools, metadata=metadata, **params))

    def astream(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> RouteStream:
        """Route and stream a chat request. Retries and fallbacks happen before the first token.

        Returns:
            A :class:`RouteStream`; iterate it (``async for``) for chunks; ``.trace`` has the attempts.
        """
        req = self._request(request, tools, metadata)
        chat = self._params(params)
        traces: list[RouteTrace] = []

        async def gen() -> AsyncIterator[StreamChunk]:
            event = RequestEvent(req, None, None, stream=True)
            event.extra["params"] = chat
            t0 = time.perf_counter()
            text: list[str] = []
            try:
                decision = await self.chain.adecide(req)
                event.decision = decision = await run_before(self.hooks, req, decision, event.extra)
                async for chunk in self.cascade.stream(decision, req, chat, traces):
                    text.append(chunk.text)
                    yield chunk
            except Exception as exc:
                event.error = exc
                raise
            finally:
                event.trace = traces[0] if traces else getattr(event.error, "trace", None)
                served = event.trace.served if event.trace is not None else None
                if served is not None and event.error is None:
                    event.response = BackendResponse(
                        text="".join(text),
                        usage=served.usage,
                        served_model=served.served_model,
                        cost_usd=served.cost_usd,
                    )
                event.latency_s = time.perf_counter() - t0
                if self.hooks:
                    await run_after(self.hooks, event)

        return RouteStream(gen(), traces)

    def stream(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> RouteStream:
        """Sync :meth:`astream`: iterate the result with a plain ``for``."""
        return self.astream(request, tools=tools, metadata=metadata, **params)

    # ---- health and lifecycle -----------------------------------------------------------------------

    async def ahealth(self) -> dict[str, dict[str, Any]]:
        """Each tier's circuit: ``{"state", "failures", "cooldown_until", "probe_in_flight"}``, plus alert counters."""
        snap: dict[str, dict[str, Any]] = await self.cascade.breaker.snapshot(self.config.tiers)
        return snap

    def health(self) -> dict[str, dict[str, Any]]:
        """Sync :meth:`ahealth`."""
        from tierroute._sync import run_sync

        return run_sync(self.ahealth())

    def counters(self) -> dict[str, int]:
        """Totals since start: requests, fallbacks, escalations, alerts (for metrics)."""
        alerts = self.cascade.alerts
        return dict(alerts.counters()) if alerts is not None else {}

    async def aclose(self) -> None:
        """Flush the ledger (every row of a finished request is committed) and release connections.

        Ledgers passed in ``hooks`` are flushed and closed too.
        """
        from tierroute.ledger import Ledger

        for hook in self.hooks:
            if isinstance(hook, Ledger):
                await hook.aclose()
        if self.budgets is not None:
            await self.budgets.aclose()
        if self._store is not None:
            await self._store.aclose()

    async def __aenter__(self) -> TierRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
