"""The cascade's shared state in a real Redis: circuits across processes, a shared escalation budget, alerts.

Everything goes through ``TierRouter`` with ``state: {backend: redis}``: real HTTP to FakeProvider via
LiteLLM, real Redis at TIERROUTE_REDIS_URL. CI guarantees Redis: when it is down these tests fail (with the
command that starts it), they do not skip. Each test uses its own key prefix and deletes its keys at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tierroute import EscalationBudgetError, RouterConfig, TierRouter
from tierroute.config import StateConfig
from tierroute.health import Alert, RedisStateStore, StateStoreError
from tierroute.testing import FakeProvider, Fault, ModelScript

from .cascade_helpers import TIERS, config, shape

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("TIERROUTE_REDIS_URL", "redis://127.0.0.1:6379/0")
HELPERS_DIR = str(Path(__file__).resolve().parent)


def redis_config(base_url: str, prefix: str, **cascade: Any) -> RouterConfig:
    """The three-tier test config with its state in Redis under ``prefix``."""
    state = StateConfig(backend="redis", url=REDIS_URL, prefix=prefix)
    return config(base_url, **cascade).model_copy(update={"state": state})


async def _keys(prefix: str) -> list[str]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [k async for k in client.scan_iter(match=f"{prefix}:*")]
    finally:
        await client.aclose()


@pytest.fixture()
async def prefix() -> AsyncIterator[str]:
    """A fresh key prefix; fails the test when Redis is unreachable; deletes the prefix's keys afterwards."""
    name = f"tierroute-cascade-test-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore(REDIS_URL, prefix=name)
    try:
        await store.circuit("ping", now=0.0)
    except StateStoreError as exc:
        pytest.fail(
            f"Redis is required for these tests but is not reachable at {store.safe_url}: {exc}. "
            "Start it with `bash scripts/ensure_services.sh` or set TIERROUTE_REDIS_URL.",
            pytrace=False,
        )
    try:
        yield name
    finally:
        await store.reset()
        await store.aclose()
    assert await _keys(name) == []


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer") for t in TIERS}
    with FakeProvider(scripts) as provider:
        yield provider


def calls(fp: FakeProvider, tier: str) -> int:
    return len(fp.requests_for(f"{tier}-model"))


# ---- (a) a circuit opened by another process -----------------------------------------------------------------

BREAKER = {"circuit_breaker": {"allowed_fails": 2, "window_s": 60, "cooldown_s": 60}, "max_escalations": 1}

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    helpers_dir, base_url, redis_url, prefix, cascade = sys.argv[1:6]
    sys.path.insert(0, helpers_dir)
    from cascade_helpers import config, shape
    from tierroute import TierRouter
    from tierroute.config import StateConfig

    async def main():
        state = StateConfig(backend="redis", url=redis_url, prefix=prefix)
        cfg = config(base_url, **json.loads(cascade)).model_copy(update={"state": state})
        router = TierRouter(cfg)
        traces = []
        try:
            for i in range(10):
                traces.append(shape((await router.acomplete(f"child request {i}")).trace))
                health = await router.ahealth()
                if health["budget"]["state"] == "open":
                    break
            print(json.dumps({"traces": traces, "health": health, "pid": __import__("os").getpid()}))
        finally:
            await router.aclose()

    asyncio.run(main())
    """
)


async def test_circuit_opened_in_another_process_is_skipped_here(fp: FakeProvider, prefix: str) -> None:
    fp.set_script("budget-model", ModelScript(reply="budget answer", faults=[Fault("server_error", status=500)]))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", CHILD, HELPERS_DIR, fp.base_url, REDIS_URL, prefix, json.dumps(BREAKER)]
    out = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["pid"] != os.getpid()
    # retries.server_error is 1: the first request fails budget twice (= allowed_fails), opens it, falls back
    assert child["traces"] == [
        [["budget", "server_error", False], ["budget", "server_error", False], ["mid", None, False]]
    ]
    assert child["health"]["budget"]["state"] == "open" and child["health"]["mid"]["state"] == "closed"
    budget_before, mid_before = calls(fp, "budget"), calls(fp, "mid")
    assert budget_before == 2

    router = TierRouter(redis_config(fp.base_url, prefix, **BREAKER))  # fresh: it never saw budget fail
    try:
        health = await router.ahealth()
        assert health["budget"]["state"] == "open"
        assert health["budget"]["cooldown_until"] == pytest.approx(child["health"]["budget"]["cooldown_until"])
        c = await router.acomplete("parent request")
    finally:
        await router.aclose()
    assert shape(c.trace) == [("budget", None, True), ("mid", None, False)]
    assert "circuit open" in (c.trace.attempts[0].error or "")
    assert c.text == "mid answer"
    assert calls(fp, "budget") == budget_before  # no new budget request
    assert calls(fp, "mid") == mid_before + 1


# ---- (b) one escalation budget for two routers ---------------------------------------------------------------


def _budget_reply(body: dict[str, Any]) -> str:
    """Budget answers, except an empty answer (rejected by ``non_empty``) to prompts that say "escalate"."""
    return "" if "escalate" in str(body["messages"][-1]["content"]) else "budget answer"


async def test_escalation_budget_is_shared_by_two_routers(fp: FakeProvider, prefix: str) -> None:
    fp.set_script("budget-model", ModelScript(reply=_budget_reply))
    cascade = {"accept": ["non_empty"], "escalation_budget": {"max_share": 0.2, "min_requests": 10}}
    # two routers, each with its own RedisStateStore and Redis client, sharing one prefix
    a = TierRouter(redis_config(fp.base_url, prefix, **cascade))
    b = TierRouter(redis_config(fp.base_url, prefix, **cascade))
    assert a.cascade.store is not b.cascade.store

    async def outcome(router: TierRouter, prompt: str) -> str:
        try:
            c = await router.acomplete(prompt)
        except EscalationBudgetError as exc:
            assert exc.trace is not None and exc.trace.escalations == 0
            return "refused"
        return "escalated" if c.trace.escalations else "ok"

    try:
        # A: 10 requests that need no escalation. Shared window: 10 requests, 0 escalations.
        assert [await outcome(a, f"fine {i}") for i in range(10)] == ["ok"] * 10
        # B: an escalation is granted while escalations <= 0.2 * requests (reserved before the check):
        # 1 <= 0.2 * 11, 2 <= 0.2 * 12, then 3 > 0.2 * 13: refused. Alone, B would have seen 3 requests,
        # fewer than min_requests, and escalated every time.
        assert [await outcome(b, f"escalate b{i}") for i in range(3)] == ["escalated", "escalated", "refused"]
        # A: 3 > 0.2 * 14 counting B's two escalations; alone, A would have had 1 <= 0.2 * 11.
        assert await outcome(a, "escalate a") == "refused"
        # A's traffic refills B's budget: 3 <= 0.2 * 16
        assert await outcome(a, "fine again") == "ok"
        assert await outcome(b, "escalate b again") == "escalated"
    finally:
        await a.aclose()
        await b.aclose()
    assert calls(fp, "mid") == 3  # only the granted escalations reached the next tier
    assert calls(fp, "budget") == 16


# ---- (c) alerts ------------------------------------------------------------------------------------------------


async def test_fallback_rate_alert_fires_once_not_a_storm(fp: FakeProvider, prefix: str) -> None:
    fp.set_script("budget-model", ModelScript(reply="budget answer", faults=[Fault("server_error", status=503)]))
    alerts: list[Alert] = []
    cfg = redis_config(fp.base_url, prefix, alerts={"fallback_rate": 0.2, "window_s": 60, "min_requests": 5})
    router = TierRouter(cfg, alert_callbacks=[alerts.append])
    fired_after: list[int] = []
    try:
        for i in range(10):
            c = await router.acomplete(f"request {i}")
            assert c.trace.fell_back and c.text == "mid answer"
            fired_after.append(len(alerts))
        # the rest concurrently: the latch holds under concurrency too
        rest = await asyncio.gather(*(router.acomplete(f"request {i}") for i in range(10, 30)))
        assert all(c.trace.fell_back for c in rest)
        counters = router.counters()
    finally:
        await router.aclose()
    assert fired_after == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]  # at min_requests, once
    assert len(alerts) == 1
    assert alerts[0].to_dict() == {
        "kind": "fallback_rate",
        "rate": 1.0,
        "threshold": 0.2,
        "window_s": 60.0,
        "requests": 5,
    }
    assert counters == {"requests": 30, "fallbacks": 30, "escalations": 30, "alerts": 1}
    assert calls(fp, "mid") == 30
