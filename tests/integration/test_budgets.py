"""Budgets through a real ``TierRouter`` (FakeProvider via LiteLLM), with the in-memory budget store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tierroute import BudgetExceededError, ConfigError, RouterConfig, TierRouter
from tierroute.budgets import SpendAlert, period_id
from tierroute.config import OverrideConfig, RoutingConfig
from tierroute.ledger import Ledger
from tierroute.router import Completion
from tierroute.testing import FakeProvider, ModelScript
from tierroute.types import RouteRequest

from .cascade_helpers import TIERS, config

USAGE = (10, 5)
MAX_TOKENS = 5


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer", usage=USAGE) for t in TIERS}
    with FakeProvider(scripts) as provider:
        yield provider


def budget_config(base_url: str, budgets: dict[str, Any], *, free_budget: bool = False, **cascade: Any) -> RouterConfig:
    cfg = config(base_url, **cascade)
    data = cfg.model_dump(mode="python")
    data["routing"] = RoutingConfig(override=OverrideConfig(key="tier", allow=list(TIERS))).model_dump()
    data["budgets"] = budgets
    if free_budget:
        params = data["model_list"][0]["litellm_params"]
        params["input_cost_per_token"] = params["output_cost_per_token"] = 0.0
    for d, src in zip(data["model_list"], cfg.model_list):
        d["litellm_params"]["api_key"] = src.litellm_params.api_key
    return RouterConfig.from_dict(data)


async def ask(router: TierRouter, tier: str, **meta: Any) -> Completion:
    return await router.acomplete("question", metadata={"tier": tier, **meta}, max_tokens=MAX_TOKENS)


async def test_refuse_at_the_limit(fp: FakeProvider) -> None:
    limit = 0.002  # premium answers cost 10 * 1e-5 + 5 * 4e-5 = 3e-4: the 7th reaches the limit
    cfg = budget_config(
        fp.base_url, {"on_limit": "refuse", "limits": [{"scope": "global", "window": "day", "usd": limit}]}
    )
    router = TierRouter(cfg)
    spent = 0.0
    with pytest.raises(BudgetExceededError) as ei:
        for _ in range(50):
            spent += (await ask(router, "premium")).trace.cost_usd
    assert limit <= spent < limit + 3e-4 + 1e-12  # refused once the limit is reached, not before
    assert ei.value.scope == "global/day" and ei.value.limit == limit and ei.value.spent == pytest.approx(spent)
    (status,) = await router.budgets.status()
    assert status["spent_usd"] == pytest.approx(spent) and status["period"] == period_id(
        "day", __import__("time").time()
    )
    assert len(fp.requests_for("premium-model")) == 7


async def test_concurrent_requests_overshoot_by_at_most_one_max_cost(fp: FakeProvider) -> None:
    limit = 0.003
    cfg = budget_config(
        fp.base_url, {"on_limit": "refuse", "limits": [{"scope": "global", "window": "hour", "usd": limit}]}
    )
    router = TierRouter(cfg)
    results = await asyncio.gather(*(ask(router, "premium") for _ in range(200)), return_exceptions=True)
    served = [r for r in results if isinstance(r, Completion)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(served) + len(refused) == 200 and refused
    max_cost, _ = router.budgets.max_cost("premium", RouteRequest.from_messages("question"), {"max_tokens": MAX_TOKENS})
    # every admitted request held its maximum cost while in flight: fewer than limit / max_cost + 1 got in
    assert len(served) <= limit / max_cost + 1
    # settled, the counter holds actual spend; more requests fit until spend reaches the limit
    while True:
        try:
            served.append(await ask(router, "premium"))
        except BudgetExceededError:
            break
    spent = sum(c.trace.cost_usd for c in served)
    assert limit <= spent <= limit + max_cost
    assert (await router.budgets.status())[0]["spent_usd"] == pytest.approx(spent)
    assert len(fp.requests_for("premium-model")) == len(served)


async def test_tier_limit_downgrades_to_a_tier_that_cannot_reach_it(fp: FakeProvider, tmp_path: Path) -> None:
    budgets = {"limits": [{"scope": "tier", "tier": "premium", "window": "hour", "usd": 0.0009}]}
    cfg = budget_config(fp.base_url, budgets, max_escalations=1)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    async with TierRouter(cfg, hooks=[ledger]) as router:
        tiers = [(await ask(router, "premium")).trace.served.tier for _ in range(6)]
        # mid would fall back to premium (one escalation), so only budget is outside premium's limit
        assert tiers == ["premium"] * 3 + ["budget"] * 3
        c = await ask(router, "mid")
        assert c.trace.served.tier == "budget" and "downgraded from mid" in c.decision.reason
        assert (await ask(router, "budget")).trace.served.tier == "budget"
    import sqlite3

    con = sqlite3.connect(tmp_path / "l.db")
    actions = [r[0] for r in con.execute("SELECT budget_action FROM tierroute_requests ORDER BY ts_ms")]
    assert actions[:3] == [None] * 3 and actions[3] == "downgraded premium->budget (tier:premium/hour)"


async def test_zero_cost_tier_is_never_blocked(fp: FakeProvider) -> None:
    budgets = {"limits": [{"scope": "global", "window": "day", "usd": 0.0005}]}
    cfg = budget_config(fp.base_url, budgets, free_budget=True, max_escalations=0)
    router = TierRouter(cfg)
    served = [(await ask(router, "premium")).trace for _ in range(5)]
    assert [t.served.tier for t in served] == ["premium", "premium", "budget", "budget", "budget"]
    assert all(t.cost_usd == 0.0 for t in served[2:])
    for _ in range(20):  # decided on the free tier: always served, however far past the limit
        assert (await ask(router, "budget")).trace.served.tier == "budget"


async def test_per_key_limits_and_soft_downgrade(fp: FakeProvider) -> None:
    budgets = {
        "limits": [
            {"scope": "key", "window": "month", "usd": 0.0006, "on_limit": "refuse"},
            {"scope": "key", "key": "vip", "window": "month", "usd": 1.0},
            {"scope": "global", "window": "day", "usd": 0.01, "downgrade_at": 0.001},
        ]
    }
    cfg = budget_config(fp.base_url, budgets, max_escalations=0)
    router = TierRouter(cfg)
    # the global limit is past its downgrade_at (0.001 * $0.01) after one request: mid goes to budget
    first = await ask(router, "mid", key="a")
    assert first.trace.served.tier == "mid"
    assert (await ask(router, "mid", key="a")).trace.served.tier == "budget"
    for _ in range(200):
        try:
            await ask(router, "budget", key="a")
        except BudgetExceededError as exc:
            assert exc.scope == "key:*/month" and exc.limit == 0.0006
            break
    else:
        pytest.fail("key a was never refused")
    assert (await ask(router, "budget", key="b")).trace.served.tier == "budget"  # another key is unaffected
    statuses = {s["limit"]: s for s in await router.budgets.status("a")}
    assert statuses["key:*/month"]["spent_usd"] >= 0.0006


async def test_spend_rate_alert_fires_once(fp: FakeProvider) -> None:
    alerts: list[Any] = []
    budgets = {"spend_alert": {"usd_per_hour": 0.01, "window_s": 60}}
    router = TierRouter(budget_config(fp.base_url, budgets), alert_callbacks=[alerts.append])
    for _ in range(5):  # $3e-4 in a 60 s window is $0.018/h
        await ask(router, "premium")
    (alert,) = alerts
    assert isinstance(alert, SpendAlert) and alert.kind == "spend_rate" and alert.rate > alert.threshold == 0.01
    assert alert.spent_usd == pytest.approx(3e-4)


def test_budget_config_is_checked() -> None:
    base = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x"}}], "tiers": ["a"]}
    cases = {
        "budgets.limits[0].tier": [{"scope": "tier", "tier": "gold", "window": "day", "usd": 1}],
        "budgets.limits[0]": [{"scope": "tier", "window": "day", "usd": 1}],
        "budgets.limits[1]": [
            {"scope": "global", "window": "day", "usd": 1},
            {"scope": "global", "window": "day", "usd": 2},
        ],
    }
    for path, limits in cases.items():
        with pytest.raises(ConfigError) as ei:
            RouterConfig.from_dict({**base, "budgets": {"limits": limits}})
        assert path in [p.path for p in ei.value.problems], ei.value
    with pytest.raises(ConfigError) as ei:
        RouterConfig.from_dict({**base, "budgets": {"limits": [{"scope": "global", "window": "week", "usd": 1}]}})
    assert ei.value.path == "budgets.limits[0].window"
