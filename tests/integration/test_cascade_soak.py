"""Soak: 2,000 concurrent requests through one ``TierRouter`` against FakeProvider with ~20% mixed faults.

Real HTTP through LiteLLM to FakeProvider; the invariants are checked against the traces, the typed errors
and FakeProvider's own request log, so nothing here trusts the cascade's bookkeeping alone.

Timeouts: at concurrency 50 one event loop queues LiteLLM's per-call work, so a healthy call already
takes up to ~0.5 s (p99 on an idle 2-CPU box, more when the box is busy). A ``timeout_s`` of 0.3 s would
time out healthy calls, some before they reach the server, and the request-log checks could not be
exact. The cascade's ``timeout_s`` is therefore 3 s and injected timeouts hang for 4 s: each costs 3 s
of one of the 50 slots, a couple of seconds in all.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tierroute import CascadeExhaustedError, ContentPolicyError, EscalationBudgetError, TierRouter
from tierroute.config import OverrideConfig, RouterConfig, RoutingConfig
from tierroute.errors import TierRouteError
from tierroute.router import Completion
from tierroute.testing import FakeProvider, Fault, ModelScript
from tierroute.types import Attempt, FailureKind, RouteTrace

from .cascade_helpers import PRICES, TIERS, config

N_REQUESTS = 2000
CONCURRENCY = 50
TIMEOUT_S = 3.0
HANG_S = 4.0
RETRIES = {"rate_limit": 2, "timeout": 1, "server_error": 1, "connection": 1, "truncated_stream": 1}
MAX_ESCALATIONS = 1
MAX_SHARE = 0.05
MIN_REQUESTS = 20

# Attempts bound. In one visit to a tier, ``_call_with_retries`` retries each retryable kind up to its own
# count (a per-kind ``used`` counter), so a visit makes at most 1 + sum(RETRIES) calls: every retry spends
# one unit of some kind's allowance and the call after the last allowed retry is the one that is returned.
# Every move to another tier (after a failure, a rejected answer or a skipped tier) goes through
# ``_may_escalate``, so a request visits at most 1 + MAX_ESCALATIONS tiers (``on_content_policy: stop`` and
# no context windows: the two moves that bypass it cannot happen here). A skipped tier is one visit with one
# (skipped) entry and no call. Hence:
#     non-skipped attempts <= called tiers * (1 + sum(RETRIES))
#     skipped entries      <= skipped tiers
#     called + skipped tiers <= 1 + MAX_ESCALATIONS
#     len(trace.attempts)  <= (1 + MAX_ESCALATIONS) * (1 + sum(RETRIES))  = 2 * 7 = 14
PER_VISIT = 1 + sum(RETRIES.values())
MAX_VISITS = 1 + MAX_ESCALATIONS
MAX_ATTEMPTS = MAX_VISITS * PER_VISIT

# FakeProvider outcome -> the failure kind the cascade must record for that call.
OUTCOME_KIND = {
    "rate_limit": "rate_limit",
    "server_error": "server_error",
    "timeout": "timeout",
    "connection_reset": "connection",
    "content_policy": "content_policy",
}


def _unit(seed: int, n: int) -> float:
    return int.from_bytes(hashlib.sha256(f"{seed}:{n}".encode()).digest()[:8], "big") / 2**64


class SometimesEmpty:
    """A reply callable: "" on a deterministic ``share`` of calls (rejected by ``non_empty``), else text."""

    def __init__(self, text: str, share: float, seed: int) -> None:
        self.text, self.share, self.seed = text, share, seed
        self._lock = threading.Lock()
        self.calls = 0
        self.empty = 0

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            self.calls += 1
            if _unit(self.seed, self.calls) < self.share:
                self.empty += 1
                return ""
        return self.text


def faults(seed: int, scale: float) -> list[Fault]:
    """About ``scale`` * 17% of calls fail, of every kind; the first matching fault wins."""
    return [
        Fault("rate_limit", rate=0.05 * scale, seed=seed + 1, retry_after=0.01),
        Fault("server_error", rate=0.035 * scale, seed=seed + 2, status=500),
        Fault("server_error", rate=0.025 * scale, seed=seed + 3, status=503),
        Fault("timeout", rate=0.012 * scale, seed=seed + 4, hang_s=HANG_S),
        Fault("connection_reset", rate=0.03 * scale, seed=seed + 5),
        Fault("content_policy", rate=0.02 * scale, seed=seed + 6),
    ]


def soak_config(base_url: str) -> RouterConfig:
    cfg = config(
        base_url,
        retries={**RETRIES, "backoff_s": 0.001, "max_backoff_s": 0.05},
        timeout_s=TIMEOUT_S,
        max_escalations=MAX_ESCALATIONS,
        escalation_budget={"max_share": MAX_SHARE, "min_requests": MIN_REQUESTS, "window_s": 3600},
        accept=["non_empty"],
        # opens under the injected budget outage (60 failing calls in a row), rarely from background faults
        circuit_breaker={"allowed_fails": 25, "window_s": 1.0, "cooldown_s": 0.5},
    )
    # requests carry metadata {"tier": ...} so mid and premium get first-hand traffic (and faults) too
    return cfg.model_copy(update={"routing": RoutingConfig(override=OverrideConfig(key="tier", allow=list(TIERS)))})


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer") for t in TIERS}
    with FakeProvider(scripts) as provider:
        yield provider


def lane(i: int) -> str:
    """Decided tier of request ``i``: 70% budget, 20% mid, 10% premium."""
    r = i % 10
    return "budget" if r < 7 else "mid" if r < 9 else "premium"


def visits(trace: RouteTrace) -> list[tuple[str, list[Attempt]]]:
    """Consecutive runs of attempts on one tier."""
    out: list[tuple[str, list[Attempt]]] = []
    for a in trace.attempts:
        if out and out[-1][0] == a.tier and not a.skipped and not out[-1][1][-1].skipped:
            out[-1][1].append(a)
        else:
            out.append((a.tier, [a]))
    return out


def expected_cost(a: Attempt) -> float:
    price = PRICES[a.tier]
    return a.usage.prompt_tokens * price + a.usage.completion_tokens * price * 4


async def test_soak_mixed_faults_hold_every_invariant(fp: FakeProvider) -> None:
    # warm LiteLLM up (imports, clients) on fault-free scripts, so cold-start latency cannot fake a timeout
    warm = TierRouter(config(fp.base_url))
    await asyncio.gather(*(warm.acomplete(f"warm {i}") for i in range(5)))

    replies = {
        "budget": SometimesEmpty("budget answer", 0.06, seed=101),
        "mid": SometimesEmpty("mid answer", 0.03, seed=202),
        "premium": SometimesEmpty("premium answer", 0.02, seed=303),
    }
    # budget: ~19% background faults plus an outage (calls 301-360 all 503) that opens its circuit
    fp.set_script(
        "budget-model",
        ModelScript(
            reply=replies["budget"],
            faults=[Fault("server_error", status=503, calls=set(range(301, 361))), *faults(10, 1.1)],
        ),
    )
    fp.set_script("mid-model", ModelScript(reply=replies["mid"], faults=faults(20, 1.0)))
    fp.set_script("premium-model", ModelScript(reply=replies["premium"], faults=faults(30, 0.8)))
    fp.reset()

    router = TierRouter(soak_config(fp.base_url))
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> Completion | BaseException:
        async with sem:
            try:
                return await router.acomplete(f"question {i}", metadata={"tier": lane(i)})
            except BaseException as exc:  # anything at all: checked below
                return exc

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(N_REQUESTS)))
    elapsed = time.perf_counter() - t0

    # 1. every request ends in a Completion or a typed tierroute error, each with a trace
    stray = [r for r in results if not isinstance(r, (Completion, TierRouteError))]
    assert not stray, f"{len(stray)} requests escaped with untyped errors, e.g. {stray[0]!r}"
    traces: list[RouteTrace] = []
    for r in results:
        trace = r.trace if isinstance(r, Completion) else getattr(r, "trace", None)
        assert trace is not None, f"{type(r).__name__} carries no trace: {r!r}"
        traces.append(trace)
    ok = [r for r in results if isinstance(r, Completion)]
    errors = [r for r in results if isinstance(r, TierRouteError)]
    assert all(isinstance(e, (ContentPolicyError, CascadeExhaustedError)) for e in errors)

    # 2. attempts per request stay within the bound the config implies (derivation at the top)
    for i, (r, trace) in enumerate(zip(results, traces)):
        v = visits(trace)
        assert len(trace.attempts) <= MAX_ATTEMPTS, (i, len(trace.attempts))
        assert len(v) <= MAX_VISITS, (i, [t for t, _ in v])
        assert len({t for t, _ in v}) == len(v), f"request {i} revisited a tier: {[t for t, _ in v]}"
        assert trace.escalations == len(v) - 1 <= MAX_ESCALATIONS, (i, trace.escalations, len(v))
        assert trace.decision.tier == lane(i) == trace.attempts[0].tier
        for tier, atts in v:
            if atts[0].skipped:
                assert len(atts) == 1 and "circuit" in (atts[0].error or ""), (i, atts[0].error)
                continue
            assert len(atts) <= PER_VISIT, (i, tier, len(atts))
            per_kind = Counter(a.failure.value for a in atts if a.failure is not None)
            for kind, n in per_kind.items():
                assert n <= RETRIES.get(kind, 0) + 1, (i, tier, kind, n)
            # only the last call of a visit may end it: earlier ones were retried failures
            assert all(a.failure is not None and a.failure.value in RETRIES for a in atts[:-1]), (i, tier)
        if isinstance(r, Completion):
            assert trace.served is trace.attempts[-1] and r.text == f"{trace.served.tier} answer"

    # 3. a content-policy refusal ends the request: no later attempt, on any tier
    policy_traces = 0
    for r, trace in zip(results, traces):
        kinds = [a.failure for a in trace.attempts]
        if FailureKind.CONTENT_POLICY in kinds:
            policy_traces += 1
            assert kinds.index(FailureKind.CONTENT_POLICY) == len(kinds) - 1
            assert isinstance(r, ContentPolicyError)
        if isinstance(r, ContentPolicyError):
            assert kinds[-1] == FailureKind.CONTENT_POLICY

    # 4. the escalation budget: granted escalations / requests <= max_share. Every request is counted in the
    # window at its start and an escalation is reserved before the share is checked, so each grant saw every
    # earlier grant: no concurrency slack. (Grants made while the window held fewer than MIN_REQUESTS
    # requests are bounded by MIN_REQUESTS - 1 < MAX_SHARE * N_REQUESTS.)
    escalated = sum(1 for t in traces if t.escalations > 0)
    refused = [e for e in errors if isinstance(e, EscalationBudgetError)]
    assert escalated <= MAX_SHARE * N_REQUESTS, (escalated, N_REQUESTS)
    assert refused, "the escalation budget never bound: the soak does not exercise it"
    assert all(e.trace is not None and e.trace.escalations == 0 for e in refused)

    # 5. costs: only answered calls cost money, at list price; the money spent is the answers served plus the
    # answers rejected on the way
    served_cost = sum(r.trace.served.cost_usd for r in ok if r.trace.served is not None)
    rejected_cost = 0.0
    for trace in traces:
        for a in trace.attempts:
            if (a.failure is None and not a.skipped) or a.failure == FailureKind.REJECTED:
                assert a.cost_usd > 0 and a.cost_usd == pytest.approx(expected_cost(a), rel=1e-9), a
                if a.failure == FailureKind.REJECTED:
                    rejected_cost += a.cost_usd
            else:
                assert a.cost_usd == 0.0, a
    attempt_cost = sum(t.cost_usd for t in traces)
    assert served_cost + rejected_cost == pytest.approx(attempt_cost, rel=1e-9)
    assert sum(r.trace.cost_usd for r in ok) == pytest.approx(
        served_cost + sum(a.cost_usd for r in ok for a in r.trace.attempts if a.failure == FailureKind.REJECTED),
        rel=1e-9,
    )

    # 6. FakeProvider saw exactly the calls the traces record (no hidden retries inside LiteLLM or the
    # OpenAI client, no attempt recorded that never left), and each call failed the way the trace says
    calls = [a for t in traces for a in t.attempts if not a.skipped]
    records = [r for r in fp.requests if r.path.endswith("/chat/completions")]
    assert len(records) == len(calls), (len(records), len(calls))
    seen = Counter(
        (r.model.removesuffix("-model") if r.model else "", OUTCOME_KIND.get(r.outcome, r.outcome)) for r in records
    )
    traced = Counter(
        (a.tier, a.failure.value if a.failure not in (None, FailureKind.REJECTED) else "ok") for a in calls
    )
    assert seen == traced
    for tier in TIERS:
        rejected = sum(1 for a in calls if a.tier == tier and a.failure == FailureKind.REJECTED)
        assert rejected == replies[tier].empty, (tier, rejected, replies[tier].empty)

    by_type = Counter(type(e).__name__ for e in errors)
    skips = Counter((a.error or "").split(" until")[0] for t in traces for a in t.attempts if a.skipped)
    skipped = sum(skips.values())
    faults_seen = sum(n for (_, kind), n in seen.items() if kind != "ok")
    print(
        f"\nsoak: requests={N_REQUESTS} ok={len(ok)} errors={dict(sorted(by_type.items()))} "
        f"escalations={escalated} refused_escalations={len(refused)} content_policy={policy_traces} "
        f"attempts={len(calls) + skipped} calls={len(calls)} skipped={dict(skips)} injected_faults={faults_seen} "
        f"rejected={sum(x.empty for x in replies.values())} max_attempts={max(len(t.attempts) for t in traces)} "
        f"(bound {MAX_ATTEMPTS}) elapsed={elapsed:.1f}s"
    )
