"""Tier health: circuit breakers with cooldowns and single probes, sliding-window rates, and alerts.

Everything here keeps its state in a :class:`~tierroute.state.StateStore`: in memory by default, or in Redis
so several processes share circuits, rates and spend. The store classes are re-exported from here.

Typical use inside the cascade::

    breaker = CircuitBreaker(build_state_store(cfg.state), cfg.cascade.circuit_breaker)
    allowed, state = await breaker.allow("budget")
    if allowed:
        try:
            reply = await call_tier("budget")
        except ProviderError:
            await breaker.on_failure("budget")
        else:
            await breaker.on_success("budget")
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from tierroute.state import (
    CircuitState,
    MemoryStateStore,
    StateStore,
    StateStoreError,
    build_state_store,
)
from tierroute.state_redis import RedisStateStore

if TYPE_CHECKING:
    from tierroute.config import AlertsConfig, CircuitBreakerConfig

__all__ = [
    "Alert",
    "AlertMonitor",
    "CircuitBreaker",
    "CircuitState",
    "MemoryStateStore",
    "RateWindow",
    "RedisStateStore",
    "StateStore",
    "StateStoreError",
    "build_state_store",
]

logger = logging.getLogger("tierroute")

Clock = Callable[[], float]


class CircuitBreaker:
    """Per-tier circuit breaker over a :class:`StateStore`.

    ``allowed_fails`` failures within ``window_s`` open a tier for ``cooldown_s``; afterwards exactly one
    caller (across processes when the store is Redis) is let through as a probe. Its success closes the
    circuit, its failure re-opens it for another cooldown.

    Args:
        store: Where circuit state lives.
        cfg: Thresholds (``cascade.circuit_breaker``).
        probe_ttl_s: How long a probe may take before another caller may probe (a crashed prober does not
            block the tier forever).
        clock: Current time in seconds; every process sharing a store must use comparable clocks.
        key_prefix: Prefix of the store keys, followed by the tier name.
    """

    def __init__(
        self,
        store: StateStore,
        cfg: CircuitBreakerConfig,
        probe_ttl_s: float = 30.0,
        clock: Clock = time.time,
        *,
        key_prefix: str = "cb:",
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.probe_ttl_s = probe_ttl_s
        self.clock = clock
        self.key_prefix = key_prefix

    def _key(self, tier: str) -> str:
        return f"{self.key_prefix}{tier}"

    async def allow(self, tier: str) -> tuple[bool, CircuitState]:
        """Whether a request may go to ``tier`` now.

        Closed: True. Open: False. Half-open: True only for the one caller that acquires the probe; the
        returned state then has ``probe_in_flight=True`` and the caller must report the outcome with
        :meth:`on_success` or :meth:`on_failure`.

        Raises:
            StateStoreError: The store is unreachable.
        """
        now = self.clock()
        state = await self.store.circuit(self._key(tier), now=now)
        if state.state == "closed":
            return True, state
        if state.state == "open" or state.probe_in_flight:
            return False, state
        if await self.store.acquire_probe(self._key(tier), now=now, ttl_s=self.probe_ttl_s):
            return True, replace(state, probe_in_flight=True)
        return False, replace(state, probe_in_flight=True)

    async def on_failure(self, tier: str) -> bool:
        """Record a failed call to ``tier``; returns True when this failure opened the circuit."""
        c = self.cfg
        opened = await self.store.record_failure(
            self._key(tier),
            now=self.clock(),
            window_s=c.window_s,
            allowed_fails=c.allowed_fails,
            cooldown_s=c.cooldown_s,
        )
        if opened:
            logger.warning("tierroute: circuit for tier %r opened for %.1fs", tier, c.cooldown_s)
        return opened

    async def on_success(self, tier: str) -> None:
        """Record a successful call to ``tier`` (closes a half-open circuit)."""
        await self.store.record_success(self._key(tier), now=self.clock())

    async def state(self, tier: str) -> CircuitState:
        """The circuit of ``tier`` now, without acquiring anything."""
        return await self.store.circuit(self._key(tier), now=self.clock())

    async def snapshot(self, tiers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """JSON-ready state of each tier: ``{"state", "failures", "cooldown_until", "probe_in_flight"}``."""
        states = await asyncio.gather(*(self.state(t) for t in tiers))
        return {t: asdict(s) for t, s in zip(tiers, states)}


class RateWindow:
    """A sliding-window sum in a :class:`StateStore` (request counts, fallbacks, spend).

    Args:
        store: Where the window lives.
        key: Its key in the store.
        window_s: Window length in seconds (bucket precision: ``window_s / 60``).
        clock: Current time in seconds.
    """

    def __init__(self, store: StateStore, key: str, window_s: float, clock: Clock = time.time) -> None:
        self.store = store
        self.key = key
        self.window_s = window_s
        self.clock = clock

    async def add(self, count: float = 1.0, *, at: float | None = None) -> float:
        """Add ``count`` now (or at ``at``, e.g. to undo an earlier add in the same bucket); returns the time used."""
        now = self.clock() if at is None else at
        await self.store.window_add(self.key, count, now=now, window_s=self.window_s)
        return now

    async def total(self) -> float:
        """Sum over the last ``window_s`` seconds."""
        return await self.store.window_sum(self.key, now=self.clock(), window_s=self.window_s)


@dataclass(frozen=True)
class Alert:
    """A rate crossed its threshold.

    Attributes:
        kind: ``fallback_rate`` or ``escalation_rate``.
        rate: The rate over the window, in [0, 1].
        threshold: The configured threshold it exceeded.
        window_s: The window length in seconds.
        requests: Requests in the window.
    """

    kind: Literal["fallback_rate", "escalation_rate"]
    rate: float
    threshold: float
    window_s: float
    requests: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class AlertMonitor:
    """Watches fallback and escalation rates over a sliding window and fires :class:`Alert` s.

    An alert fires once when a rate rises above its threshold (with at least ``min_requests`` requests in the
    window) and re-arms only after the rate is back at or below the threshold (or the window is empty), so
    a sustained incident gives one alert, not a storm. Counts are shared through the store; the armed/fired
    latch is per monitor (per process).

    Args:
        store: Where the windows live.
        fallback_rate: Alert when fallbacks / requests exceeds this.
        escalation_rate: Alert when escalations / requests exceeds this; None disables it.
        window_s: Window length in seconds.
        min_requests: Fewer requests than this in the window never alert.
        callbacks: Called with each alert (exceptions they raise are logged, not propagated).
        clock: Current time in seconds.
        key_prefix: Prefix of the store keys.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        fallback_rate: float,
        escalation_rate: float | None = None,
        window_s: float = 900.0,
        min_requests: int = 20,
        callbacks: Sequence[Callable[[Alert], None]] = (),
        clock: Clock = time.time,
        key_prefix: str = "alerts:",
    ) -> None:
        self.thresholds: dict[Literal["fallback_rate", "escalation_rate"], float | None] = {
            "fallback_rate": fallback_rate,
            "escalation_rate": escalation_rate,
        }
        self.window_s = window_s
        self.min_requests = min_requests
        self.callbacks = list(callbacks)
        self._requests = RateWindow(store, f"{key_prefix}requests", window_s, clock)
        self._events = {
            "fallback_rate": RateWindow(store, f"{key_prefix}fallbacks", window_s, clock),
            "escalation_rate": RateWindow(store, f"{key_prefix}escalations", window_s, clock),
        }
        self._lock = threading.Lock()
        self._armed = {"fallback_rate": True, "escalation_rate": True}
        self._totals = {"requests": 0, "fallbacks": 0, "escalations": 0, "alerts": 0}

    @classmethod
    def from_config(
        cls,
        store: StateStore,
        cfg: AlertsConfig,
        callbacks: Sequence[Callable[[Alert], None]] = (),
        clock: Clock = time.time,
    ) -> AlertMonitor:
        """A monitor for ``cascade.alerts``."""
        return cls(
            store,
            fallback_rate=cfg.fallback_rate,
            escalation_rate=cfg.escalation_rate,
            window_s=cfg.window_s,
            min_requests=cfg.min_requests,
            callbacks=callbacks,
            clock=clock,
        )

    async def record(self, fell_back: bool, escalated: bool) -> list[Alert]:
        """Count one finished request; returns the alerts it fired (usually none).

        Raises:
            StateStoreError: The store is unreachable.
        """
        with self._lock:
            self._totals["requests"] += 1
            self._totals["fallbacks"] += int(fell_back)
            self._totals["escalations"] += int(escalated)
        adds = [self._requests.add()]
        if fell_back:
            adds.append(self._events["fallback_rate"].add())
        if escalated:
            adds.append(self._events["escalation_rate"].add())
        await asyncio.gather(*adds)

        kinds = [k for k, t in self.thresholds.items() if t is not None]
        totals = await asyncio.gather(self._requests.total(), *(self._events[k].total() for k in kinds))
        requests = totals[0]
        fired: list[Alert] = []
        for kind, events in zip(kinds, totals[1:]):
            threshold = self.thresholds[kind]
            assert threshold is not None
            rate = events / requests if requests > 0 else 0.0
            with self._lock:
                if rate <= threshold or requests <= 0:
                    self._armed[kind] = True
                    continue
                if requests < self.min_requests or not self._armed[kind]:
                    continue
                self._armed[kind] = False
                self._totals["alerts"] += 1
            fired.append(Alert(kind, rate, threshold, self.window_s, round(requests)))
        for alert in fired:
            self._emit(alert)
        return fired

    def _emit(self, alert: Alert) -> None:
        logger.warning(
            "tierroute alert: %s %.4f exceeds %.4f over the last %gs (%d requests)",
            alert.kind,
            alert.rate,
            alert.threshold,
            alert.window_s,
            alert.requests,
        )
        for callback in self.callbacks:
            try:
                callback(alert)
            except Exception:
                logger.exception("tierroute: alert callback %r failed", callback)

    def counters(self) -> dict[str, int]:
        """Totals since this monitor started: ``requests``, ``fallbacks``, ``escalations``, ``alerts``."""
        with self._lock:
            return dict(self._totals)
