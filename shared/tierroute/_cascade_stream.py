"""Streaming through the cascade: the tier is chosen and failures retried before the first token.

A failure after the first token raises :class:`~tierroute.errors.StreamInterruptedError` carrying what was
streamed (no silent truncation, no duplicate tokens); a stream that ends without ``finish_reason`` is a
``truncated_stream`` failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tierroute.backends.base import StreamChunk
from tierroute.cascade import _BREAKER_KINDS, _Stop
from tierroute.errors import CascadeExhaustedError, StreamInterruptedError
from tierroute.errors_map import StreamTruncated, classify, safe_message
from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace, Usage

if TYPE_CHECKING:
    from tierroute.cascade import Cascade, _Run

__all__ = ["stream_decision"]


async def stream_decision(
    c: Cascade, decision: RouteDecision, request: RouteRequest, params: Mapping[str, Any], trace_out: list[RouteTrace]
) -> AsyncIterator[StreamChunk]:
    """Stream a decision: tier choice, retries and fallbacks happen before the first token.

    ``trace_out`` receives the trace as soon as the walk starts (it is complete when the stream ends).

    Raises:
        StreamInterruptedError: The stream failed after tokens were sent; carries the partial text.
        ContentPolicyError, EscalationBudgetError, CascadeExhaustedError: As :meth:`Cascade.run`, before any token.
    """
    run = await c._start(decision, request)
    trace_out.append(run.trace)
    served: Attempt | None = None
    last_exc: BaseException | None = None
    try:
        tier: str | None = decision.tier
        while tier is not None:
            run.tried.add(tier)
            skip = await c._pre_checks(run, tier)
            if skip == "context":
                tier = c._bigger_window(run, tier, None)
                if tier is None:
                    raise _Stop(CascadeExhaustedError("no tier has a context window that fits the prompt", run.trace))
                continue
            if skip is not None:
                tier = await c._move(run, tier, None, None, run.trace.attempts[-1].error or skip)
                continue
            opened = await _open_stream_with_retries(c, run, tier, params)
            if isinstance(opened, BaseException):
                last_exc = opened
                att = run.trace.attempts[-1]
                tier = await c._move(run, tier, att.failure, opened, att.error or "")
                continue
            head, rest, att = opened
            served = att
            async for chunk in _relay(c, run, tier, att, head, rest):
                yield chunk
            return
    except _Stop as stop:
        raise stop.error from last_exc
    finally:
        await c._finish(run, served)


async def _open_stream_with_retries(
    c: Cascade, run: _Run, tier: str, params: Mapping[str, Any]
) -> tuple[list[StreamChunk], AsyncIterator[StreamChunk], Attempt] | BaseException:
    """Open a stream and read up to its first token (or its end), retrying failures on the way."""
    used: dict[FailureKind, int] = {}
    while True:
        att = Attempt(tier=tier, model_group=tier)
        run.trace.attempts.append(att)
        t0 = time.perf_counter()
        head: list[StreamChunk] = []
        it = c.backend.astream(tier, run.request, params, c.cfg.timeout_s).__aiter__()
        try:
            while True:
                try:
                    chunk = await it.__anext__()
                except StopAsyncIteration:
                    if not any(h.finish_reason for h in head):
                        raise StreamTruncated("stream ended before any token and without a finish_reason") from None
                    break
                head.append(chunk)
                if chunk.text or chunk.tool_call_deltas or chunk.finish_reason:
                    break
            att.latency_s = time.perf_counter() - t0
            return head, it, att
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            att.latency_s = time.perf_counter() - t0
            if await c._retry_after_failure(tier, att, exc, used):
                continue
            return exc


async def _relay(
    c: Cascade, run: _Run, tier: str, att: Attempt, head: list[StreamChunk], rest: AsyncIterator[StreamChunk]
) -> AsyncIterator[StreamChunk]:
    text: list[str] = []
    finished = False
    usage: Usage | None = None
    t0 = time.perf_counter() - att.latency_s

    def note(ch: StreamChunk) -> None:
        nonlocal finished, usage
        text.append(ch.text)
        finished = finished or ch.finish_reason is not None
        usage = ch.usage or usage
        att.served_model = ch.served_model or att.served_model
        att.deployment = ch.deployment or att.deployment

    for ch in head:
        note(ch)
        yield ch
    try:
        async for ch in rest:
            note(ch)
            yield ch
        if not finished:
            raise StreamTruncated("stream ended without a finish_reason", received_chars=sum(map(len, text)))
    except Exception as exc:
        kind = classify(exc)
        # tokens were sent, so a dropped connection or a provider error now means a cut-off answer
        if kind in (FailureKind.CONNECTION, FailureKind.SERVER_ERROR, FailureKind.UNKNOWN):
            kind = FailureKind.TRUNCATED_STREAM
        att.failure, att.error = kind, safe_message(exc)
        att.latency_s = time.perf_counter() - t0
        if att.failure in _BREAKER_KINDS:
            await c.breaker.on_failure(tier)
        raise StreamInterruptedError(
            f"stream from tier {tier!r} failed after tokens were sent ({att.failure.value}): {att.error}",
            partial_text="".join(text),
            trace=run.trace,
        ) from exc
    att.latency_s = time.perf_counter() - t0
    att.usage = usage or Usage()
    att.cost_usd = c.backend.price(tier, att.usage)
    await c.breaker.on_success(tier)
