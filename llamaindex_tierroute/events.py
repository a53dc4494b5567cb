"""LlamaIndex instrumentation event carrying each routing decision.

Every :class:`~llamaindex_tierroute.TierRouteLLM` request ends with one :class:`TierRouteEvent` sent through
``llama_index.core.instrumentation`` (inside the LLM call's span), so any event handler attached to the root
dispatcher (Arize Phoenix, Langfuse, a custom ``BaseEventHandler``) sees the tier, the deciding layer, the
reason and the cost next to LlamaIndex's own ``LLMChatEndEvent``.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher
from tierroute.errors_map import safe_message
from tierroute.types import RouteTrace

__all__ = ["TierRouteEvent", "dispatcher", "emit_route_event"]

dispatcher = get_dispatcher("llamaindex_tierroute")


class TierRouteEvent(BaseEvent):
    """How one request was routed and served.

    Attributes:
        tier: The tier that answered (the decided tier when nothing answered).
        decided_tier: The tier the router chose before any fallback.
        layer: The decision layer (``override``, ``rules``, ``semantic``, ``classifier``, ``default``).
        reason: Why that layer chose the tier.
        score: The layer's confidence or similarity, when it has one.
        served_model: The provider model that answered.
        attempts: Calls made or skipped, with tier and failure kind each.
        cost_usd: Cost of every attempt.
        counterfactual_cost_usd: What the served tokens would have cost on the premium tier.
        fell_back: Whether the answer came from another tier than the decided one.
        stream: Whether the request was streamed.
        error: The error class and message when the request failed.
    """

    tier: str | None = None
    decided_tier: str | None = None
    layer: str | None = None
    reason: str | None = None
    score: float | None = None
    served_model: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    cost_usd: float = 0.0
    counterfactual_cost_usd: float = 0.0
    fell_back: bool = False
    stream: bool = False
    error: str | None = None

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "TierRouteEvent"


def emit_route_event(trace: RouteTrace | None, *, stream: bool, error: BaseException | None = None) -> None:
    """Send a :class:`TierRouteEvent` for a finished request (nothing when there is no trace and no error)."""
    if trace is None and error is None:
        return
    data: dict[str, Any] = dict(trace.to_dict()) if trace is not None else {}
    dispatcher.event(
        TierRouteEvent(
            tier=data.get("tier"),
            decided_tier=data.get("decided_tier"),
            layer=data.get("layer"),
            reason=data.get("reason"),
            score=data.get("score"),
            served_model=data.get("served_model"),
            attempts=data.get("attempts", []),
            cost_usd=float(data.get("cost_usd") or 0.0),
            counterfactual_cost_usd=float(data.get("counterfactual_cost_usd") or 0.0),
            fell_back=bool(trace.fell_back) if trace is not None else False,
            stream=stream,
            error=safe_message(error) if error is not None else None,
        )
    )
