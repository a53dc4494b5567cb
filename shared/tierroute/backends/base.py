"""The backend protocol: how the cascade calls one tier.

A backend is the transport seam (like httpx's ``handle_request``): the LiteLLM backend calls a model group
through ``litellm.Router``; adapters add backends for framework model objects. The cascade treats them alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tierroute.types import RouteRequest, Usage

__all__ = ["Backend", "BackendResponse", "StreamChunk", "TierBackends", "ToolCall"]


@dataclass(slots=True)
class ToolCall:
    """A tool call in OpenAI form; ``arguments`` is the JSON string the model produced."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """OpenAI ``tool_calls`` entry."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class BackendResponse:
    """One successful model call.

    Attributes:
        text: The assistant text ("" when the model only called tools).
        tool_calls: Tool calls the model made.
        finish_reason: Provider finish reason (``stop``, ``length``, ``tool_calls``...).
        usage: Token usage reported by the provider.
        served_model: The provider model that actually answered (not the tier alias).
        deployment: Identifier of the deployment inside the tier, when known.
        cost_usd: Cost computed by the backend, when it can (else the cascade prices it).
        raw: The provider payload.
    """

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    served_model: str | None = None
    deployment: str | None = None
    cost_usd: float | None = None
    raw: Any = None

    def message(self) -> dict[str, Any]:
        """The reply as an OpenAI assistant message dict."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [t.to_openai() for t in self.tool_calls]
        return msg


@dataclass(slots=True)
class StreamChunk:
    """One streamed piece. ``tool_call_deltas`` are OpenAI-shaped deltas; usage comes on the last chunk."""

    text: str = ""
    tool_call_deltas: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    served_model: str | None = None
    deployment: str | None = None
    raw: Any = None


@runtime_checkable
class Backend(Protocol):
    """Calls tiers. Implementations raise provider exceptions as they are; the core classifies them."""

    def tiers(self) -> list[str]:
        """Tiers this backend can call."""
        ...

    async def acall(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> BackendResponse:
        """Call a tier once (no retries, no fallbacks)."""
        ...

    def astream(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[StreamChunk]:
        """Stream a tier's answer once (no retries, no fallbacks)."""
        ...

    def context_window(self, tier: str) -> int | None:
        """Maximum input tokens of the tier, when known."""
        ...

    def count_tokens(self, tier: str, request: RouteRequest) -> int:
        """Prompt tokens of the request as the tier would count them."""
        ...

    def supports_tools(self, tier: str) -> bool:
        """Whether the tier can call tools."""
        ...

    def price(self, tier: str, usage: Usage) -> float:
        """Cost in USD of the usage on the tier (list price)."""
        ...


class TierBackends:
    """Dispatches each tier to its own backend (LiteLLM groups and framework model objects side by side).

    Args:
        by_tier: The backend serving each tier.
    """

    def __init__(self, by_tier: Mapping[str, Backend]) -> None:
        self.by_tier = dict(by_tier)

    def _b(self, tier: str) -> Backend:
        try:
            return self.by_tier[tier]
        except KeyError:
            raise KeyError(f"no backend serves tier {tier!r}; tiers with a backend: {sorted(self.by_tier)}") from None

    def tiers(self) -> list[str]:
        """Every tier with a backend."""
        return list(self.by_tier)

    async def acall(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> BackendResponse:
        """Call the tier's backend."""
        return await self._b(tier).acall(tier, request, params, timeout_s)

    def astream(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[StreamChunk]:
        """Stream from the tier's backend."""
        return self._b(tier).astream(tier, request, params, timeout_s)

    def context_window(self, tier: str) -> int | None:
        """The tier's context window."""
        return self._b(tier).context_window(tier)

    def count_tokens(self, tier: str, request: RouteRequest) -> int:
        """Prompt tokens on the tier."""
        return self._b(tier).count_tokens(tier, request)

    def supports_tools(self, tier: str) -> bool:
        """Whether the tier can call tools."""
        return self._b(tier).supports_tools(tier)

    def price(self, tier: str, usage: Usage) -> float:
        """List price of usage on the tier."""
        return self._b(tier).price(tier, usage)
