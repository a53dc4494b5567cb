"""Fault matrix: for each failure kind, through real HTTP to FakeProvider via LiteLLM, the trace shows exactly
the attempts the config implies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from tierroute import CascadeExhaustedError, ContentPolicyError, EscalationBudgetError, TierRouter
from tierroute.errors import StreamInterruptedError
from tierroute.testing import FakeProvider, Fault, ModelScript

from .cascade_helpers import config, shape


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer") for t in ("budget", "mid", "premium")}
    with FakeProvider(scripts) as provider:
        yield provider


def fault(fp: FakeProvider, tier: str, **kw: Any) -> None:
    fp.set_script(f"{tier}-model", ModelScript(reply=f"{tier} answer", faults=[Fault(**kw)]))


def calls(fp: FakeProvider, tier: str) -> int:
    return len(fp.requests_for(f"{tier}-model"))


async def test_rate_limit_retries_same_tier_after_retry_after(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="rate_limit", first=1, retry_after=0.4)
    router = TierRouter(config(fp.base_url))
    c = await router.acomplete("hello")
    assert shape(c.trace) == [("budget", "rate_limit", False), ("budget", None, False)]
    assert c.trace.attempts[0].retry_after_s == pytest.approx(0.4)
    reqs = fp.requests_for("budget-model")
    assert reqs[1].timestamp - reqs[0].timestamp >= 0.4
    assert c.text == "budget answer" and calls(fp, "mid") == 0


async def test_rate_limit_exhausted_falls_back(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="rate_limit", retry_after=0.01)
    c = await TierRouter(config(fp.base_url)).acomplete("hello")
    assert shape(c.trace) == [("budget", "rate_limit", False)] * 3 + [("mid", None, False)]
    assert c.text == "mid answer" and c.trace.fell_back


async def test_retry_after_longer_than_allowed_falls_back_at_once(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="rate_limit", retry_after=30)
    c = await TierRouter(config(fp.base_url)).acomplete("hello")
    assert shape(c.trace) == [("budget", "rate_limit", False), ("mid", None, False)]


async def test_timeout_retried_once_then_fallback(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="timeout", hang_s=3)
    c = await TierRouter(config(fp.base_url, timeout_s=0.5)).acomplete("hello")
    assert shape(c.trace) == [("budget", "timeout", False)] * 2 + [("mid", None, False)]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_retried_once_then_fallback(fp: FakeProvider, status: int) -> None:
    fault(fp, "budget", kind="server_error", status=status)
    c = await TierRouter(config(fp.base_url)).acomplete("hello")
    assert shape(c.trace) == [("budget", "server_error", False)] * 2 + [("mid", None, False)]


async def test_connection_reset_retried_once_then_fallback(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="connection_reset")
    c = await TierRouter(config(fp.base_url)).acomplete("hello")
    assert shape(c.trace) == [("budget", "connection", False)] * 2 + [("mid", None, False)]


async def test_content_policy_stops_with_one_attempt(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="content_policy")
    with pytest.raises(ContentPolicyError) as ei:
        await TierRouter(config(fp.base_url)).acomplete("something bad")
    assert ei.value.trace is not None and shape(ei.value.trace) == [("budget", "content_policy", False)]
    assert isinstance(ei.value.__cause__, litellm.ContentPolicyViolationError)
    assert calls(fp, "mid") == calls(fp, "premium") == 0


async def test_content_policy_to_configured_policy_tier(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="content_policy")
    c = await TierRouter(config(fp.base_url, on_content_policy="premium")).acomplete("x")
    assert shape(c.trace) == [("budget", "content_policy", False), ("premium", None, False)]
    assert calls(fp, "mid") == 0


# Tests that set model_info windows use their own model names: LiteLLM registers a Router's model_info in its
# process-wide price map, so a window set here would leak into every later test using the same model name.


async def test_context_too_long_goes_to_premium_only(fp: FakeProvider) -> None:
    for t in ("budget", "mid", "premium"):
        fp.set_script(f"win-{t}-model", ModelScript(reply=f"{t} answer"))
    windows = {"budget": 100, "mid": 200, "premium": 100_000}
    router = TierRouter(config(fp.base_url, windows=windows, model_prefix="win-"))
    c = await router.acomplete("word " * 500)
    assert shape(c.trace) == [("budget", "context_window", True), ("premium", None, False)]
    assert len(fp.requests_for("win-budget-model")) == len(fp.requests_for("win-mid-model")) == 0
    assert len(fp.requests_for("win-premium-model")) == 1


async def test_context_error_from_provider_moves_to_bigger_tier() -> None:
    # no window known anywhere (fresh model names: LiteLLM keeps model_info of earlier Routers globally),
    # so the pre-check cannot help; the provider's 400 does
    scripts = {
        "ctx-budget-model": ModelScript(reply="x", context_window=50),
        "ctx-mid-model": ModelScript(reply="mid answer"),
    }
    with FakeProvider(scripts) as fp:
        c = await TierRouter(config(fp.base_url, model_prefix="ctx-")).acomplete("word " * 200)
    assert shape(c.trace) == [("budget", "context_window", False), ("mid", None, False)]


async def test_context_fits_nowhere(fp: FakeProvider) -> None:
    router = TierRouter(config(fp.base_url, windows={"budget": 10, "mid": 10, "premium": 10}, model_prefix="tiny-"))
    with pytest.raises(CascadeExhaustedError, match="no tier has a context window"):
        await router.acomplete("word " * 100)
    assert len(fp.requests) == 0


@pytest.mark.parametrize(
    ("kind", "exc"), [("auth", litellm.AuthenticationError), ("bad_request", litellm.BadRequestError)]
)
async def test_auth_and_bad_request_fail_fast(fp: FakeProvider, kind: str, exc: type[Exception]) -> None:
    fault(fp, "budget", kind=kind)
    with pytest.raises(CascadeExhaustedError) as ei:
        await TierRouter(config(fp.base_url)).acomplete("hello")
    assert ei.value.trace is not None and shape(ei.value.trace) == [("budget", kind, False)]
    assert isinstance(ei.value.__cause__, exc)
    assert "sk-fake-key-000" not in str(ei.value) and "sk-fake-key-000" not in (ei.value.trace.attempts[0].error or "")
    assert calls(fp, "mid") == 0


async def test_rejected_answer_escalates(fp: FakeProvider) -> None:
    fp.set_script("budget-model", ModelScript(reply="I'm sorry, but I can't help with that."))
    c = await TierRouter(config(fp.base_url, accept=["non_empty", "not_refusal"])).acomplete("hello")
    assert shape(c.trace) == [("budget", "rejected", False), ("mid", None, False)]
    assert c.trace.escalations == 1 and c.text == "mid answer"


async def test_json_schema_check(fp: FakeProvider) -> None:
    fp.set_script("budget-model", ModelScript(reply='{"name": 3}'))
    fp.set_script("mid-model", ModelScript(reply='```json\n{"name": "ok"}\n```'))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    c = await TierRouter(config(fp.base_url, accept=[{"json_schema": schema}])).acomplete("json please")
    assert shape(c.trace) == [("budget", "rejected", False), ("mid", None, False)]
    assert "schema" in (c.trace.attempts[0].error or "")


async def test_max_escalations_bounds_attempts(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="server_error")
    fault(fp, "mid", kind="server_error")
    with pytest.raises(CascadeExhaustedError, match="max_escalations=1"):
        await TierRouter(config(fp.base_url, max_escalations=1)).acomplete("hello")
    assert calls(fp, "budget") == 2 and calls(fp, "mid") == 2 and calls(fp, "premium") == 0


async def test_escalation_budget_refuses_with_typed_error(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="server_error")
    router = TierRouter(config(fp.base_url, escalation_budget={"max_share": 0.0, "min_requests": 0}))
    with pytest.raises(EscalationBudgetError, match="escalation budget"):
        await router.acomplete("hello")
    assert calls(fp, "mid") == 0


async def test_escalation_budget_share_is_honoured(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="server_error", every=2)  # every other budget call fails
    router = TierRouter(
        config(fp.base_url, retries={"server_error": 0}, escalation_budget={"max_share": 0.25, "min_requests": 1})
    )
    ok = refused = 0
    for _ in range(40):
        try:
            await router.acomplete("hello")
            ok += 1
        except EscalationBudgetError:
            refused += 1
    escalated = calls(fp, "mid")
    assert escalated <= 0.25 * 40 and refused > 0
    assert ok + refused == 40


async def test_circuit_opens_and_open_tier_is_skipped(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="server_error")
    router = TierRouter(
        config(fp.base_url, circuit_breaker={"allowed_fails": 2, "window_s": 60, "cooldown_s": 60}, max_escalations=1)
    )
    first = await router.acomplete("one")
    assert shape(first.trace) == [("budget", "server_error", False)] * 2 + [("mid", None, False)]
    health = await router.ahealth()
    assert health["budget"]["state"] == "open" and health["mid"]["state"] == "closed"
    second = await router.acomplete("two")
    assert shape(second.trace) == [("budget", None, True), ("mid", None, False)]
    assert "circuit open" in (second.trace.attempts[0].error or "")
    assert calls(fp, "budget") == 2


async def test_unknown_failure_falls_back_without_retry(fp: FakeProvider) -> None:
    from tierroute.backends.litellm import LiteLLMBackend

    class Broken(LiteLLMBackend):
        async def acall(self, tier: str, request: Any, params: Any, timeout_s: float) -> Any:
            raise ValueError("something nobody expected")

    cfg = config(fp.base_url)
    router = TierRouter(cfg, backends={"budget": Broken(cfg)})
    c = await router.acomplete("hello")
    assert shape(c.trace) == [("budget", "unknown", False), ("mid", None, False)]


async def test_trace_has_served_model_cost_and_counterfactual(fp: FakeProvider) -> None:
    fp.set_script(
        "budget-model", ModelScript(reply="budget answer", served_model="budget-model-2026-01", usage=(100, 20))
    )
    c = await TierRouter(config(fp.base_url)).acomplete("hello")
    a = c.trace.attempts[0]
    assert a.served_model == "budget-model-2026-01" and a.deployment
    assert (a.usage.prompt_tokens, a.usage.completion_tokens) == (100, 20)
    assert a.cost_usd == pytest.approx(100 * 1e-7 + 20 * 4e-7)
    assert c.trace.counterfactual_cost_usd == pytest.approx(100 * 1e-5 + 20 * 4e-5)
    d = c.trace.to_dict()
    assert d["served_model"] == "budget-model-2026-01" and d["tier"] == "budget"


# ---- streaming ---------------------------------------------------------------------------------------


async def test_stream_retries_before_first_token(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="rate_limit", first=1, retry_after=0.05)
    s = TierRouter(config(fp.base_url)).astream("stream please")
    text = "".join([c.text async for c in s])
    assert text == "budget answer"
    assert s.trace is not None and shape(s.trace) == [("budget", "rate_limit", False), ("budget", None, False)]
    assert s.trace.attempts[-1].usage.total_tokens > 0


async def test_stream_falls_back_before_first_token(fp: FakeProvider) -> None:
    fault(fp, "budget", kind="server_error")
    s = TierRouter(config(fp.base_url)).astream("stream please")
    assert "".join([c.text async for c in s]) == "mid answer"
    assert s.trace is not None and shape(s.trace)[-1] == ("mid", None, False)


async def test_stream_cut_after_tokens_raises_with_partial_text(fp: FakeProvider) -> None:
    fp.set_script(
        "budget-model",
        ModelScript(reply="one two three four five six", faults=[Fault(kind="truncated_stream", after_chunks=2)]),
    )
    s = TierRouter(config(fp.base_url)).astream("stream please")
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as ei:
        async for c in s:
            got.append(c.text)
    assert ei.value.partial_text == "".join(got) and ei.value.partial_text
    assert s.trace is not None and s.trace.attempts[-1].failure is not None
    assert s.trace.attempts[-1].failure.value == "truncated_stream"
    assert calls(fp, "mid") == 0  # no silent retry: that would duplicate tokens


async def test_stream_cut_before_tokens_is_retried(fp: FakeProvider) -> None:
    fp.set_script(
        "budget-model",
        ModelScript(reply="alpha beta", faults=[Fault(kind="truncated_stream", after_chunks=0, first=1)]),
    )
    router = TierRouter(config(fp.base_url, retries={"truncated_stream": 1, "backoff_s": 0.01}))
    s = router.astream("stream please")
    assert "".join([c.text async for c in s]) == "alpha beta"
    assert s.trace is not None
    # the body was cut before any token: LiteLLM reports a connection error; either way it is retried
    assert [(t, k in ("truncated_stream", "connection")) for t, k, _ in shape(s.trace)] == [
        ("budget", True),
        ("budget", False),
    ]


def test_sync_complete_and_stream(fp: FakeProvider) -> None:
    router = TierRouter(config(fp.base_url))
    assert router.complete("hi").text == "budget answer"
    s = router.stream("hi")
    assert "".join(c.text for c in s) == "budget answer"
    assert router.health()["budget"]["state"] == "closed"


async def test_concurrent_requests_share_state(fp: FakeProvider) -> None:
    router = TierRouter(config(fp.base_url))
    results = await asyncio.gather(*(router.acomplete(f"q{i}") for i in range(30)))
    assert {r.text for r in results} == {"budget answer"}


async def test_half_open_probe_answered_with_a_refusal_releases_the_tier(fp: FakeProvider) -> None:
    fp.set_script(
        "budget-model",
        ModelScript(
            reply="budget answer",
            faults=[Fault(kind="server_error", calls={1, 2}), Fault(kind="content_policy", calls={3})],
        ),
    )
    router = TierRouter(
        config(fp.base_url, circuit_breaker={"allowed_fails": 2, "window_s": 60, "cooldown_s": 0.3}, max_escalations=1)
    )
    await router.acomplete("one")  # two 500s open the circuit; served by mid
    await asyncio.sleep(0.4)  # cooldown over: half-open
    with pytest.raises(ContentPolicyError):
        await router.acomplete("two")  # the probe gets a content-policy answer: the provider is up
    assert (await router.ahealth())["budget"]["state"] == "closed"
    third = await router.acomplete("three")
    assert shape(third.trace) == [("budget", None, False)]
