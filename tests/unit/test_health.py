from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading

import pytest
from tierroute.config import CircuitBreakerConfig, StateConfig
from tierroute.errors import ConfigError
from tierroute.health import (
    Alert,
    AlertMonitor,
    CircuitBreaker,
    CircuitState,
    MemoryStateStore,
    RateWindow,
    RedisStateStore,
    StateStore,
    build_state_store,
)

CFG = CircuitBreakerConfig(allowed_fails=3, window_s=60.0, cooldown_s=30.0)


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def breaker(store: MemoryStateStore, clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(store, CFG, probe_ttl_s=10.0, clock=clock)


async def open_circuit(breaker: CircuitBreaker, clock: FakeClock, tier: str = "budget") -> None:
    for _ in range(CFG.allowed_fails):
        clock.advance(1.0)
        await breaker.on_failure(tier)
    assert (await breaker.state(tier)).state == "open"


# ---- circuit breaker ---------------------------------------------------------------------------------------


async def test_opens_after_allowed_fails_within_window(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert await breaker.allow("budget") == (True, CircuitState("closed"))
    assert await breaker.on_failure("budget") is False
    clock.advance(5)
    assert await breaker.on_failure("budget") is False
    allowed, state = await breaker.allow("budget")
    assert allowed and state == CircuitState("closed", failures=2)
    clock.advance(5)
    assert await breaker.on_failure("budget") is True
    allowed, state = await breaker.allow("budget")
    assert not allowed
    assert state == CircuitState("open", failures=0, cooldown_until=clock() + CFG.cooldown_s)
    # other tiers are unaffected
    assert (await breaker.allow("mid"))[0]


async def test_failures_outside_window_do_not_count(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await breaker.on_failure("budget")
    clock.advance(30)
    await breaker.on_failure("budget")
    clock.advance(30)  # the first failure is now exactly window_s old: out
    assert (await breaker.state("budget")).failures == 1
    assert await breaker.on_failure("budget") is False
    assert (await breaker.state("budget")).state == "closed"
    clock.advance(1)
    assert await breaker.on_failure("budget") is True


async def test_success_while_closed_keeps_failures(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await breaker.on_failure("budget")
    await breaker.on_failure("budget")
    await breaker.on_success("budget")
    assert (await breaker.state("budget")).failures == 2
    assert await breaker.on_failure("budget") is True


async def test_failure_while_open_is_ignored(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    deadline = (await breaker.state("budget")).cooldown_until
    clock.advance(10)
    assert await breaker.on_failure("budget") is False
    await breaker.on_success("budget")  # a late success from before the opening does not close it either
    assert await breaker.state("budget") == CircuitState("open", 0, deadline, False)


async def test_cooldown_expiry_gives_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    deadline = clock() + CFG.cooldown_s
    clock.advance(CFG.cooldown_s - 0.001)
    assert (await breaker.allow("budget"))[0] is False
    clock.advance(0.001)
    assert await breaker.state("budget") == CircuitState("half_open", 0, deadline, False)


async def test_exactly_one_probe_among_concurrent_callers(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s)
    results = await asyncio.gather(*(breaker.allow("budget") for _ in range(20)))
    assert sum(ok for ok, _ in results) == 1
    assert all(state.state == "half_open" and state.probe_in_flight for _, state in results)
    assert (await breaker.state("budget")).probe_in_flight


async def test_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s + 1)
    assert (await breaker.allow("budget"))[0]
    await breaker.on_success("budget")
    assert await breaker.state("budget") == CircuitState("closed")
    results = await asyncio.gather(*(breaker.allow("budget") for _ in range(5)))
    assert all(ok for ok, _ in results)


async def test_probe_failure_reopens(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s + 1)
    assert (await breaker.allow("budget"))[0]
    assert await breaker.on_failure("budget") is True
    allowed, state = await breaker.allow("budget")
    assert not allowed
    assert state == CircuitState("open", 0, clock() + CFG.cooldown_s, False)
    clock.advance(CFG.cooldown_s)
    assert (await breaker.allow("budget"))[0]  # a new probe after the new cooldown


async def test_probe_lock_lapses(breaker: CircuitBreaker, store: StateStore, clock: FakeClock) -> None:
    await open_circuit(breaker, clock)
    clock.advance(CFG.cooldown_s)
    assert (await breaker.allow("budget"))[0]
    clock.advance(breaker.probe_ttl_s - 0.5)
    assert not (await breaker.allow("budget"))[0]
    clock.advance(0.5)  # the prober crashed: its lock lapsed
    assert (await breaker.allow("budget"))[0]
    assert not await store.acquire_probe("cb:budget", now=clock(), ttl_s=10)
    assert not await store.acquire_probe("cb:closed-tier", now=clock(), ttl_s=10)


async def test_snapshot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock, "budget")
    await breaker.on_failure("mid")
    snap = await breaker.snapshot(["budget", "mid", "premium"])
    assert snap == {
        "budget": {
            "state": "open",
            "failures": 0,
            "cooldown_until": clock() + CFG.cooldown_s,
            "probe_in_flight": False,
        },
        "mid": {"state": "closed", "failures": 1, "cooldown_until": None, "probe_in_flight": False},
        "premium": {"state": "closed", "failures": 0, "cooldown_until": None, "probe_in_flight": False},
    }
    assert json.loads(json.dumps(snap)) == snap
    clock.advance(CFG.cooldown_s)
    await breaker.allow("budget")
    assert (await breaker.snapshot(["budget"]))["budget"]["state"] == "half_open"
    assert (await breaker.snapshot(["budget"]))["budget"]["probe_in_flight"] is True


async def test_reset_by_prefix(store: MemoryStateStore, breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_circuit(breaker, clock, "budget")
    await open_circuit(breaker, clock, "mid")
    await store.window_add("spend:team-a", 2.0, now=clock(), window_s=60)
    await store.reset("cb:bud")
    assert (await breaker.state("budget")).state == "closed"
    assert (await breaker.state("mid")).state == "open"
    assert await store.window_sum("spend:team-a", now=clock(), window_s=60) == 2.0
    await store.reset()
    assert (await breaker.state("mid")).state == "closed"
    assert await store.window_sum("spend:team-a", now=clock(), window_s=60) == 0.0


# ---- windows -----------------------------------------------------------------------------------------------


async def test_window_sums_with_expiry(store: MemoryStateStore, clock: FakeClock) -> None:
    start = clock()
    await store.window_add("w", 1.0, now=start, window_s=60)
    await store.window_add("w", 2.5, now=start + 30, window_s=60)
    assert await store.window_sum("w", now=start + 30, window_s=60) == 3.5
    assert await store.window_sum("w", now=start + 59, window_s=60) == 3.5
    assert await store.window_sum("w", now=start + 60, window_s=60) == 2.5  # bucket precision: 1 s
    assert await store.window_sum("w", now=start + 90, window_s=60) == 0.0
    assert await store.window_sum("missing", now=start, window_s=60) == 0.0


async def test_rate_window(store: MemoryStateStore, clock: FakeClock) -> None:
    window = RateWindow(store, "fallbacks", 10.0, clock)
    for _ in range(4):
        await window.add()
        clock.advance(1)
    await window.add(0.25)
    assert await window.total() == 4.25
    clock.advance(7)  # t=11 from start: the add at t=0 and t=1 have aged out
    assert await window.total() == 2.25


# ---- alerts ------------------------------------------------------------------------------------------------


async def test_alert_monitor_fires_once_and_rearms(
    store: MemoryStateStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Alert] = []
    monitor = AlertMonitor(
        store,
        fallback_rate=0.2,
        escalation_rate=None,
        window_s=100.0,
        min_requests=10,
        callbacks=[seen.append],
        clock=clock,
    )
    for _ in range(5):  # 100% fallback but below min_requests: no alert
        assert await monitor.record(fell_back=True, escalated=False) == []
        clock.advance(1)
    for _ in range(5):  # 5/10 = 0.5 > 0.2
        await monitor.record(fell_back=False, escalated=False)
        clock.advance(1)
    assert len(seen) == 1
    assert seen[0] == Alert("fallback_rate", 0.5, 0.2, 100.0, 10)
    with caplog.at_level(logging.WARNING, logger="tierroute"):
        for _ in range(10):  # still above: no storm
            assert await monitor.record(fell_back=True, escalated=False) == []
    assert len(seen) == 1
    for _ in range(40):  # 15/60 = 0.25 still above
        await monitor.record(fell_back=False, escalated=False)
    clock.advance(1)
    assert len(seen) == 1
    for _ in range(20):  # 15/80 < 0.2: re-armed
        await monitor.record(fell_back=False, escalated=False)
    with caplog.at_level(logging.WARNING, logger="tierroute"):
        for _ in range(30):  # rises above again
            await monitor.record(fell_back=True, escalated=False)
    assert len(seen) == 2
    assert seen[1].kind == "fallback_rate" and seen[1].rate > 0.2
    assert any("fallback_rate" in r.getMessage() for r in caplog.records)
    assert monitor.counters() == {"requests": 110, "fallbacks": 45, "escalations": 0, "alerts": 2}


async def test_alert_monitor_rearms_after_window_expiry(store: MemoryStateStore, clock: FakeClock) -> None:
    seen: list[Alert] = []
    monitor = AlertMonitor(
        store, fallback_rate=0.5, window_s=60.0, min_requests=2, callbacks=[seen.append], clock=clock
    )
    await monitor.record(True, False)
    await monitor.record(True, False)
    assert len(seen) == 1
    clock.advance(120)  # the incident aged out of the window; recovery traffic re-arms
    await monitor.record(False, False)
    await monitor.record(True, False)
    await monitor.record(True, False)
    assert len(seen) == 2


async def test_escalation_alert_and_failing_callback(
    store: MemoryStateStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("callback bug")

    seen: list[Alert] = []
    monitor = AlertMonitor(
        store,
        fallback_rate=0.9,
        escalation_rate=0.1,
        window_s=60.0,
        min_requests=4,
        callbacks=[broken, seen.append],
        clock=clock,
    )
    fired = []
    with caplog.at_level(logging.WARNING, logger="tierroute"):
        for i in range(4):
            fired += await monitor.record(fell_back=False, escalated=i == 0)
    assert [a.kind for a in fired] == ["escalation_rate"]
    assert fired == seen
    assert fired[0].to_dict() == {
        "kind": "escalation_rate",
        "rate": 0.25,
        "threshold": 0.1,
        "window_s": 60.0,
        "requests": 4,
    }
    assert any("callback" in r.getMessage() for r in caplog.records)
    assert monitor.counters()["escalations"] == 1


# ---- threads and event loops -------------------------------------------------------------------------------


def test_memory_store_from_two_event_loops_in_two_threads() -> None:
    store = MemoryStateStore()
    clock = FakeClock()
    breaker = CircuitBreaker(store, CircuitBreakerConfig(allowed_fails=50, window_s=600, cooldown_s=60), clock=clock)
    barrier = threading.Barrier(2)
    opened: list[bool] = []
    errors: list[BaseException] = []

    async def work() -> None:
        barrier.wait()
        for _ in range(100):
            await store.window_add("requests", 1.0, now=clock(), window_s=60)
            opened.append(await breaker.on_failure("budget"))
            await asyncio.sleep(0)

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
    assert not errors
    assert asyncio.run(store.window_sum("requests", now=clock(), window_s=60)) == 200.0
    assert opened.count(True) == 1  # 50 failures open it once; the rest are ignored while open
    assert asyncio.run(breaker.state("budget")).state == "open"


# ---- construction ------------------------------------------------------------------------------------------


def test_build_state_store() -> None:
    assert isinstance(build_state_store(StateConfig()), MemoryStateStore)
    store = build_state_store(StateConfig(backend="redis", url="redis://:s3cret@127.0.0.1:6379/2", prefix="x"))
    assert isinstance(store, RedisStateStore)
    assert store.prefix == "x"
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize(
    "url",
    [
        "http://:s3cret@localhost:6379/0",
        "redis://:s3cret@localhost:notaport/0",
        "redis://:s3cret@/0",
        "redis://:s3cret@localhost:6379/zero",
        "redis://:s3cret@localhost:6379/0?socket_timeout=abc",
    ],
)
def test_malformed_redis_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_state_store(StateConfig(backend="redis", url=url))
    assert info.value.path == "state.url"
    assert "s3cret" not in str(info.value)


def test_import_health_does_not_import_redis() -> None:
    code = "import sys, tierroute.health; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_redis_raises_missing_dependency() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from tierroute.config import StateConfig\n"
        "from tierroute.errors import MissingDependencyError\n"
        "from tierroute.health import build_state_store\n"
        "try:\n"
        "    build_state_store(StateConfig(backend='redis', url='redis://localhost:6379/0'))\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc.package, exc.extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "redis redis"
