"""Shared state for circuit breakers, rate windows and budgets: in memory (default) or in Redis.

A :class:`StateStore` keeps two kinds of record, each under a caller-chosen key:

* **circuits**: a sliding window of failure times, a cooldown deadline and a probe lock;
* **windows**: bucketed sliding-window sums (request counts, fallback counts, spend).

:class:`MemoryStateStore` serves one process and is safe to share between threads and event loops.
:class:`RedisStateStore` lets several processes share state; every multi-step operation runs as one Lua
script, so it is atomic across processes. Times are always passed in (``now``) so callers and tests
control the clock; every process sharing a Redis store should use the same kind of clock (wall time).

Circuit lifecycle::

    closed --(allowed_fails failures within window_s)--> open --(cooldown_s elapsed)--> half_open
    half_open --(one caller acquires the probe; it succeeds)--> closed
    half_open --(a failure)--> open (for another cooldown_s)

Window precision: a window of ``window_s`` is kept in 60 buckets of ``window_s / 60`` seconds (the width
is fixed by a key's first ``window_add``). A value counts while its bucket is one of the newest 60, i.e.
for between ``window_s - width`` and ``window_s`` seconds; sums are exact otherwise.
"""

from __future__ import annotations

import abc
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tierroute.errors import ConfigError, TierRouteError

if TYPE_CHECKING:
    from tierroute.config import StateConfig

__all__ = [
    "CircuitState",
    "MemoryStateStore",
    "StateStore",
    "StateStoreError",
    "build_state_store",
]

WINDOW_BUCKETS = 60
"""Buckets per sliding window (see the module docstring for the precision this gives)."""

OPEN_RECORD_GRACE_S = 86_400.0
"""Redis only: an open circuit's record expires this long after its cooldown deadline if no probe
resolves it; the tier then counts as closed again."""


class StateStoreError(TierRouteError):
    """The shared state store could not be reached or answered with an error.

    Attributes:
        url: The store's URL with any password removed.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        self.url = url
        super().__init__(message)


@dataclass(frozen=True)
class CircuitState:
    """A circuit's state at one moment.

    Attributes:
        state: ``closed`` (traffic flows), ``open`` (cooling down; traffic skips the tier) or ``half_open``
            (cooldown over; one probe request may pass).
        failures: Failures inside the current failure window.
        cooldown_until: When the cooldown ends (epoch seconds of the caller's clock), if open or half-open.
        probe_in_flight: Whether a probe holds the probe lock.
    """

    state: Literal["closed", "open", "half_open"]
    failures: int = 0
    cooldown_until: float | None = None
    probe_in_flight: bool = False


def _circuit_state(now: float, failures: int, cooldown_until: float | None, probe_until: float | None) -> CircuitState:
    if cooldown_until is None:
        return CircuitState("closed", failures, None, False)
    state: Literal["open", "half_open"] = "open" if now < cooldown_until else "half_open"
    probing = probe_until is not None and now < probe_until
    return CircuitState(state, failures, cooldown_until, probing)


def _bucket(now: float, width: float) -> int:
    return math.floor(now / width)


def _span(window_s: float, width: float) -> int:
    return max(1, math.ceil(window_s / width - 1e-9))


class StateStore(abc.ABC):
    """Where circuit and window state lives. All methods are coroutines and take the time explicitly."""

    @abc.abstractmethod
    async def record_failure(
        self, key: str, *, now: float, window_s: float, allowed_fails: int, cooldown_s: float
    ) -> bool:
        """Record a failure at ``now``.

        Failures are counted over the last ``window_s`` seconds (a failure exactly ``window_s`` old no longer
        counts). Reaching ``allowed_fails`` opens the circuit until ``now + cooldown_s`` and clears the
        failures. A failure while half-open re-opens the circuit at once; one while open is ignored.

        Args:
            key: The circuit, e.g. ``cb:budget``.
            now: Current time.
            window_s: Failure window length in seconds.
            allowed_fails: Failures within the window that open the circuit.
            cooldown_s: How long the circuit stays open.

        Returns:
            True when this call opened the circuit.
        """

    @abc.abstractmethod
    async def record_success(self, key: str, *, now: float) -> None:
        """Record a success: while half-open it closes the circuit (clears cooldown, probe and failures).

        While closed the failure window is left as it is (failures age out); while open it is ignored.
        """

    @abc.abstractmethod
    async def circuit(self, key: str, *, now: float) -> CircuitState:
        """The circuit's state at ``now``."""

    @abc.abstractmethod
    async def acquire_probe(self, key: str, *, now: float, ttl_s: float) -> bool:
        """Try to become the one probe of a half-open circuit.

        Args:
            key: The circuit.
            now: Current time.
            ttl_s: The probe lock lapses after this long, so a crashed prober does not block the tier.

        Returns:
            True for exactly one caller (across processes for Redis) per lapse of the probe lock;
            False when the circuit is closed, still open, or another probe is in flight.
        """

    @abc.abstractmethod
    async def window_add(self, key: str, value: float, *, now: float, window_s: float) -> None:
        """Add ``value`` at ``now`` to the sliding-window sum ``key``."""

    @abc.abstractmethod
    async def window_sum(self, key: str, *, now: float, window_s: float) -> float:
        """Sum of the values added to ``key`` within the last ``window_s`` seconds (bucket precision)."""

    @abc.abstractmethod
    async def reset(self, key_prefix: str | None = None) -> None:
        """Forget every circuit and window whose key starts with ``key_prefix`` (all of them if None)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the calling event loop's connections. The store may be used again; it reconnects lazily."""


# ---- memory ---------------------------------------------------------------------------------------------


@dataclass
class _Circuit:
    failures: list[float] = field(default_factory=list)
    window_s: float | None = None
    cooldown_until: float | None = None
    probe_until: float | None = None


@dataclass
class _Window:
    width: float
    window_s: float
    buckets: dict[int, float] = field(default_factory=dict)
    last_add: float = 0.0


class MemoryStateStore(StateStore):
    """State in this process's memory (the default).

    Safe to share between threads and event loops: each operation runs under a :class:`threading.Lock`
    and never awaits while holding it. Idle records are pruned, so memory stays bounded by the live keys.
    """

    _SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}
        self._windows: dict[str, _Window] = {}
        self._adds = 0

    @staticmethod
    def _live_failures(c: _Circuit, now: float) -> list[float]:
        if c.window_s is None:
            return []
        cutoff = now - c.window_s
        return [t for t in c.failures if t > cutoff]

    async def record_failure(
        self, key: str, *, now: float, window_s: float, allowed_fails: int, cooldown_s: float
    ) -> bool:
        """See :meth:`StateStore.record_failure`."""
        with self._lock:
            c = self._circuits.setdefault(key, _Circuit())
            if c.cooldown_until is not None:
                if now < c.cooldown_until:
                    return False
                c.cooldown_until, c.probe_until, c.failures = now + cooldown_s, None, []
                return True
            c.window_s = window_s
            c.failures = [*self._live_failures(c, now), now]
            if len(c.failures) >= allowed_fails:
                c.cooldown_until, c.probe_until, c.failures = now + cooldown_s, None, []
                return True
            return False

    async def record_success(self, key: str, *, now: float) -> None:
        """See :meth:`StateStore.record_success`."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None:
                return
            if c.cooldown_until is None:
                if not self._live_failures(c, now):
                    del self._circuits[key]
            elif now >= c.cooldown_until:
                del self._circuits[key]

    async def circuit(self, key: str, *, now: float) -> CircuitState:
        """See :meth:`StateStore.circuit`."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None:
                return CircuitState("closed")
            return _circuit_state(now, len(self._live_failures(c, now)), c.cooldown_until, c.probe_until)

    async def acquire_probe(self, key: str, *, now: float, ttl_s: float) -> bool:
        """See :meth:`StateStore.acquire_probe`."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None or c.cooldown_until is None or now < c.cooldown_until:
                return False
            if c.probe_until is not None and now < c.probe_until:
                return False
            c.probe_until = now + ttl_s
            return True

    async def window_add(self, key: str, value: float, *, now: float, window_s: float) -> None:
        """See :meth:`StateStore.window_add`."""
        with self._lock:
            w = self._windows.get(key)
            if w is None:
                w = self._windows[key] = _Window(width=window_s / WINDOW_BUCKETS, window_s=window_s)
            w.window_s = max(w.window_s, window_s)
            idx = _bucket(now, w.width)
            w.buckets[idx] = w.buckets.get(idx, 0.0) + value
            w.last_add = max(w.last_add, now)
            oldest = idx - _span(w.window_s, w.width)
            for stale in [i for i in w.buckets if i <= oldest]:
                del w.buckets[stale]
            self._adds += 1
            if self._adds % self._SWEEP_EVERY == 0:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        for k in [k for k, w in self._windows.items() if now - w.last_add > w.window_s + w.width]:
            del self._windows[k]
        for k in [k for k, c in self._circuits.items() if c.cooldown_until is None and not self._live_failures(c, now)]:
            del self._circuits[k]

    async def window_sum(self, key: str, *, now: float, window_s: float) -> float:
        """See :meth:`StateStore.window_sum`."""
        with self._lock:
            w = self._windows.get(key)
            if w is None:
                return 0.0
            oldest = _bucket(now, w.width) - _span(window_s, w.width)
            return float(sum(v for i, v in w.buckets.items() if i > oldest))

    async def reset(self, key_prefix: str | None = None) -> None:
        """See :meth:`StateStore.reset`."""
        with self._lock:
            if key_prefix is None:
                self._circuits.clear()
                self._windows.clear()
                return
            for k in [k for k in self._circuits if k.startswith(key_prefix)]:
                del self._circuits[k]
            for k in [k for k in self._windows if k.startswith(key_prefix)]:
                del self._windows[k]

    async def aclose(self) -> None:
        """Nothing to release."""


def build_state_store(cfg: StateConfig) -> StateStore:
    """The store a :class:`~tierroute.config.StateConfig` describes.

    Raises:
        MissingDependencyError: ``backend: redis`` but redis-py is not installed.
        ConfigError: The Redis URL is malformed (``state.url``).
    """
    if cfg.backend == "redis":
        if not cfg.url:
            raise ConfigError("state.backend is redis but no url is given", path="state.url")
        from tierroute.state_redis import RedisStateStore

        return RedisStateStore(cfg.url, prefix=cfg.prefix)
    return MemoryStateStore()
