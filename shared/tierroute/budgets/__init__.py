"""Spend limits per key, per tier and global, per calendar window (UTC hour / day / month), and spend-rate alerts.

:class:`BudgetGuard` is a request hook. Before the call it *reserves* the request's maximum cost on every limit
that applies; after the call it *settles*: the reservation is replaced by the actual cost. A limit admits a
reservation while its counter (settled spend plus the reservations of requests in flight) is below the limit,
and the check-and-reserve is one atomic step (one Lua script in Redis, shared by every process; a lock in
memory for one process). So however many requests run at once, in one process or many, spend passes a limit by
at most one request's maximum cost (the last reservation admitted below it).

A request's maximum cost is the priciest path the cascade may take from its tier: the answered calls it may
make (one per visited tier: the decided one, plus up to ``cascade.max_escalations`` fallbacks, plus the
``on_content_policy`` tier) on the tiers it can reach, each priced at the request's prompt tokens
(``prompt_token_margin`` times the tokenizer's count) and ``max_tokens`` (or ``budgets.max_completion_tokens``
when the request sets none). Calls that fail cost nothing. The bound holds when providers bill no more than
that (set ``max_tokens`` on requests to make it exact).

On a limit: ``on_limit: downgrade`` tries cheaper tiers, cheapest last; ``refuse`` raises
:class:`~tierroute.errors.BudgetExceededError`. At ``downgrade_at`` of a limit, only the cheapest tier is
admitted (a soft limit). A request on a zero-cost tier is never blocked: it is admitted without a check, and
whatever its paid fallbacks may cost is still reserved, so that spend counts (and is the one way past the
bound above: fallbacks of free requests admitted after the limit was reached).

The tiers reachable from a decided tier are those within ``max_escalations`` fallback steps (and the
``on_content_policy`` tier). A move to a bigger context window is not an escalation and is not reserved for:
set ``model_info.max_input_tokens`` so such prompts start on a tier that fits.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tierroute.budgets.store import UNCHECKED, BudgetStore, MemoryBudgetStore, RedisBudgetStore, Reservation, Want
from tierroute.errors import BudgetExceededError
from tierroute.types import RouteDecision, RouteRequest, Usage

if TYPE_CHECKING:
    from tierroute.backends.base import Backend
    from tierroute.config import BudgetLimitConfig, BudgetsConfig, RouterConfig
    from tierroute.hooks import RequestEvent
    from tierroute.state import StateStore

__all__ = [
    "BudgetGuard",
    "BudgetStore",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "Reservation",
    "SpendAlert",
    "SpendRateMonitor",
    "Want",
    "period_id",
]

log = logging.getLogger("tierroute")

_PERIOD_S = {"hour": 3600.0, "day": 86400.0, "month": 31 * 86400.0}


def period_id(window: str, now: float) -> str:
    """The calendar period (UTC) containing ``now``: ``2025-01-31T09`` (hour), ``2025-01-31`` (day), ``2025-01``."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    if window == "hour":
        return t.strftime("%Y-%m-%dT%H")
    if window == "day":
        return t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m")


@dataclass(frozen=True)
class SpendAlert:
    """Spend over the last ``window_s`` ran faster than the threshold.

    Attributes:
        kind: Always ``spend_rate``.
        rate: USD per hour over the window.
        threshold: The configured USD per hour.
        window_s: The window in seconds.
        spent_usd: Spend inside the window.
    """

    rate: float
    threshold: float
    window_s: float
    spent_usd: float
    kind: str = "spend_rate"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


class SpendRateMonitor:
    """Fires a :class:`SpendAlert` (callbacks + a log warning) when spend per hour exceeds a threshold.

    The spend window is a sliding sum in the :class:`~tierroute.state.StateStore` (shared across processes
    with Redis); the alert fires once when the rate rises above the threshold and re-arms when it is back at
    or below it (per process).

    Args:
        store: Where the window lives.
        usd_per_hour: Threshold.
        window_s: Window length.
        callbacks: Called with each alert; exceptions are logged.
        clock: Wall clock.
    """

    def __init__(
        self,
        store: StateStore,
        usd_per_hour: float,
        window_s: float = 900.0,
        callbacks: Sequence[Callable[[Any], None]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        from tierroute.health import RateWindow

        self.window = RateWindow(store, "spend:usd", window_s, clock)
        self.threshold = usd_per_hour
        self.window_s = window_s
        self.callbacks = list(callbacks)
        self._armed = True
        self.fired = 0

    async def record(self, cost_usd: float) -> SpendAlert | None:
        """Add a request's cost; returns the alert it fired, if any."""
        if cost_usd:
            await self.window.add(cost_usd)
        spent = await self.window.total()
        rate = spent * 3600.0 / self.window_s
        if rate <= self.threshold:
            self._armed = True
            return None
        if not self._armed:
            return None
        self._armed = False
        self.fired += 1
        alert = SpendAlert(rate=rate, threshold=self.threshold, window_s=self.window_s, spent_usd=spent)
        log.warning(
            "tierroute alert: spend rate $%.4f/h exceeds $%.4f/h over the last %gs ($%.6f spent)",
            rate,
            self.threshold,
            self.window_s,
            spent,
        )
        for cb in self.callbacks:
            try:
                cb(alert)
            except Exception:
                log.exception("tierroute: alert callback %r failed", cb)
        return alert


@dataclass
class _Plan:
    """One candidate tier: what to reserve on which counter."""

    tier: str
    wants: list[Want]
    cost: float


class BudgetGuard:
    """The budgets request hook: reserve before the call, settle after it, alert on spend rate.

    Args:
        config: The router config (its ``budgets``, ``tiers`` and ``cascade`` sections).
        backend: Returns the backend that prices tiers and counts tokens (the router's cascade backend).
        store: Budget counters; default: in memory (one process). Use :class:`RedisBudgetStore` to share.
        state: Returns the StateStore for the spend-rate window (needed with ``budgets.spend_alert``).
        alert_callbacks: Called with each :class:`SpendAlert`.
        clock: Wall clock (seconds).
    """

    def __init__(
        self,
        config: RouterConfig,
        backend: Callable[[], Backend],
        *,
        store: BudgetStore | None = None,
        state: Callable[[], StateStore] | None = None,
        alert_callbacks: Sequence[Callable[[Any], None]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.budgets is None:
            from tierroute.errors import ConfigError

            raise ConfigError("no budgets section in the config", path="budgets", hint="add budgets: {limits: [...]}")
        self.config = config
        self.cfg: BudgetsConfig = config.budgets
        self._backend = backend
        self.store: BudgetStore = store if store is not None else MemoryBudgetStore()
        self._state = state
        self.clock = clock
        self.alert_callbacks = list(alert_callbacks)
        self._monitor: SpendRateMonitor | None = None

    @classmethod
    def from_config(
        cls,
        config: RouterConfig,
        backend: Callable[[], Backend],
        state: Callable[[], StateStore] | None = None,
        alert_callbacks: Sequence[Callable[[Any], None]] = (),
    ) -> BudgetGuard:
        """The guard for ``config.budgets``; counters in Redis when ``state.backend`` is redis and ``store: state``."""
        assert config.budgets is not None
        store: BudgetStore | None = None
        if config.budgets.store == "state" and config.state.backend == "redis" and config.state.url:
            store = RedisBudgetStore(config.state.url, prefix=config.state.prefix)
        return cls(config, backend, store=store, state=state, alert_callbacks=alert_callbacks)

    # ---- costs --------------------------------------------------------------------------------------

    def _reach(self, tier: str) -> list[str]:
        """Tiers a request starting on ``tier`` may be answered by.

        Those within ``max_escalations`` fallback steps (each move to another tier is an escalation), and the
        ``on_content_policy`` tier.
        """
        seen = [tier]
        frontier = [tier]
        for _ in range(self.config.cascade.max_escalations):
            nxt_frontier = []
            for t in frontier:
                for nxt in self.config.cascade.fallbacks.get(t, []):
                    if nxt not in seen:
                        seen.append(nxt)
                        nxt_frontier.append(nxt)
            frontier = nxt_frontier
        policy = self.config.cascade.on_content_policy
        if policy != "stop" and policy not in seen:
            seen.append(policy)
        return seen

    def call_cost(self, tier: str, request: RouteRequest, params: Mapping[str, Any]) -> float:
        """Most one answered call on ``tier`` can cost (prompt tokens with margin, ``max_tokens`` out)."""
        backend = self._backend()
        prompt = math.ceil(backend.count_tokens(tier, request) * self.cfg.prompt_token_margin) + 16
        out = params.get("max_tokens") or params.get("max_completion_tokens") or self.cfg.max_completion_tokens
        return float(backend.price(tier, Usage(prompt, int(out))))

    def max_cost(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], memo: dict[str, float] | None = None
    ) -> tuple[float, dict[str, float]]:
        """A request's maximum cost from ``tier`` and the most each reachable tier may take of it.

        ``memo`` caches :meth:`call_cost` per tier across calls for the same request.
        """
        memo = {} if memo is None else memo
        for t in self._reach(tier):
            if t not in memo:
                memo[t] = self.call_cost(t, request, params)
        per_tier = {t: memo[t] for t in self._reach(tier)}
        visits = 1 + self.config.cascade.max_escalations + (self.config.cascade.on_content_policy != "stop")
        total = sum(sorted(per_tier.values(), reverse=True)[:visits])
        return total, per_tier

    # ---- planning -----------------------------------------------------------------------------------

    def _limit_keys(self, lim: BudgetLimitConfig, key: str, tier: str | None, now: float) -> str:
        what = {"global": "global", "key": f"key:{lim.key or key}", "tier": f"tier:{tier}"}[lim.scope]
        return f"{what}:{lim.window}:{period_id(lim.window, now)}"

    def _plan(
        self,
        tier: str,
        last: bool,
        request: RouteRequest,
        params: Mapping[str, Any],
        now: float,
        memo: dict[str, float],
    ) -> _Plan:
        total, per_tier = self.max_cost(tier, request, params, memo)
        free = per_tier[tier] == 0.0  # a zero-cost tier is never blocked (its fallbacks are still reserved)
        key = str(request.metadata.get(self.cfg.key_field) or "-")
        wants: dict[str, Want] = {}
        for lim in self.cfg.limits:
            if lim.scope == "key" and lim.key is not None and lim.key != key:
                continue
            if lim.scope == "tier" and lim.tier not in per_tier:
                continue
            amount = per_tier[lim.tier] if lim.scope == "tier" and lim.tier else total
            counter = self._limit_keys(lim, key, lim.tier, now)
            refuse = (lim.on_limit or self.cfg.on_limit) == "refuse"
            threshold = UNCHECKED if free else lim.usd * (1.0 if last or refuse else lim.downgrade_at)
            ttl = _PERIOD_S[lim.window] * 2 + 86400.0
            have = wants.get(counter)
            if have is None:
                wants[counter] = Want(counter, amount, threshold, refuse, ttl, lim.label, lim.usd, lim.tier)
            else:  # two limits on one counter (a key's own limit and the per-key limit): the stricter wins
                wants[counter] = dataclasses.replace(
                    have,
                    threshold=min(have.threshold, threshold),
                    refuse=have.refuse or refuse,
                    label=have.label if have.limit <= lim.usd else lim.label,
                    limit=min(have.limit, lim.usd),
                )
        return _Plan(tier, list(wants.values()), total)

    # ---- hook ---------------------------------------------------------------------------------------

    async def before(
        self, request: RouteRequest, decision: RouteDecision, extra: dict[str, Any]
    ) -> RouteDecision | None:
        """Reserve the request's maximum cost; downgrade to a cheaper tier or refuse when a limit is reached.

        Raises:
            BudgetExceededError: A limit is reached and no cheaper tier fits (or the limit says refuse).
        """
        if not self.cfg.limits:
            return None
        tiers = self.config.tiers
        params: Mapping[str, Any] = extra.get("params") or {}
        start = tiers.index(decision.tier) if decision.tier in tiers else -1
        order = [decision.tier]
        if self.cfg.on_limit == "downgrade" or any(lim.on_limit == "downgrade" for lim in self.cfg.limits):
            order += [t for t in reversed(tiers[:start])] if start > 0 else []
        now = self.clock()
        memo: dict[str, float] = {}
        plans = [self._plan(t, i == len(order) - 1, request, params, now, memo) for i, t in enumerate(order)]
        chosen, res = await self.store.reserve([p.wants for p in plans])
        if chosen < 0:
            assert res.failed is not None
            want, current = res.failed
            extra["budget"] = {"action": f"refused: {want.label} reached", "limit": want.label}
            raise BudgetExceededError(current, want.limit, want.label)
        extra["budget_reservation"] = res
        if chosen == 0:
            return None
        plan = plans[chosen]
        why = res.failed[0].label if res.failed else "budget"
        extra["budget"] = {"action": f"downgraded {decision.tier}->{plan.tier} ({why})", "from": decision.tier}
        return dataclasses.replace(
            decision, tier=plan.tier, reason=f"budget {why}: downgraded from {decision.tier}; {decision.reason}"
        )

    async def after(self, event: RequestEvent) -> None:
        """Settle the reservation with the actual cost and feed the spend-rate alert."""
        cost = event.trace.cost_usd if event.trace is not None else 0.0
        res: Reservation | None = event.extra.pop("budget_reservation", None)
        if res is not None:
            by_tier: dict[str, float] = {}
            if event.trace is not None:
                for a in event.trace.attempts:
                    by_tier[a.tier] = by_tier.get(a.tier, 0.0) + a.cost_usd
            actual = [by_tier.get(w.tier, 0.0) if w.tier is not None else cost for w in res.wants]
            await self.store.settle(res, actual)
        monitor = self._spend_monitor()
        if monitor is not None:
            await monitor.record(cost)

    def _spend_monitor(self) -> SpendRateMonitor | None:
        if self._monitor is None and self.cfg.spend_alert is not None and self._state is not None:
            sa = self.cfg.spend_alert
            self._monitor = SpendRateMonitor(self._state(), sa.usd_per_hour, sa.window_s, self.alert_callbacks)
        return self._monitor

    # ---- inspection ---------------------------------------------------------------------------------

    async def status(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every limit that applies to ``key`` (all non-key limits when None) with its spend this period.

        ``spent_usd`` includes the reservations of requests in flight.
        """
        now = self.clock()
        k = key or "-"
        rows: list[dict[str, Any]] = []
        for lim in self.cfg.limits:
            if lim.scope == "key" and ((key is None and lim.key is None) or (lim.key is not None and lim.key != k)):
                continue
            counter = self._limit_keys(lim, k, lim.tier, now)
            rows.append({"limit": lim.label, "period": period_id(lim.window, now), "usd": lim.usd, "counter": counter})
        values = await self.store.values([str(r["counter"]) for r in rows])
        for r, v in zip(rows, values):
            r["spent_usd"] = v
        return rows

    async def aclose(self) -> None:
        """Release the budget store's connections."""
        await self.store.aclose()
