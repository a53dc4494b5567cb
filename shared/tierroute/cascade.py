"""Executes a routing decision: attempts, retries, fallbacks, escalation bounds and acceptance checks.

For each request the cascade walks a plan of tiers, starting at the decided one:

- a tier whose circuit is open, that cannot call tools the request carries, or whose context window the
  prompt does not fit is skipped (recorded in the trace, never called);
- a failed call is classified (:mod:`tierroute.errors_map`): rate limits, timeouts, server and connection
  errors are retried on the same tier with backoff that honours ``Retry-After``, then fall back along
  ``cascade.fallbacks``; a content-policy refusal stops (``ContentPolicyError``) or goes to the configured
  policy tier, never silently up the price ladder; a context-window error moves to the cheapest tier whose
  window fits; auth and bad-request errors fail fast;
- a successful answer runs the acceptance checks; a failed check escalates to the next tier;
- escalations are bounded per request (``max_escalations``) and per window (``escalation_budget``): past the
  budget the request fails with :class:`~tierroute.errors.EscalationBudgetError` instead of growing the bill.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tierroute.backends.base import Backend, BackendResponse, StreamChunk
from tierroute.checks import Check, SyncCheck, build_checks, parse_judge_score
from tierroute.config import RouterConfig
from tierroute.errors import (
    CascadeExhaustedError,
    ContentPolicyError,
    EscalationBudgetError,
)
from tierroute.errors_map import classify, retry_after, safe_message
from tierroute.health import Alert, AlertMonitor, CircuitBreaker, RateWindow
from tierroute.state import StateStore
from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace

__all__ = ["Cascade", "CascadeResult"]

_RETRYABLE = frozenset(
    {
        FailureKind.RATE_LIMIT,
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.CONNECTION,
        FailureKind.TRUNCATED_STREAM,
    }
)
_BREAKER_KINDS = _RETRYABLE | {FailureKind.UNKNOWN}
_FAIL_FAST = frozenset({FailureKind.AUTH, FailureKind.BAD_REQUEST})


@dataclass(slots=True)
class CascadeResult:
    """A served answer and the trace of how it was obtained."""

    response: BackendResponse
    trace: RouteTrace


@dataclass(slots=True)
class _Run:
    """Mutable state of one request's walk through the tiers."""

    decision: RouteDecision
    request: RouteRequest
    trace: RouteTrace
    tried: set[str] = field(default_factory=set)
    escalations: int = 0
    policy_moved: bool = False
    reserved: bool = False
    prompt_tokens: dict[str, int] = field(default_factory=dict)


class _Stop(Exception):
    """Internal: end the walk with this error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Cascade:
    """Runs decisions against a backend.

    Args:
        config: The validated config (``cascade`` section).
        backend: Calls tiers.
        store: Shared state (circuit breakers, escalation and alert windows).
        checks: Extra acceptance checks (callables ``(request, response) -> bool | (bool, reason)``).
        alert_callbacks: Called with each :class:`~tierroute.health.Alert`.
        clock: Wall clock (seconds).
        sleep: Async sleep, replaceable in tests.
    """

    def __init__(
        self,
        config: RouterConfig,
        backend: Backend,
        store: StateStore,
        *,
        checks: Sequence[SyncCheck] = (),
        alert_callbacks: Sequence[Callable[[Alert], None]] = (),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.cfg = config.cascade
        self.backend = backend
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.breaker = CircuitBreaker(store, self.cfg.circuit_breaker, probe_ttl_s=self.cfg.timeout_s + 5, clock=clock)
        self.alerts = (
            AlertMonitor.from_config(store, self.cfg.alerts, alert_callbacks, clock) if self.cfg.alerts else None
        )
        self.checks: list[Check] = build_checks(self.cfg.accept, checks)
        eb = self.cfg.escalation_budget
        self._esc_requests = RateWindow(store, "esc:requests", eb.window_s, clock) if eb else None
        self._esc_count = RateWindow(store, "esc:count", eb.window_s, clock) if eb else None
        self._esc_spend = RateWindow(store, "esc:spend", eb.window_s, clock) if eb else None
        self.premium = config.tiers[-1]

    # ---- planning -----------------------------------------------------------------------------------

    def _next_fallback(self, run: _Run, tier: str) -> str | None:
        """First untried tier reachable through the fallback chains from ``tier`` (depth first)."""
        seen: set[str] = set()

        def walk(t: str) -> str | None:
            for nxt in self.cfg.fallbacks.get(t, []):
                if nxt in seen:
                    continue
                seen.add(nxt)
                if nxt not in run.tried:
                    return nxt
                found = walk(nxt)
                if found:
                    return found
            return None

        return walk(tier)

    def _fits(self, run: _Run, tier: str) -> tuple[bool, int | None, int]:
        window = self.backend.context_window(tier)
        if window is None:
            return True, None, 0
        tokens = run.prompt_tokens.get(tier)
        if tokens is None:
            tokens = run.prompt_tokens[tier] = self.backend.count_tokens(tier, run.request)
        return tokens <= window, window, tokens

    def _bigger_window(self, run: _Run, tier: str, known_too_small: int | None) -> str | None:
        """The cheapest untried tier after ``tier`` (in tier order) whose window fits the prompt."""
        order = self.config.tiers
        start = order.index(tier) + 1 if tier in order else 0
        for cand in order[start:]:
            if cand in run.tried:
                continue
            fits, window, _ = self._fits(run, cand)
            if known_too_small is not None and window is not None and window <= known_too_small:
                continue
            if fits:
                return cand
        return None

    # ---- escalation bounds --------------------------------------------------------------------------

    async def _may_escalate(self, run: _Run, to_tier: str, why: str) -> None:
        """Raise if moving up to ``to_tier`` would break ``max_escalations`` or the escalation budget."""
        if run.escalations >= self.cfg.max_escalations:
            raise _Stop(
                CascadeExhaustedError(
                    f"{why}; not escalating to {to_tier!r}: max_escalations={self.cfg.max_escalations} reached",
                    run.trace,
                )
            )
        eb = self.cfg.escalation_budget
        if eb is not None and not run.reserved:
            assert self._esc_count is not None and self._esc_requests is not None and self._esc_spend is not None
            # reserve first, then check: concurrent requests see each other's reservations
            reserved_at = await self._esc_count.add(1.0)
            run.reserved = True
            count, total, spend = await asyncio.gather(
                self._esc_count.total(), self._esc_requests.total(), self._esc_spend.total()
            )
            over_share = eb.max_share is not None and total >= eb.min_requests and count > eb.max_share * total
            over_spend = eb.max_spend_usd is not None and spend >= eb.max_spend_usd
            if over_share or over_spend:
                await self._esc_count.add(-1.0, at=reserved_at)  # same bucket as the reservation
                run.reserved = False
                limit = (
                    f"max_share {eb.max_share:.2%} ({count - 1:.0f} of {total:.0f} requests escalated)"
                    if over_share
                    else f"max_spend_usd {eb.max_spend_usd} (spent {spend:.6f})"
                )
                raise _Stop(
                    EscalationBudgetError(
                        f"{why}; escalation budget for the last {eb.window_s:.0f}s is spent: {limit}", run.trace
                    )
                )
        run.escalations += 1
        run.trace.escalations = run.escalations

    # ---- one attempt --------------------------------------------------------------------------------

    def _cost(self, tier: str, resp: BackendResponse) -> float:
        if resp.cost_usd is not None:
            return resp.cost_usd
        return self.backend.price(tier, resp.usage)

    def _skip(self, run: _Run, tier: str, reason: str, kind: FailureKind | None = None) -> None:
        run.trace.attempts.append(Attempt(tier=tier, model_group=tier, failure=kind, error=reason, skipped=True))

    async def _pre_checks(self, run: _Run, tier: str) -> str | None:
        """None if the tier may be called; else the reason it is skipped (recorded)."""
        if run.request.has_tools and not self.backend.supports_tools(tier):
            self._skip(run, tier, "tier cannot call tools")
            return "tools"
        fits, window, tokens = self._fits(run, tier)
        if not fits:
            self._skip(
                run,
                tier,
                f"prompt of {tokens} tokens exceeds the {window}-token context window",
                FailureKind.CONTEXT_WINDOW,
            )
            return "context"
        allowed, state = await self.breaker.allow(tier)
        if not allowed:
            if state.state == "open" and state.cooldown_until:
                why = f"circuit open until {state.cooldown_until:.0f}"
            else:
                why = f"circuit {state.state} (a probe request is in flight)"
            self._skip(run, tier, why)
            return "circuit"
        return None

    async def _report(self, tier: str, kind: FailureKind) -> None:
        """Tell the circuit breaker how a call ended.

        Transport and server failures count against the tier. A provider that answered with a refusal or a
        4xx (content policy, context window, auth, bad request) is up: that closes a half-open circuit and
        releases its probe, so one such answer never keeps a tier blocked.
        """
        if kind in _BREAKER_KINDS:
            await self.breaker.on_failure(tier)
        else:
            await self.breaker.on_success(tier)

    async def _retry_after_failure(
        self, tier: str, att: Attempt, exc: BaseException, used: dict[FailureKind, int]
    ) -> bool:
        """Classify a failed attempt, report it, and wait if it may be retried on the same tier.

        Returns:
            True after waiting the backoff when the attempt is to be retried; False when the tier is done.
        """
        kind = classify(exc)
        att.failure, att.error = kind, safe_message(exc)
        await self._report(tier, kind)
        allowed = getattr(self.cfg.retries, kind.value, 0) if kind in _RETRYABLE else 0
        if used.get(kind, 0) >= allowed:
            return False
        wait = self._backoff(used.get(kind, 0), exc)
        if wait is None:
            return False
        used[kind] = used.get(kind, 0) + 1
        att.retry_after_s = wait
        await self.sleep(wait)
        return True

    def _backoff(self, n: int, exc: BaseException) -> float | None:
        """Seconds to wait before retry ``n`` (0-based); None when the provider asks for longer than allowed."""
        r = self.cfg.retries
        hinted = retry_after(exc)
        if hinted is not None:
            return hinted if hinted <= r.max_backoff_s else None
        return min(r.max_backoff_s, r.backoff_s * (2.0**n)) * (0.5 + random.random() / 2)

    async def _judge(self, tier: str, request: RouteRequest, response: BackendResponse, rubric: str) -> float:
        question = request.last_user_text or request.text("all")
        prompt = (
            "Grade the ANSWER to the QUESTION against the RUBRIC on a 1-5 scale (5 = fully meets it). "
            'Reply with JSON only: {"score": <1-5>, "why": "<one sentence>"}.\n\n'
            f"RUBRIC: {rubric}\n\nQUESTION:\n{question[:4000]}\n\nANSWER:\n{response.text[:4000]}"
        )
        req = RouteRequest.from_messages([{"role": "user", "content": prompt}])
        resp = await self.backend.acall(tier, req, {"temperature": 0}, self.cfg.timeout_s)
        return parse_judge_score(resp.text)

    async def _accept(self, request: RouteRequest, response: BackendResponse) -> tuple[bool, str]:
        for check in self.checks:
            result = await check.run(request, response, self._judge)
            if not result.ok:
                return False, f"{check.name}: {result.reason}"
        return True, ""

    # ---- the walk -----------------------------------------------------------------------------------

    async def _start(self, decision: RouteDecision, request: RouteRequest) -> _Run:
        if self._esc_requests is not None:
            await self._esc_requests.add(1.0)
        return _Run(decision, request, RouteTrace(decision))

    async def _finish(self, run: _Run, served: Attempt | None) -> None:
        trace = run.trace
        if served is not None:
            cf = self.backend.price(self.premium, served.usage) if served.tier != self.premium else served.cost_usd
            trace.counterfactual_cost_usd = cf
        if run.escalations and self._esc_spend is not None:
            spent = sum(a.cost_usd for a in trace.attempts if a.tier != run.decision.tier)
            if spent:
                await self._esc_spend.add(spent)
        if self.alerts is not None:
            await self.alerts.record(trace.fell_back if served else bool(run.escalations), bool(run.escalations))

    async def _move(self, run: _Run, tier: str, kind: FailureKind | None, exc: BaseException | None, why: str) -> str:
        """Where to go after ``tier`` failed with ``kind``; raises ``_Stop`` when nowhere."""
        if kind == FailureKind.CONTENT_POLICY:
            target = self.cfg.on_content_policy
            if target == "stop" or run.policy_moved or target in run.tried:
                raise _Stop(
                    ContentPolicyError(f"tier {tier!r} refused the request on content-policy grounds: {why}", run.trace)
                )
            run.policy_moved = True
            return target
        if kind in _FAIL_FAST:
            raise _Stop(
                CascadeExhaustedError(f"tier {tier!r} failed with {kind.value}, which is not retried: {why}", run.trace)
            )
        if kind == FailureKind.CONTEXT_WINDOW:
            known = self.backend.context_window(tier)
            nxt = self._bigger_window(run, tier, known)
            if nxt is None:
                raise _Stop(
                    CascadeExhaustedError(f"no tier has a context window that fits the prompt ({why})", run.trace)
                )
            return nxt
        nxt = self._next_fallback(run, tier)
        if nxt is None:
            raise _Stop(
                CascadeExhaustedError(f"every tier the cascade may try failed; last: tier {tier!r}: {why}", run.trace)
            )
        await self._may_escalate(run, nxt, f"tier {tier!r} failed ({why})")
        return nxt

    async def run(self, decision: RouteDecision, request: RouteRequest, params: Mapping[str, Any]) -> CascadeResult:
        """Execute a decision and return the accepted answer with its trace.

        Raises:
            ContentPolicyError: The provider refused and ``on_content_policy`` is ``stop``.
            EscalationBudgetError: Escalation was needed but the window's escalation budget is spent.
            CascadeExhaustedError: Every allowed attempt failed (``__cause__`` is the last provider error).
        """
        run = await self._start(decision, request)
        last_exc: BaseException | None = None
        served: Attempt | None = None
        try:
            tier: str | None = decision.tier
            while tier is not None:
                run.tried.add(tier)
                skip = await self._pre_checks(run, tier)
                if skip == "context":
                    nxt = self._bigger_window(run, tier, None)
                    if nxt is None:
                        raise _Stop(
                            CascadeExhaustedError("no tier has a context window that fits the prompt", run.trace)
                        )
                    tier = nxt
                    continue
                if skip is not None:
                    tier = await self._move(run, tier, None, None, run.trace.attempts[-1].error or skip)
                    continue
                outcome = await self._call_with_retries(run, tier, params)
                if isinstance(outcome, BaseException):
                    last_exc = outcome
                    att = run.trace.attempts[-1]
                    tier = await self._move(run, tier, att.failure, outcome, att.error or "")
                    continue
                resp, att = outcome
                ok, why = await self._accept(request, resp)
                if ok:
                    served = att
                    return CascadeResult(resp, run.trace)
                att.failure, att.error = FailureKind.REJECTED, why
                last_resp = resp
                try:
                    tier = await self._move(run, tier, FailureKind.REJECTED, None, f"answer rejected by {why}")
                except _Stop as stop:
                    if isinstance(stop.error, CascadeExhaustedError):
                        stop.error.extra["response"] = last_resp
                    raise
            raise _Stop(CascadeExhaustedError("no tier to try", run.trace))  # pragma: no cover
        except _Stop as stop:
            raise stop.error from last_exc
        finally:
            await self._finish(run, served)

    async def _call_with_retries(
        self, run: _Run, tier: str, params: Mapping[str, Any]
    ) -> tuple[BackendResponse, Attempt] | BaseException:
        used: dict[FailureKind, int] = {}
        while True:
            att = Attempt(tier=tier, model_group=tier)
            run.trace.attempts.append(att)
            t0 = time.perf_counter()
            try:
                resp = await self.backend.acall(tier, run.request, params, self.cfg.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                att.latency_s = time.perf_counter() - t0
                if await self._retry_after_failure(tier, att, exc, used):
                    continue
                return exc
            att.latency_s = time.perf_counter() - t0
            att.served_model, att.deployment = resp.served_model, resp.deployment
            att.usage = resp.usage
            att.cost_usd = self._cost(tier, resp)
            await self.breaker.on_success(tier)
            return resp, att

    # ---- streaming ----------------------------------------------------------------------------------

    def stream(
        self, decision: RouteDecision, request: RouteRequest, params: Mapping[str, Any], trace_out: list[RouteTrace]
    ) -> AsyncIterator[StreamChunk]:
        """Stream a decision (see :func:`tierroute._cascade_stream.stream_decision`)."""
        from tierroute._cascade_stream import stream_decision

        return stream_decision(self, decision, request, params, trace_out)
