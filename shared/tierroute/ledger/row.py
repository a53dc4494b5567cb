"""One ledger row from one finished request (a :class:`~tierroute.hooks.RequestEvent`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierroute.hooks import RequestEvent
    from tierroute.types import RouteRequest

__all__ = ["build_row", "prompt_sha256"]


def _meta_str(metadata: Mapping[str, Any], key: str, limit: int = 200) -> str | None:
    value = metadata.get(key)
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return None
    return str(value)[:limit]


def _prompt_text(request: RouteRequest) -> str:
    return "\n".join(f"{role}: {text}" for role, text in zip(request.roles, request.texts))


def prompt_sha256(request: RouteRequest) -> str:
    """SHA-256 (hex) of the request's roles and message texts; what the ledger stores instead of the prompt."""
    return hashlib.sha256(_prompt_text(request).encode("utf-8", "replace")).hexdigest()


def build_row(
    event: RequestEvent, *, store_prompt_text: bool = False, key_field: str = "key", user_field: str = "user"
) -> dict[str, Any]:
    """The ledger row of a finished request.

    Money and tokens are the trace's: ``cost_usd`` is every attempt's cost (answers rejected on the way
    included), ``counterfactual_cost_usd`` what the served answer's tokens would have cost on the premium tier,
    tokens are summed over every attempt. Attempt errors are the trace's (already redacted), cut to 200
    characters. ``tier`` is the tier that served the answer (the decided tier when
    none did); ``fell_back`` is whether another tier than the decided one served it.

    Args:
        event: The finished request.
        store_prompt_text: Keep the message texts (otherwise only their SHA-256).
        key_field: Request metadata key naming the API key / team the request is billed to.
        user_field: Request metadata key naming the end user.
    """
    req = event.request
    meta = req.metadata
    trace = event.trace
    decision = event.decision or (trace.decision if trace is not None else None)
    served = trace.served if trace is not None else None
    attempts: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = calls = 0
    if trace is not None:
        for a in trace.attempts:
            attempts.append(
                {
                    "tier": a.tier,
                    "model": a.served_model,
                    "failure": a.failure.value if a.failure is not None else None,
                    "error": a.error[:200] if a.error else None,
                    "skipped": a.skipped,
                    "latency_ms": round(a.latency_s * 1000.0, 3),
                    "prompt_tokens": a.usage.prompt_tokens,
                    "completion_tokens": a.usage.completion_tokens,
                    "cost_usd": a.cost_usd,
                }
            )
            prompt_tokens += a.usage.prompt_tokens
            completion_tokens += a.usage.completion_tokens
            calls += 0 if a.skipped else 1
    decided = decision.tier if decision is not None else None
    budget = event.extra.get("budget")
    budget_action = budget.get("action") if isinstance(budget, Mapping) else None
    return {
        "id": uuid.uuid4().hex,
        "ts_ms": round((event.started_at + event.latency_s) * 1000.0),
        "request_id": _meta_str(meta, "request_id"),
        "key": _meta_str(meta, key_field),
        "user": _meta_str(meta, user_field),
        "decided_tier": decided,
        "layer": decision.layer if decision is not None else None,
        "score": decision.score if decision is not None else None,
        "tier": served.tier if served is not None else decided,
        "served_model": served.served_model if served is not None else None,
        "calls": calls,
        "attempts": json.dumps(attempts, separators=(",", ":")),
        "fell_back": bool(trace is not None and trace.fell_back),
        "escalations": trace.escalations if trace is not None else 0,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": float(trace.cost_usd) if trace is not None else 0.0,
        "counterfactual_cost_usd": float(trace.counterfactual_cost_usd) if trace is not None else 0.0,
        "latency_ms": event.latency_s * 1000.0,
        "outcome": event.outcome[:100],
        "stream": event.stream,
        "task_type": _meta_str(meta, "task_type", 100),
        "expected_tier": _meta_str(meta, "expected_tier", 100),
        "budget_action": str(budget_action)[:300] if budget_action else None,
        "prompt_sha256": prompt_sha256(req),
        "prompt_text": _prompt_text(req) if store_prompt_text else None,
    }
