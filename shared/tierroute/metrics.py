"""Observability hooks: Prometheus metrics (``prometheus-client``) and OpenTelemetry spans, both optional.

:class:`MetricsHook` is a request hook; each backend is imported only when the hook is built with it on.

Prometheus (names under ``namespace``, default ``tierroute``):

- ``tierroute_requests_total{tier, decided_tier, layer, outcome}``: finished requests;
- ``tierroute_attempts_total{tier, failure}``: calls made (``failure="none"`` for answers) and skipped tiers;
- ``tierroute_fallbacks_total{from_tier, to_tier}`` and ``tierroute_escalations_total``;
- ``tierroute_cost_usd_total{tier}`` and ``tierroute_counterfactual_cost_usd_total{tier}``;
- ``tierroute_tokens_total{tier, kind}`` (``prompt`` / ``completion``);
- ``tierroute_request_latency_seconds{tier}`` (histogram) and ``tierroute_alerts_total{kind}``.

OpenTelemetry: one ``tierroute.request`` span per request, started when the cascade starts (so LiteLLM's own
spans nest under it) and ended with the routing attributes (``tierroute.tier``, ``tierroute.decided_tier``,
``tierroute.layer``, ``tierroute.reason``, ``tierroute.cost_usd``...) and one event per attempt. Without an SDK
configured, OpenTelemetry's API makes these no-ops.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from tierroute.errors import MissingDependencyError

if TYPE_CHECKING:
    from tierroute.config import MetricsConfig
    from tierroute.hooks import RequestEvent
    from tierroute.types import RouteDecision, RouteRequest

__all__ = ["LATENCY_BUCKETS", "MetricsHook", "PrometheusMetrics"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Request latency histogram buckets, in seconds."""

_SHARED: dict[tuple[int, str], PrometheusMetrics] = {}
_SHARED_LOCK = threading.Lock()


class PrometheusMetrics:
    """The Prometheus collectors, registered once per registry and namespace (routers share them).

    Args:
        registry: A ``prometheus_client.CollectorRegistry``; default: the global registry.
        namespace: Metric name prefix.
    """

    def __init__(self, registry: Any = None, namespace: str = "tierroute") -> None:
        try:
            import prometheus_client as pc
        except ImportError as exc:
            raise MissingDependencyError("prometheus_client", "metrics", "Prometheus metrics") from exc
        reg = registry if registry is not None else pc.REGISTRY
        kw: dict[str, Any] = {"namespace": namespace, "registry": reg}
        self.registry = reg
        self.requests = pc.Counter("requests", "Finished requests.", ["tier", "decided_tier", "layer", "outcome"], **kw)
        self.attempts = pc.Counter("attempts", "Calls made and tiers skipped.", ["tier", "failure"], **kw)
        self.fallbacks = pc.Counter(
            "fallbacks", "Answers served by another tier than decided.", ["from_tier", "to_tier"], **kw
        )
        self.escalations = pc.Counter("escalations", "Moves to another tier after a failure or rejection.", **kw)
        self.cost = pc.Counter("cost_usd", "Spend in USD (every attempt).", ["tier"], **kw)
        self.counterfactual = pc.Counter(
            "counterfactual_cost_usd", "What the served tokens would have cost on the premium tier.", ["tier"], **kw
        )
        self.tokens = pc.Counter("tokens", "Tokens used.", ["tier", "kind"], **kw)
        self.latency = pc.Histogram(
            "request_latency_seconds", "Request latency.", ["tier"], buckets=LATENCY_BUCKETS, **kw
        )
        self.alerts = pc.Counter("alerts", "Alerts fired.", ["kind"], **kw)

    @classmethod
    def shared(cls, registry: Any = None, namespace: str = "tierroute") -> PrometheusMetrics:
        """The collectors for ``(registry, namespace)``, created on first use."""
        with _SHARED_LOCK:
            key = (id(registry), namespace)
            found = _SHARED.get(key)
            if found is None:
                found = _SHARED[key] = cls(registry, namespace)
            return found

    def observe(self, event: RequestEvent) -> None:
        """Count one finished request."""
        trace = event.trace
        decision = event.decision or (trace.decision if trace is not None else None)
        decided = decision.tier if decision is not None else "none"
        served = trace.served if trace is not None else None
        tier = served.tier if served is not None else decided
        layer = decision.layer if decision is not None else "none"
        self.requests.labels(tier, decided, layer, event.outcome).inc()
        self.latency.labels(tier).observe(event.latency_s)
        if trace is None:
            return
        for a in trace.attempts:
            kind = "skipped" if a.skipped else (a.failure.value if a.failure is not None else "none")
            self.attempts.labels(a.tier, kind).inc()
            if a.cost_usd:
                self.cost.labels(a.tier).inc(a.cost_usd)
            if a.usage.prompt_tokens:
                self.tokens.labels(a.tier, "prompt").inc(a.usage.prompt_tokens)
            if a.usage.completion_tokens:
                self.tokens.labels(a.tier, "completion").inc(a.usage.completion_tokens)
        if trace.fell_back and served is not None:
            self.fallbacks.labels(decided, served.tier).inc()
        if trace.escalations:
            self.escalations.inc(trace.escalations)
        if trace.counterfactual_cost_usd:
            self.counterfactual.labels(tier).inc(trace.counterfactual_cost_usd)


def _tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry", "otel", "OpenTelemetry spans") from exc
    return trace.get_tracer("tierroute")


def span_attributes(event: RequestEvent) -> dict[str, Any]:
    """The routing attributes of a finished request (for spans and logs)."""
    trace = event.trace
    decision = event.decision or (trace.decision if trace is not None else None)
    served = trace.served if trace is not None else None
    attrs: dict[str, Any] = {"tierroute.outcome": event.outcome, "tierroute.stream": event.stream}
    if decision is not None:
        attrs.update(
            {
                "tierroute.decided_tier": decision.tier,
                "tierroute.layer": decision.layer,
                "tierroute.reason": decision.reason[:500],
                "tierroute.tier": served.tier if served is not None else decision.tier,
            }
        )
        if decision.score is not None:
            attrs["tierroute.score"] = float(decision.score)
    if trace is not None:
        attrs.update(
            {
                "tierroute.attempts": len(trace.attempts),
                "tierroute.cost_usd": trace.cost_usd,
                "tierroute.counterfactual_cost_usd": trace.counterfactual_cost_usd,
                "tierroute.fell_back": trace.fell_back,
                "tierroute.escalations": trace.escalations,
            }
        )
    if served is not None:
        attrs["gen_ai.response.model"] = served.served_model or ""
        attrs["gen_ai.usage.input_tokens"] = served.usage.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = served.usage.completion_tokens
    budget = event.extra.get("budget")
    if isinstance(budget, dict) and budget.get("action"):
        attrs["tierroute.budget_action"] = str(budget["action"])
    return attrs


class MetricsHook:
    """Request hook that feeds Prometheus and/or OpenTelemetry.

    Args:
        prometheus: Count requests in Prometheus collectors.
        otel: Emit an OpenTelemetry span per request.
        registry: Prometheus registry (default: the global one).
        namespace: Prometheus metric name prefix.
        tracer: An OpenTelemetry tracer (default: ``trace.get_tracer("tierroute")``).

    Raises:
        MissingDependencyError: A requested backend's package is not installed.
    """

    def __init__(
        self,
        *,
        prometheus: bool = True,
        otel: bool = False,
        registry: Any = None,
        namespace: str = "tierroute",
        tracer: Any = None,
    ) -> None:
        self.prom = PrometheusMetrics.shared(registry, namespace) if prometheus else None
        self.tracer = (tracer or _tracer()) if otel else None

    @classmethod
    def from_config(cls, cfg: MetricsConfig) -> MetricsHook:
        """The hook a ``metrics`` config section describes."""
        return cls(prometheus=cfg.prometheus, otel=cfg.otel, namespace=cfg.namespace)

    async def before(
        self, request: RouteRequest, decision: RouteDecision, extra: dict[str, Any]
    ) -> RouteDecision | None:
        """Start the request span and make it current (LiteLLM's spans become its children)."""
        if self.tracer is None:
            return None
        from opentelemetry import context, trace

        span = self.tracer.start_span("tierroute.request", attributes={"tierroute.decided_tier": decision.tier})
        extra["otel_span"] = span
        extra["otel_token"] = context.attach(trace.set_span_in_context(span))
        return None

    async def after(self, event: RequestEvent) -> None:
        """Count the request and end its span."""
        if self.prom is not None:
            self.prom.observe(event)
        if self.tracer is None:
            return
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        span = event.extra.pop("otel_span", None)
        token = event.extra.pop("otel_token", None)
        if span is None:  # refused before the cascade: a span for the whole request, after the fact
            span = self.tracer.start_span("tierroute.request", start_time=int(event.started_at * 1e9))
        span.set_attributes(span_attributes(event))
        if event.trace is not None:
            for i, a in enumerate(event.trace.attempts):
                attrs: dict[str, Any] = {"tier": a.tier, "latency_s": a.latency_s, "cost_usd": a.cost_usd}
                attrs["failure"] = a.failure.value if a.failure is not None else "none"
                if a.served_model:
                    attrs["model"] = a.served_model
                attrs["skipped"] = a.skipped
                span.add_event(f"attempt {i + 1}", attributes=attrs)
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.outcome))
            span.record_exception(event.error)
        span.end(end_time=int((event.started_at + event.latency_s) * 1e9) if token is None else time.time_ns())
        if token is not None:
            with contextlib.suppress(Exception):  # a stream may end in another context than it started
                context.detach(token)

    def on_alert(self, alert: Any) -> None:
        """Alert callback: count alerts by kind."""
        if self.prom is not None:
            self.prom.alerts.labels(str(getattr(alert, "kind", "unknown"))).inc()
