"""Two processes share one budget through the real Redis at TIERROUTE_REDIS_URL and never overshoot it by more
than one request's maximum cost.

Each child process runs a ``TierRouter`` (budgets on, ``state.backend: redis``) with 25 requests in flight at a
time against a FakeProvider in this process, starting at the same moment as the other, asking until the budget
refuses it for good, and reports what each served request cost. The parent checks the total against the limit,
and the Redis counter against the total.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tierroute import BudgetExceededError, RouterConfig, TierRouter
from tierroute.budgets import RedisBudgetStore
from tierroute.testing import FakeProvider, ModelScript
from tierroute.types import RouteRequest

REDIS_URL = os.environ.get("TIERROUTE_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMIT = 0.03
WORKERS = 25  # concurrent requests per process
pytestmark = pytest.mark.redis

CONFIG = """
import json, sys
def make(base_url, redis_url, prefix, limit):
    tiers = ["budget", "mid", "premium"]
    price = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}
    return {
        "model_list": [{"model_name": t, "litellm_params": {"model": f"openai/{t}-model", "api_base": base_url,
                        "api_key": "sk-fake", "input_cost_per_token": price[t], "output_cost_per_token": 4 * price[t]}}
                       for t in tiers],
        "tiers": tiers, "default_tier": "premium",
        "state": {"backend": "redis", "url": redis_url, "prefix": prefix},
        "budgets": {"on_limit": "refuse", "limits": [{"scope": "global", "window": "day", "usd": limit}]},
    }
"""

CHILD = (
    CONFIG
    + r"""
import asyncio, time
from tierroute import BudgetExceededError, RouterConfig, TierRouter
base_url, redis_url, prefix, limit, n = sys.argv[1:6]
cfg = RouterConfig.from_dict(make(base_url, redis_url, prefix, float(limit)))

async def main():
    router = TierRouter(cfg)
    await router.budgets.status()  # import and connect first, then wait for the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    costs, refused = [], 0
    counter = iter(range(10**9))
    async def worker():
        # ask until refused 20 times in a row, 10 ms apart: by then no reservation is in flight and settled
        # spend has reached the limit
        nonlocal refused
        streak = 0
        while streak < 20:
            try:
                c = await router.acomplete(f"q {next(counter)}", max_tokens=20)
                costs.append(c.trace.cost_usd)
                streak = 0
            except BudgetExceededError:
                refused += 1
                streak += 1
                await asyncio.sleep(0.01)
    await asyncio.gather(*(worker() for _ in range(int(n))))
    await router.aclose()
    print(json.dumps({"costs": costs, "refused": refused}))

asyncio.run(main())
"""
)


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    # answers take 20+ ms and use 5 of the 20 completion tokens reserved, so reservations and settlements interleave
    scripts = {
        f"{t}-model": ModelScript(reply=f"{t} answer", usage=(12, 5), latency_s=0.02)
        for t in ("budget", "mid", "premium")
    }
    with FakeProvider(scripts) as provider:
        yield provider


@pytest.fixture()
def prefix() -> Iterator[str]:
    name = f"trtest-budget-{uuid.uuid4().hex[:8]}"
    yield name
    store = RedisBudgetStore(REDIS_URL, prefix=name)

    async def clean() -> None:
        await store.reset()
        await store.aclose()

    asyncio.run(clean())


def test_two_processes_never_overshoot_a_shared_budget(fp: FakeProvider, prefix: str) -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    args = [fp.base_url, REDIS_URL, prefix, str(LIMIT), str(WORKERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    for p in procs:  # both ready (imported, connected to Redis), then both start at once
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs: list[dict[str, Any]] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))

    ns: dict[str, Any] = {}
    exec(CONFIG, ns)
    cfg = RouterConfig.from_dict(ns["make"](fp.base_url, REDIS_URL, prefix, LIMIT))
    router = TierRouter(cfg)
    max_cost, _ = router.budgets.max_cost("premium", RouteRequest.from_messages("q 100"), {"max_tokens": 20})
    spent = sum(sum(o["costs"]) for o in outs)
    served = sum(len(o["costs"]) for o in outs)
    per = [(len(o["costs"]), o["refused"]) for o in outs]
    # each process stops after 20 refusals in a row: both were held back by the shared counter
    assert all(o["refused"] >= 20 for o in outs) and served > 0, per
    # the two processes together spent the limit, and passed it by at most one request's maximum cost
    assert LIMIT <= spent <= LIMIT + max_cost, (spent, LIMIT, max_cost, per)
    assert len(fp.requests_for("premium-model")) == served

    async def check() -> None:
        (status,) = await router.budgets.status()
        # settled: the shared counter is exactly what both processes spent (no reservation left behind)
        assert status["spent_usd"] == pytest.approx(spent, rel=1e-9)
        # a third process (this one) shares the counter: refused too
        with pytest.raises(BudgetExceededError):
            await router.acomplete("one more", max_tokens=20)
        await router.aclose()

    asyncio.run(check())
    print(
        f"\nshared budget: limit ${LIMIT}, spent ${spent:.6f}, max one request ${max_cost:.6f}, (served, refused) {per}"
    )
