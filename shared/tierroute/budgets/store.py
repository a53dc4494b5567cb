"""Budget counters with atomic check-and-reserve: in memory (one process) or in Redis (shared).

A counter holds the settled spend of one limit in one period plus the reservations of requests in flight.
:meth:`BudgetStore.reserve` takes candidate plans (the decided tier first, cheaper tiers after) and, in one
atomic step, admits the first whose every counter is below its threshold, adding the plan's amounts.
:meth:`BudgetStore.settle` replaces a reservation with the actual cost.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tierroute.errors import MissingDependencyError

if TYPE_CHECKING:
    from tierroute.state_redis import LoopClient

__all__ = ["UNCHECKED", "BudgetStore", "MemoryBudgetStore", "RedisBudgetStore", "Reservation", "Want"]

UNCHECKED = 1e300
"""Threshold of a reservation that is made without a check (requests on zero-cost tiers)."""


@dataclass(frozen=True)
class Want:
    """What one plan reserves on one counter.

    Attributes:
        counter: Counter key, e.g. ``global:day:2025-01-31``.
        amount: USD to reserve (0: nothing to check; free models are never blocked).
        threshold: The counter must be below this to admit the reservation.
        refuse: When this counter stops a plan, stop trying cheaper plans.
        ttl_s: Counter lifetime.
        label: The limit, e.g. ``tier:premium/hour``.
        limit: The limit in USD.
        tier: For tier limits, the tier whose spend settles this counter (None: the whole request's cost).
    """

    counter: str
    amount: float
    threshold: float
    refuse: bool
    ttl_s: float
    label: str
    limit: float
    tier: str | None = None


@dataclass
class Reservation:
    """A granted reservation (or the reason none was granted).

    Attributes:
        wants: The admitted plan's reservations (empty when refused).
        failed: The counter that stopped the first plan, and its value then.
    """

    wants: list[Want]
    failed: tuple[Want, float] | None = None


class BudgetStore(abc.ABC):
    """Where budget counters live."""

    @abc.abstractmethod
    async def reserve(self, candidates: Sequence[Sequence[Want]]) -> tuple[int, Reservation]:
        """Atomically admit the first candidate whose counters are all below their thresholds and reserve it.

        Returns:
            The admitted candidate's index (-1 if none) and the reservation.
        """

    @abc.abstractmethod
    async def settle(self, reservation: Reservation, actual: Sequence[float]) -> None:
        """Replace each reserved amount with the actual cost (same order as ``reservation.wants``)."""

    @abc.abstractmethod
    async def values(self, counters: Sequence[str]) -> list[float]:
        """Current value of each counter (0 when absent)."""

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Release connections."""


def _admit(candidates: Sequence[Sequence[Want]], current: dict[str, float]) -> tuple[int, tuple[Want, float] | None]:
    failed: tuple[Want, float] | None = None
    for i, wants in enumerate(candidates):
        stop: tuple[Want, float] | None = None
        for w in wants:
            if w.amount > 0 and current.get(w.counter, 0.0) >= w.threshold:
                stop = (w, current.get(w.counter, 0.0))
                break
        if stop is None:
            return i, failed
        failed = failed or stop
        if stop[0].refuse:
            return -1, failed
    return -1, failed


class MemoryBudgetStore(BudgetStore):
    """Counters in this process (thread-safe). Periods are part of the counter keys; old ones expire."""

    def __init__(self, clock: Any = time.time) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float]] = {}  # counter -> (value, expires_at)
        self._clock = clock

    def _get(self, counter: str, now: float) -> float:
        v = self._values.get(counter)
        if v is None or v[1] <= now:
            return 0.0
        return v[0]

    async def reserve(self, candidates: Sequence[Sequence[Want]]) -> tuple[int, Reservation]:
        """See :meth:`BudgetStore.reserve`."""
        now = self._clock()
        with self._lock:
            current = {w.counter: self._get(w.counter, now) for ws in candidates for w in ws}
            idx, failed = _admit(candidates, current)
            if idx < 0:
                return -1, Reservation([], failed)
            for w in candidates[idx]:
                if w.amount > 0:
                    self._values[w.counter] = (current[w.counter] + w.amount, now + w.ttl_s)
            if len(self._values) > 4096:
                for k in [k for k, (_, exp) in self._values.items() if exp <= now]:
                    del self._values[k]
            return idx, Reservation(list(candidates[idx]), failed)

    async def settle(self, reservation: Reservation, actual: Sequence[float]) -> None:
        """See :meth:`BudgetStore.settle`."""
        now = self._clock()
        with self._lock:
            for w, cost in zip(reservation.wants, actual):
                reserved = w.amount if w.amount > 0 else 0.0
                if cost == reserved:
                    continue
                self._values[w.counter] = (self._get(w.counter, now) + cost - reserved, now + w.ttl_s)

    async def values(self, counters: Sequence[str]) -> list[float]:
        """See :meth:`BudgetStore.values`."""
        now = self._clock()
        with self._lock:
            return [self._get(c, now) for c in counters]


# KEYS: every counter of every candidate, in order. ARGV: ncand, then per candidate its key count, then per key:
# amount, threshold, refuse (0/1), ttl_ms. Returns {index (1-based; 0 = none), failed key position, value}.
_RESERVE = """
local ncand = tonumber(ARGV[1])
local counts = {}
for c = 1, ncand do counts[c] = tonumber(ARGV[1 + c]) end
local base = 1 + ncand
local pos = 1
local failed_pos, failed_val = 0, '0'
for c = 1, ncand do
  local stop = 0
  local stop_val = '0'
  for i = pos, pos + counts[c] - 1 do
    local o = base + (i - 1) * 4
    if tonumber(ARGV[o + 1]) > 0 then
      local cur = redis.call('GET', KEYS[i]) or '0'
      if tonumber(cur) >= tonumber(ARGV[o + 2]) then stop = i; stop_val = cur; break end
    end
  end
  if stop == 0 then
    for i = pos, pos + counts[c] - 1 do
      local o = base + (i - 1) * 4
      if tonumber(ARGV[o + 1]) > 0 then
        redis.call('INCRBYFLOAT', KEYS[i], ARGV[o + 1])
        redis.call('PEXPIRE', KEYS[i], ARGV[o + 4])
      end
    end
    return {c, failed_pos, failed_val}
  end
  if failed_pos == 0 then failed_pos = stop; failed_val = stop_val end
  if ARGV[base + (stop - 1) * 4 + 3] == '1' then return {0, failed_pos, failed_val} end
  pos = pos + counts[c]
end
return {0, failed_pos, failed_val}
"""

# KEYS: counters. ARGV: per key: delta, ttl_ms.
_SETTLE = """
for i = 1, #KEYS do
  local d = ARGV[(i - 1) * 2 + 1]
  if tonumber(d) ~= 0 then
    redis.call('INCRBYFLOAT', KEYS[i], d)
    redis.call('PEXPIRE', KEYS[i], ARGV[(i - 1) * 2 + 2])
  end
end
return 1
"""


class RedisBudgetStore(BudgetStore):
    """Counters in Redis, shared by every process using the same URL and prefix.

    Check-and-reserve is one Lua script, so concurrent requests in any number of processes see each other's
    reservations. Keys: ``{prefix}:{budget}:<counter>`` (one Redis Cluster slot), each with a TTL of two
    periods and a day.

    Args:
        url: ``redis://host:6379/0``.
        prefix: Key namespace (the state store's prefix).
        socket_timeout_s: Connect and read timeout.

    Raises:
        MissingDependencyError: redis-py is not installed.
        ConfigError: The URL is malformed.
    """

    def __init__(self, url: str, prefix: str = "tierroute", *, socket_timeout_s: float = 5.0) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("redis", "redis", "shared budgets") from exc
        from tierroute.state_redis import RedisLoopClients, redact_url, validate_redis_url

        validate_redis_url(url)
        self._url = url
        self.safe_url = redact_url(url)
        self.prefix = prefix
        self._timeout = socket_timeout_s
        self._pool = RedisLoopClients(url, socket_timeout_s, {"reserve": _RESERVE, "settle": _SETTLE})

    def __repr__(self) -> str:
        return f"RedisBudgetStore(url={self.safe_url!r}, prefix={self.prefix!r})"

    def key(self, counter: str) -> str:
        """The Redis key of a counter."""
        return f"{self.prefix}:{{budget}}:{counter}"

    def _client(self) -> LoopClient:
        return self._pool.get()

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import RedisError

        from tierroute.state import StateStoreError

        entry = self._client()
        try:
            return await entry.scripts[script](keys=keys, args=args, client=entry.client)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise StateStoreError(
                f"Redis budget store at {self.safe_url} failed: {type(exc).__name__}", url=self.safe_url
            ) from exc

    async def reserve(self, candidates: Sequence[Sequence[Want]]) -> tuple[int, Reservation]:
        """See :meth:`BudgetStore.reserve`."""
        flat = [w for ws in candidates for w in ws]
        if not flat:
            return 0, Reservation([], None)
        args: list[Any] = [len(candidates), *(len(ws) for ws in candidates)]
        for w in flat:
            args += [repr(float(w.amount)), repr(float(w.threshold)), int(w.refuse), int(w.ttl_s * 1000)]
        idx, failed_pos, failed_val = await self._call("reserve", [self.key(w.counter) for w in flat], args)
        failed = (flat[int(failed_pos) - 1], float(failed_val)) if int(failed_pos) else None
        if int(idx) == 0:
            return -1, Reservation([], failed)
        return int(idx) - 1, Reservation(list(candidates[int(idx) - 1]), failed)

    async def settle(self, reservation: Reservation, actual: Sequence[float]) -> None:
        """See :meth:`BudgetStore.settle`."""
        keys: list[str] = []
        args: list[Any] = []
        for w, cost in zip(reservation.wants, actual):
            delta = cost - (w.amount if w.amount > 0 else 0.0)
            if delta != 0:
                keys.append(self.key(w.counter))
                args += [repr(float(delta)), int(w.ttl_s * 1000)]
        if keys:
            await self._call("settle", keys, args)

    async def values(self, counters: Sequence[str]) -> list[float]:
        """See :meth:`BudgetStore.values`."""
        if not counters:
            return []
        entry = self._client()
        raw = await entry.client.mget([self.key(c) for c in counters])
        return [float(v) if v is not None else 0.0 for v in raw]

    async def reset(self) -> None:
        """Delete every budget counter under this prefix."""
        client = self._client().client
        batch = [k async for k in client.scan_iter(match=f"{self.prefix}:{{budget}}:*", count=500)]
        if batch:
            await client.unlink(*batch)

    async def aclose(self) -> None:
        """Close the calling event loop's client."""
        await self._pool.aclose()
