"""Request hooks: how the ledger, budgets and metrics see every routed request.

A hook may implement either method (or both):

- ``async before(request, decision, extra) -> RouteDecision | None``: runs after routing, before the cascade.
  ``extra`` is the per-request dict later found on :attr:`RequestEvent.extra`. Return
  a different decision to change the tier (a budget downgrading), ``None`` to keep it, or raise (a budget
  refusing with :class:`~tierroute.errors.BudgetExceededError`).
- ``async after(event)``: runs once per request when it has ended (answer, error, or the end of a stream),
  with a :class:`RequestEvent`. Exceptions raised by ``after`` are logged, never raised to the caller.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tierroute.types import RouteDecision, RouteRequest, RouteTrace

if TYPE_CHECKING:
    from tierroute.backends.base import BackendResponse

__all__ = ["RequestEvent", "RequestHook", "run_after", "run_before"]

log = logging.getLogger("tierroute")


@dataclass(slots=True)
class RequestEvent:
    """One finished request.

    Attributes:
        request: The request as routed.
        decision: The routing decision (after ``before`` hooks).
        trace: Every attempt; None when the request failed before the cascade ran.
        response: The served answer, when there is one.
        error: The error the caller received, when there is one.
        started_at: Wall-clock start (seconds since the epoch).
        latency_s: Time from the start to the end of the request.
        stream: Whether the request was streamed.
        extra: Values hooks share with each other for this request (e.g. a budget reservation id).
    """

    request: RouteRequest
    decision: RouteDecision | None
    trace: RouteTrace | None
    response: BackendResponse | None = None
    error: BaseException | None = None
    started_at: float = field(default_factory=time.time)
    latency_s: float = 0.0
    stream: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """``ok``, or the error's class name."""
        return "ok" if self.error is None else type(self.error).__name__


@runtime_checkable
class RequestHook(Protocol):
    """Marker protocol; implement ``before`` and/or ``after`` (see the module docstring)."""


async def run_before(
    hooks: list[Any], request: RouteRequest, decision: RouteDecision, extra: dict[str, Any]
) -> RouteDecision:
    """Let every hook see (and possibly change) the decision; errors propagate to the caller."""
    for hook in hooks:
        before = getattr(hook, "before", None)
        if before is None:
            continue
        changed = await before(request, decision, extra)
        if changed is not None:
            decision = changed
    return decision


async def run_after(hooks: list[Any], event: RequestEvent) -> None:
    """Tell every hook a request ended; a failing hook is logged and never breaks the request."""
    for hook in hooks:
        after = getattr(hook, "after", None)
        if after is None:
            continue
        try:
            await after(event)
        except Exception:  # a hook must never turn a served answer into an error
            log.exception("tierroute: request hook %r failed", hook)
