"""Prometheus counters, OpenTelemetry spans and LiteLLM callbacks see every routed request (real HTTP via LiteLLM
to FakeProvider; real prometheus-client registry; the OpenTelemetry SDK with an in-memory exporter)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from tierroute import BudgetExceededError, ContentPolicyError, RouterConfig, TierRouter
from tierroute.metrics import MetricsHook
from tierroute.router import Completion
from tierroute.testing import FakeProvider, Fault, ModelScript

from .cascade_helpers import config


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer", usage=(10, 5)) for t in ("budget", "mid", "premium")}
    with FakeProvider(scripts) as provider:
        yield provider


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, labels)
    return 0.0 if v is None else v


async def test_prometheus_counts_match_the_traces(fp: FakeProvider) -> None:
    fp.set_script(
        "budget-model",
        ModelScript(
            reply="budget answer",
            usage=(10, 5),
            faults=[Fault("server_error", calls={1, 2}), Fault("content_policy", calls={9})],
        ),
    )
    reg = CollectorRegistry()
    hook = MetricsHook(registry=reg, namespace="trt")
    router = TierRouter(config(fp.base_url, alerts={"fallback_rate": 0.01, "min_requests": 1}), hooks=[hook])
    router._alert_callbacks.append(hook.on_alert)
    results: list[Any] = []
    for i in range(8):
        try:
            results.append(await router.acomplete(f"q{i}"))
        except ContentPolicyError as exc:
            results.append(exc)
    traces = [r.trace for r in results]
    ok = [r for r in results if isinstance(r, Completion)]
    assert len(ok) == 7
    assert value(reg, "trt_requests_total", tier="mid", decided_tier="budget", layer="default", outcome="ok") == 1
    assert value(reg, "trt_requests_total", tier="budget", decided_tier="budget", layer="default", outcome="ok") == 6
    assert (
        value(
            reg,
            "trt_requests_total",
            tier="budget",
            decided_tier="budget",
            layer="default",
            outcome="ContentPolicyError",
        )
        == 1
    )
    assert value(reg, "trt_fallbacks_total", from_tier="budget", to_tier="mid") == 1
    assert value(reg, "trt_escalations_total") == 1
    assert value(reg, "trt_attempts_total", tier="budget", failure="server_error") == 2
    assert value(reg, "trt_attempts_total", tier="budget", failure="content_policy") == 1
    total_cost = sum(value(reg, "trt_cost_usd_total", tier=t) for t in ("budget", "mid", "premium"))
    assert total_cost == pytest.approx(sum(t.cost_usd for t in traces), rel=1e-12)
    cf = sum(value(reg, "trt_counterfactual_cost_usd_total", tier=t) for t in ("budget", "mid"))
    assert cf == pytest.approx(sum(t.counterfactual_cost_usd for t in traces), rel=1e-12)
    assert value(reg, "trt_tokens_total", tier="budget", kind="prompt") == 60
    assert value(reg, "trt_request_latency_seconds_count", tier="budget") == 7
    assert value(reg, "trt_alerts_total", kind="fallback_rate") == 1
    assert b"trt_requests_total" in generate_latest(reg)


async def test_otel_span_per_request_with_routing_attributes(fp: FakeProvider) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hook = MetricsHook(prometheus=False, otel=True, tracer=provider.get_tracer("test"))
    budgets = {"on_limit": "refuse", "limits": [{"scope": "global", "window": "day", "usd": 0.0}]}
    cfg = config(fp.base_url)
    router = TierRouter(cfg, hooks=[hook])
    c = await router.acomplete("hello", metadata={"request_id": "x"})
    refusing = TierRouter(RouterConfig.from_dict({**_plain(cfg), "budgets": budgets}), hooks=[hook])
    with pytest.raises(BudgetExceededError):
        await refusing.acomplete("over budget")
    ok_span, refused_span = exporter.get_finished_spans()
    a = dict(ok_span.attributes or {})
    assert ok_span.name == "tierroute.request" and a["tierroute.tier"] == "budget" and a["tierroute.layer"] == "default"
    assert a["tierroute.cost_usd"] == c.trace.cost_usd and a["gen_ai.usage.input_tokens"] == 10
    assert [e.name for e in ok_span.events] == ["attempt 1"] and ok_span.status.is_ok
    b = dict(refused_span.attributes or {})
    assert b["tierroute.outcome"] == "BudgetExceededError" and not refused_span.status.is_ok
    assert "refused" in str(b["tierroute.budget_action"])


def _plain(cfg: RouterConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="python")
    for d, src in zip(data["model_list"], cfg.model_list):
        d["litellm_params"]["api_key"] = src.litellm_params.api_key
    return data


class Seen(CustomLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.metadata: list[dict[str, Any]] = []

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.metadata.append(dict(kwargs.get("litellm_params", {}).get("metadata") or {}))

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.metadata.append(dict(kwargs.get("litellm_params", {}).get("metadata") or {}))


async def test_litellm_callbacks_receive_the_routing_metadata(fp: FakeProvider) -> None:
    seen = Seen()
    litellm.callbacks = [seen]
    try:
        fp.set_script("budget-model", ModelScript(reply="b", usage=(10, 5), faults=[Fault("server_error", first=2)]))
        data = _plain(config(fp.base_url))
        data["metrics"] = {"prometheus": True, "namespace": "trt_cfg"}
        router = TierRouter(RouterConfig.from_dict(data))
        assert router.metrics is not None and router.metrics.prom is not None  # built from the config
        await router.acomplete("hello", metadata={"task_type": "qa", "request_id": "r-1"}, temperature=0)
        for _ in range(100):  # LiteLLM logs in background tasks
            if len(ours(seen)) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        litellm.callbacks = []
    mine = ours(seen)
    tags = [(m["tierroute"]["tier"], m["tierroute"]["decided_tier"], m["tierroute"]["layer"]) for m in mine]
    assert sorted(tags) == [("budget", "budget", "default")] * 2 + [("mid", "budget", "default")]
    assert all(m["tierroute"]["task_type"] == "qa" and m["model_group"] == m["tierroute"]["tier"] for m in mine)


def ours(seen: Seen) -> list[dict[str, Any]]:
    """Metadata of the calls made for request r-1 (other tests' calls may still be logged late)."""
    return [m for m in seen.metadata if (m.get("tierroute") or {}).get("request_id") == "r-1"]
