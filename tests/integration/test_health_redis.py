"""RedisStateStore, CircuitBreaker and AlertMonitor against the real Redis at TIERROUTE_REDIS_URL.

CI guarantees Redis: when it is down these tests fail (with the command that starts it), they do not skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from tierroute.config import CircuitBreakerConfig
from tierroute.health import (
    Alert,
    AlertMonitor,
    CircuitBreaker,
    CircuitState,
    RateWindow,
    RedisStateStore,
    StateStoreError,
)

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("TIERROUTE_REDIS_URL", "redis://127.0.0.1:6379/0")
CFG = CircuitBreakerConfig(allowed_fails=3, window_s=60.0, cooldown_s=30.0)


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


async def _keys(store: RedisStateStore) -> dict[str, int]:
    """Every key under the store's prefix with its PTTL."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        names = [k async for k in client.scan_iter(match=f"{store.prefix}:*")]
        return {k: await client.pttl(k) for k in names}
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"tierroute-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisStateStore]:
    s = RedisStateStore(REDIS_URL, prefix=prefix)
    try:
        await s.circuit("ping", now=0.0)
    except StateStoreError as exc:
        pytest.fail(
            f"Redis is required for these tests but is not reachable at {s.safe_url}: {exc}. "
            "Start it with `bash scripts/ensure_services.sh` or set TIERROUTE_REDIS_URL.",
            pytrace=False,
        )
    yield s
    await s.reset()
    assert await _keys(s) == {}
    await s.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(store: RedisStateStore, clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(store, CFG, probe_ttl_s=10.0, clock=clock)


async def open_circuit(breaker: CircuitBreaker, clock: FakeClock, tier: str = "budget") -> None:
    for _ in range(CFG.allowed_fails):
        clock.advance(1.0)
        await breaker.on_failure(tier)
    assert (await breaker.state(tier)).state == "open"


# ---- the behaviours of the memory store, on Redis ----------------------------------------------------------


async def test_opens_after_allowed_fails_within_window(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert await breaker.allow("budget") == (True, CircuitState("closed"))
    assert await breaker.on_failure("budget") is False
    clock.advance(5)
    assert await breaker.on_failure("budget") is False
    assert (await breaker.state("budget")).failures == 2
    clock.advance(5)
    assert await breaker.on_failure("budget") is True
    allowed, state = await breaker.allow("budget")
    assert not allowed
    assert state == CircuitState("open", 0, clock() + CFG.cooldown_s, False)
    assert (await breaker.allow("mid"))[0]


async def test_failures_outside_window_do_not_count(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await breaker.on_failure("budget")
    clock.advance(30)
    await breaker.on_failure("budget")
    clock.advance(30)
    assert (await breaker.state("budget")).failures == 1
    assert await breaker.on_failure("budget") is False
    clock.advance(1)
    assert await breaker.on_failure("budget") is True


async def test_success_while_closed_keeps_failures_and_open_ignores(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await breaker.on_failure("budget")
    await breaker.on_success("budget")
    assert (await breaker.state("budget")).failures == 1
    await open_circuit(breaker, clock)
    before = await breaker.state("budget")
    clock.advance(5)
    assert await breaker.on_failure("budget") is False
    await breaker.on_success("budget")
    assert await breaker.state("budget") == before


async def test_cooldown_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    deadline = clock() + CFG.cooldown_s
    clock.advance(CFG.cooldown_s - 0.001)
    assert not (await breaker.allow("budget"))[0]
    clock.advance(0.001)
    assert await breaker.state("budget") == CircuitState("half_open", 0, deadline, False)
    results = await asyncio.gather(*(breaker.allow("budget") for _ in range(20)))
    assert sum(ok for ok, _ in results) == 1
    assert (await breaker.state("budget")).probe_in_flight
    await breaker.on_success("budget")
    assert await breaker.state("budget") == CircuitState("closed")


async def test_probe_failure_reopens_and_lock_lapses(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s)
    assert (await breaker.allow("budget"))[0]
    assert await breaker.on_failure("budget") is True
    assert await breaker.state("budget") == CircuitState("open", 0, clock() + CFG.cooldown_s, False)
    clock.advance(CFG.cooldown_s)
    assert (await breaker.allow("budget"))[0]
    clock.advance(breaker.probe_ttl_s - 0.5)
    assert not (await breaker.allow("budget"))[0]
    clock.advance(0.5)
    assert (await breaker.allow("budget"))[0]


async def test_snapshot_and_ttls(store: RedisStateStore, breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock, "budget")
    await breaker.on_failure("mid")
    await store.window_add("spend", 0.5, now=clock(), window_s=60)
    snap = await breaker.snapshot(["budget", "mid", "premium"])
    assert snap == {
        "budget": {"state": "open", "failures": 0, "cooldown_until": clock() + 30.0, "probe_in_flight": False},
        "mid": {"state": "closed", "failures": 1, "cooldown_until": None, "probe_in_flight": False},
        "premium": {"state": "closed", "failures": 0, "cooldown_until": None, "probe_in_flight": False},
    }
    assert json.loads(json.dumps(snap)) == snap
    keys = await _keys(store)
    assert keys and all(ttl > 0 for ttl in keys.values()), keys  # nothing grows forever
    assert all(k.startswith(f"{store.prefix}:") for k in keys)


async def test_reset_by_prefix(store: RedisStateStore, breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock, "budget")
    await open_circuit(breaker, clock, "mid")
    await store.window_add("spend:team-a", 2.0, now=clock(), window_s=60)
    await store.reset("cb:bud")
    assert (await breaker.state("budget")).state == "closed"
    assert (await breaker.state("mid")).state == "open"
    assert await store.window_sum("spend:team-a", now=clock(), window_s=60) == 2.0


async def test_window_sums_with_expiry(store: RedisStateStore, clock: FakeClock) -> None:
    start = clock()
    await store.window_add("w", 1.0, now=start, window_s=60)
    await store.window_add("w", 2.5, now=start + 30, window_s=60)
    assert await store.window_sum("w", now=start + 59, window_s=60) == 3.5
    assert await store.window_sum("w", now=start + 60, window_s=60) == 2.5
    assert await store.window_sum("w", now=start + 90, window_s=60) == 0.0
    window = RateWindow(store, "spend", 3600.0, clock)
    await asyncio.gather(*(window.add(0.001) for _ in range(100)))
    assert await window.total() == pytest.approx(0.1)


async def test_alert_monitor_counts_are_shared(store: RedisStateStore, clock: FakeClock) -> None:
    seen: list[Alert] = []
    kwargs = {"fallback_rate": 0.2, "window_s": 100.0, "min_requests": 10, "clock": clock}
    a = AlertMonitor(store, callbacks=[seen.append], **kwargs)  # type: ignore[arg-type]
    b = AlertMonitor(store, **kwargs)  # type: ignore[arg-type]
    for _ in range(9):
        await b.record(fell_back=True, escalated=False)
    fired = await a.record(fell_back=False, escalated=False)  # 9/10 across both "processes"
    assert fired == seen == [Alert("fallback_rate", 0.9, 0.2, 100.0, 10)]
    assert await a.record(fell_back=True, escalated=False) == []
    for _ in range(50):
        await b.record(fell_back=False, escalated=False)
    await a.record(fell_back=False, escalated=False)  # 10/62 < 0.2: re-armed
    for _ in range(20):
        await b.record(fell_back=True, escalated=False)
    await a.record(fell_back=True, escalated=False)
    assert len(seen) == 2
    assert a.counters() == {"requests": 4, "fallbacks": 2, "escalations": 0, "alerts": 2}


async def test_unreachable_redis_raises_state_store_error_without_password() -> None:
    store = RedisStateStore("redis://user:hunter2@127.0.0.1:1/0", socket_timeout_s=2.0)
    with pytest.raises(StateStoreError) as info:
        await store.circuit("budget", now=0.0)
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    assert info.value.url == "redis://user:***@127.0.0.1:1/0"
    await store.aclose()


def test_redis_store_from_two_event_loops_in_two_threads(prefix: str) -> None:
    store = RedisStateStore(REDIS_URL, prefix=prefix)
    clock = FakeClock()
    breaker = CircuitBreaker(store, CircuitBreakerConfig(allowed_fails=20, window_s=600, cooldown_s=60), clock=clock)
    barrier = threading.Barrier(2)
    opened: list[bool] = []
    errors: list[BaseException] = []

    async def work() -> None:
        barrier.wait()
        for _ in range(25):
            await store.window_add("requests", 1.0, now=clock(), window_s=60)
            opened.append(await breaker.on_failure("budget"))
        await store.aclose()  # closes this loop's client only; the other thread keeps working

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors, errors

    async def check() -> None:
        # a third loop; the same store object reconnects lazily after aclose()
        assert await store.window_sum("requests", now=clock(), window_s=60) == 50.0
        assert (await breaker.state("budget")).state == "open"
        await store.reset()
        await store.aclose(all_loops=True)

    asyncio.run(check())
    assert opened.count(True) == 1


async def test_user_loop_and_private_background_loop(store: RedisStateStore, clock: FakeClock) -> None:
    """The router's pattern: async calls on the user's loop, sync calls through a background loop thread."""
    background = asyncio.new_event_loop()
    thread = threading.Thread(target=background.run_forever, daemon=True)
    thread.start()
    try:

        def sync_add(value: float) -> None:
            coro = store.window_add("mixed", value, now=clock(), window_s=60)
            asyncio.run_coroutine_threadsafe(coro, background).result(timeout=10)

        await asyncio.to_thread(sync_add, 1.0)
        await store.window_add("mixed", 2.0, now=clock(), window_s=60)
        await asyncio.to_thread(sync_add, 4.0)
        assert await store.window_sum("mixed", now=clock(), window_s=60) == 7.0
        await store.aclose(all_loops=True)  # closes the background loop's client too
        assert await store.window_sum("mixed", now=clock(), window_s=60) == 7.0  # reconnects
    finally:
        background.call_soon_threadsafe(background.stop)
        thread.join(timeout=10)
        background.close()


# ---- two processes -----------------------------------------------------------------------------------------

CHILD_PRELUDE = textwrap.dedent(
    """
    import asyncio, sys, time
    from tierroute.config import CircuitBreakerConfig
    from tierroute.health import CircuitBreaker, RedisStateStore
    url, prefix, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
    clock = (lambda: now) if now else time.time
    cfg = CircuitBreakerConfig(allowed_fails=3, window_s=60, cooldown_s=30)
    """
)

CHILD_FAIL = CHILD_PRELUDE + textwrap.dedent(
    """
    async def main():
        store = RedisStateStore(url, prefix=prefix)
        breaker = CircuitBreaker(store, cfg, clock=clock)
        print([await breaker.on_failure("budget") for _ in range(3)])
        await store.aclose()
    asyncio.run(main())
    """
)

CHILD_PROBE = CHILD_PRELUDE + textwrap.dedent(
    """
    async def main():
        store = RedisStateStore(url, prefix=prefix)
        breaker = CircuitBreaker(store, cfg, clock=clock)
        await asyncio.gather(*(store.circuit("warm", now=now) for _ in range(10)))
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(breaker.allow("budget") for _ in range(10)))
        print(sum(ok for ok, _ in results), flush=True)
        await store.aclose()
    asyncio.run(main())
    """
)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


async def test_failures_in_another_process_open_the_circuit_here(store: RedisStateStore, prefix: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD_FAIL, REDIS_URL, prefix, "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_child_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[False, False, True]"
    breaker = CircuitBreaker(store, CFG, clock=time.time)
    allowed, state = await breaker.allow("budget")
    assert not allowed
    assert state.state == "open"
    assert state.cooldown_until is not None and state.cooldown_until > time.time()


async def test_exactly_one_probe_across_two_processes(
    store: RedisStateStore, breaker: CircuitBreaker, clock: FakeClock, prefix: str
) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s + 1)  # cooldown expired; both processes see the same time
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_PROBE, REDIS_URL, prefix, repr(clock())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        ready = await asyncio.to_thread(child.stdout.readline)
        assert ready.strip() == "ready", child.stderr.read() if child.stderr else ""
        await asyncio.gather(*(store.circuit("warm", now=clock()) for _ in range(10)))
        child.stdin.write("go\n")
        child.stdin.flush()
        mine = await asyncio.gather(*(breaker.allow("budget") for _ in range(10)))
        stdout, stderr = await asyncio.to_thread(child.communicate, None, 30)
        assert child.returncode == 0, stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    theirs = int(stdout.strip())
    assert sum(ok for ok, _ in mine) + theirs == 1
    assert (await breaker.state("budget")).probe_in_flight
