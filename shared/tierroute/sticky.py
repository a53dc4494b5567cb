"""Session stickiness: a conversation keeps the tier it started on unless a later turn needs a higher one.

A chat that bounces between models from turn to turn reads oddly (tone and memory change under the user) and
throws away provider-side prompt caches. :class:`StickySessions` is a request hook (see :mod:`tierroute.hooks`)
that pins each conversation, identified by a thread id in the request metadata (``thread_id`` by default,
which LangGraph sets from ``config={"configurable": {"thread_id": ...}}``):

- the first routed request of a thread keeps its decision, and that tier becomes the thread's tier;
- a later decision for a *higher* tier (later in ``tiers``, cheapest first) stands and raises the thread's tier;
- a later decision for a *lower* tier is replaced by the thread's tier, with layer ``sticky`` and a reason that
  says what the decision layers had chosen;
- a decision of the ``override`` layer (an explicit, allow-listed tier) is honoured as it is and leaves the
  thread's tier alone; so is any request without a thread id, or whose tier is not in ``tiers``.

Only decisions count: a fallback to another tier during execution does not move the thread.

Where pins live:

- in memory (default): an LRU of at most ``max_threads`` threads, each forgotten ``ttl_s`` seconds after its
  last request;
- in a :class:`~tierroute.state.StateStore` (pass ``store``; with the Redis store every process shares the
  pins): one sliding window per (thread, tier) marks that the thread was served on that tier within the last
  ``ttl_s`` seconds, and the thread's tier is the highest tier so marked. Thread ids are hashed before they
  become keys, so no conversation id is written to Redis as it is.

Example:
    >>> from tierroute import TierRouter  # doctest: +SKIP
    >>> router = TierRouter.from_yaml("examples/tierroute.yaml")  # doctest: +SKIP
    >>> router.hooks.insert(0, StickySessions.for_router(router))  # doctest: +SKIP
    >>> router.complete("hi", metadata={"thread_id": "t-1"})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tierroute.errors import ConfigError
from tierroute.types import LayerVerdict, RouteDecision, RouteRequest

if TYPE_CHECKING:
    from tierroute.router import TierRouter
    from tierroute.state import StateStore

__all__ = ["StickySessions"]


class StickySessions:
    """Request hook that keeps each conversation on its first tier unless a later turn needs a higher one.

    Args:
        tiers: Tier names, cheapest first (``config.tiers``).
        key: The request-metadata key holding the thread id.
        ttl_s: A thread is forgotten this long after its last request.
        max_threads: In-memory mode: the least recently used threads beyond this many are forgotten.
        store: A :class:`~tierroute.state.StateStore`, or a callable returning one (resolved on first use),
            to keep pins there instead of in this process's memory.
        prefix: Key prefix inside the store.
        clock: Wall clock in seconds (the store's windows use it too).

    Raises:
        ConfigError: ``tiers`` is empty or repeats a name, or ``ttl_s`` / ``max_threads`` is not positive.
    """

    def __init__(
        self,
        tiers: Sequence[str],
        *,
        key: str = "thread_id",
        ttl_s: float = 3600.0,
        max_threads: int = 10_000,
        store: StateStore | Callable[[], StateStore] | None = None,
        prefix: str = "sticky",
        clock: Callable[[], float] = time.time,
    ) -> None:
        tiers = list(tiers)
        if not tiers or len(set(tiers)) != len(tiers):
            raise ConfigError(
                f"sticky sessions need the tier names, cheapest first, each once; got {tiers}",
                path="sticky.tiers",
                hint="pass config.tiers",
            )
        if not ttl_s > 0:
            raise ConfigError(f"ttl_s must be > 0, got {ttl_s}", path="sticky.ttl_s")
        if max_threads < 1:
            raise ConfigError(f"max_threads must be >= 1, got {max_threads}", path="sticky.max_threads")
        self.tiers = tiers
        self.rank = {t: i for i, t in enumerate(tiers)}
        self.key = key
        self.ttl_s = float(ttl_s)
        self.max_threads = max_threads
        self.prefix = prefix
        self.clock = clock
        self._store_src = store
        self._store: StateStore | None = None
        self._lock = threading.Lock()
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @classmethod
    def for_router(cls, router: TierRouter, *, shared: bool | None = None, **kwargs: Any) -> StickySessions:
        """Sticky sessions over a router's tiers.

        Args:
            router: The router whose ``config.tiers`` give the order.
            shared: Keep pins in the router's state store (Redis when ``state.backend`` is ``redis``, so every
                process shares them). Default: shared exactly when the config's state backend is Redis.
            **kwargs: Other :class:`StickySessions` arguments (``key``, ``ttl_s``, ``max_threads``).
        """
        if shared is None:
            shared = router.config.state.backend == "redis"
        store: Callable[[], StateStore] | None = (lambda: router.cascade.store) if shared else None
        return cls(router.config.tiers, store=store, **kwargs)

    # ---- the hook -----------------------------------------------------------------------------------

    def thread_of(self, request: RouteRequest) -> str | None:
        """The request's thread id, or None when it has none (strings and integers are accepted)."""
        value = request.metadata.get(self.key)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value)
        return text or None

    async def before(
        self, request: RouteRequest, decision: RouteDecision, extra: dict[str, Any]
    ) -> RouteDecision | None:
        """Keep the thread on its tier (see the module docstring); record the effective tier."""
        thread = self.thread_of(request)
        if thread is None or decision.tier not in self.rank or decision.layer == "override":
            return None
        pinned = await self.tier_of(thread)
        if pinned is None or self.rank[decision.tier] >= self.rank[pinned]:
            await self._remember(thread, decision.tier)
            extra["sticky"] = {"thread": thread, "tier": decision.tier, "pinned_before": pinned, "changed": False}
            return None
        await self._remember(thread, pinned)
        extra["sticky"] = {"thread": thread, "tier": pinned, "pinned_before": pinned, "changed": True}
        reason = (
            f"thread {self.key}={thread!r} stays on {pinned!r} (a conversation keeps its tier unless a turn needs "
            f"a higher one); the {decision.layer} layer chose {decision.tier!r}: {decision.reason}"
        )
        verdict = LayerVerdict("sticky", pinned, None, reason)
        return dataclasses.replace(
            decision, tier=pinned, layer="sticky", reason=reason, verdicts=(*decision.verdicts, verdict)
        )

    # ---- pins ---------------------------------------------------------------------------------------

    def _resolve_store(self) -> StateStore | None:
        if self._store is None and self._store_src is not None:
            src = self._store_src
            self._store = src() if callable(src) else src
        return self._store

    def _store_key(self, thread: str, tier: str) -> str:
        digest = hashlib.sha256(thread.encode("utf-8", "replace")).hexdigest()[:32]
        return f"{self.prefix}:{digest}:{tier}"

    async def tier_of(self, thread: str) -> str | None:
        """The tier a thread is pinned to, or None for a new (or expired) thread."""
        store = self._resolve_store()
        now = self.clock()
        if store is None:
            with self._lock:
                entry = self._pins.get(thread)
                if entry is None:
                    return None
                tier, expires = entry
                if now >= expires:
                    del self._pins[thread]
                    return None
                return tier
        sums = await asyncio.gather(
            *(store.window_sum(self._store_key(thread, t), now=now, window_s=self.ttl_s) for t in self.tiers)
        )
        marked = [t for t, s in zip(self.tiers, sums) if s > 0]
        return marked[-1] if marked else None

    async def _remember(self, thread: str, tier: str) -> None:
        store = self._resolve_store()
        now = self.clock()
        if store is None:
            with self._lock:
                self._pins[thread] = (tier, now + self.ttl_s)
                self._pins.move_to_end(thread)
                while len(self._pins) > self.max_threads:
                    self._pins.popitem(last=False)
            return
        await store.window_add(self._store_key(thread, tier), 1.0, now=now, window_s=self.ttl_s)

    async def forget(self, thread: str) -> None:
        """Drop a thread's pin (its next request is routed afresh)."""
        store = self._resolve_store()
        if store is None:
            with self._lock:
                self._pins.pop(thread, None)
            return
        prefix = self._store_key(thread, "")
        await store.reset(prefix)

    def __len__(self) -> int:
        """Threads pinned in memory (0 in store mode, where the store holds them)."""
        with self._lock:
            return len(self._pins)

    def __repr__(self) -> str:
        where = "store" if self._store_src is not None else f"memory, max {self.max_threads}"
        return f"StickySessions(tiers={self.tiers}, key={self.key!r}, ttl_s={self.ttl_s:g}, {where})"
