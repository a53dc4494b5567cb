"""The LiteLLM backend: a tier is a LiteLLM model group called through ``litellm.Router``.

LiteLLM load-balances deployments inside a tier (rpm/tpm, cooldowns of single deployments); tierroute owns
every movement between tiers, so the Router is built with ``num_retries=0`` and no fallbacks of its own.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tierroute.backends.base import BackendResponse, StreamChunk, ToolCall
from tierroute.config import RouterConfig
from tierroute.errors import MissingDependencyError
from tierroute.types import RouteDecision, RouteRequest, Usage

if TYPE_CHECKING:
    from tierroute.hooks import RequestEvent

__all__ = ["ROUTING_METADATA", "LiteLLMBackend", "RoutingMetadataHook", "model_response_to_backend"]

#: The routing decision of the request being executed; sent to LiteLLM as ``metadata["tierroute"]`` so LiteLLM
#: callbacks (Langfuse, custom loggers...) see the decided tier, layer and reason of every call.
ROUTING_METADATA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tierroute_routing_metadata", default=None
)


class RoutingMetadataHook:
    """Request hook that publishes each request's routing decision to :data:`ROUTING_METADATA`.

    ``TierRouter`` installs it last, so it sees the decision after budgets may have changed it.
    """

    async def before(
        self, request: RouteRequest, decision: RouteDecision, extra: dict[str, Any]
    ) -> RouteDecision | None:
        """Publish the decision for the backend calls of this request."""
        info: dict[str, Any] = {
            "decided_tier": decision.tier,
            "layer": decision.layer,
            "reason": decision.reason,
            "score": decision.score,
        }
        for key in ("task_type", "request_id"):
            if isinstance(request.metadata.get(key), str):
                info[key] = request.metadata[key]
        extra["routing_metadata_token"] = ROUTING_METADATA.set(info)
        return None

    async def after(self, event: RequestEvent) -> None:
        """Clear the published decision."""
        token = event.extra.pop("routing_metadata_token", None)
        if token is not None:
            try:
                ROUTING_METADATA.reset(token)
            except ValueError:  # a stream that ended in another context than it started
                ROUTING_METADATA.set(None)


log = logging.getLogger("tierroute")

# Router settings tierroute must own: retries and movement between tiers happen in the cascade.
_OWNED_SETTINGS = ("num_retries", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "max_fallbacks")


def _import_litellm() -> Any:
    try:
        import litellm
    except ImportError as exc:
        raise MissingDependencyError("litellm", "litellm", "calling models") from exc
    return litellm


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _usage(u: Any) -> Usage | None:
    if u is None:
        return None
    return Usage(int(_get(u, "prompt_tokens", 0) or 0), int(_get(u, "completion_tokens", 0) or 0))


def model_response_to_backend(resp: Any) -> BackendResponse:
    """Convert a LiteLLM ``ModelResponse`` to a :class:`BackendResponse`."""
    choice = resp.choices[0]
    msg = choice.message
    calls = [
        ToolCall(id=str(tc.id), name=str(tc.function.name), arguments=str(tc.function.arguments or "{}"))
        for tc in (getattr(msg, "tool_calls", None) or [])
    ]
    hidden = getattr(resp, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return BackendResponse(
        text=msg.content or "",
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        usage=_usage(getattr(resp, "usage", None)) or Usage(),
        served_model=resp.model or hidden.get("litellm_model_name"),
        deployment=hidden.get("model_id"),
        cost_usd=float(cost) if cost is not None else None,
        raw=resp,
    )


class LiteLLMBackend:
    """Calls tiers as LiteLLM model groups.

    Args:
        config: The validated config; its ``model_list`` and ``router_settings`` build the Router.
        router: An existing ``litellm.Router`` to use instead (its model groups must be the tiers).
    """

    def __init__(self, config: RouterConfig, router: Any | None = None) -> None:
        self.config = config
        self._router = router
        self._window: dict[str, int | None] = {}

    @property
    def router(self) -> Any:
        """The ``litellm.Router`` (built on first use)."""
        if self._router is None:
            litellm = _import_litellm()
            for key, value in self.config.litellm_settings.items():
                setattr(litellm, key, value)
            settings = {k: v for k, v in self.config.router_settings.items() if k not in _OWNED_SETTINGS}
            dropped = sorted(set(self.config.router_settings) & set(_OWNED_SETTINGS))
            if dropped:
                log.warning("router_settings %s ignored: tierroute's cascade owns retries and fallbacks", dropped)
            settings.setdefault("timeout", self.config.cascade.timeout_s)
            self._router = litellm.Router(model_list=self.config.litellm_model_list(), num_retries=0, **settings)
        return self._router

    def tiers(self) -> list[str]:
        """Tiers with a deployment in the config."""
        return [t for t in self.config.tiers if self.config.deployments(t)]

    def _kwargs(self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        kw: dict[str, Any] = {
            **params,
            "model": tier,
            "messages": [dict(m) for m in request.messages],
            "timeout": timeout_s,
        }
        if request.tools:
            kw["tools"] = [dict(t) for t in request.tools]
        routing = ROUTING_METADATA.get()
        if routing is not None:
            user_meta = params.get("metadata")
            meta = dict(user_meta) if isinstance(user_meta, Mapping) else {}
            meta["tierroute"] = {**routing, "tier": tier}
            kw["metadata"] = meta
        return kw

    async def acall(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> BackendResponse:
        """One call to a tier."""
        resp = await self.router.acompletion(**self._kwargs(tier, request, params, timeout_s))
        return model_response_to_backend(resp)

    async def astream(
        self, tier: str, request: RouteRequest, params: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[StreamChunk]:
        """Stream one call to a tier; the last chunk carries usage."""
        kw = self._kwargs(tier, request, params, timeout_s)
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
        stream = await self.router.acompletion(**kw)
        hidden = getattr(stream, "_hidden_params", None) or {}
        deployment = hidden.get("model_id")
        async for chunk in stream:
            choices = _get(chunk, "choices") or []
            delta = _get(choices[0], "delta") if choices else None
            finish = _get(choices[0], "finish_reason") if choices else None
            deltas = []
            for tc in _get(delta, "tool_calls") or []:
                fn = _get(tc, "function")
                deltas.append(
                    {
                        "index": _get(tc, "index", 0),
                        "id": _get(tc, "id"),
                        "type": "function",
                        "function": {"name": _get(fn, "name"), "arguments": _get(fn, "arguments") or ""},
                    }
                )
            yield StreamChunk(
                text=_get(delta, "content") or "",
                tool_call_deltas=deltas,
                finish_reason=finish,
                usage=_usage(_get(chunk, "usage")),
                served_model=_get(chunk, "model"),
                deployment=deployment,
                raw=chunk,
            )

    def _model_info(self, tier: str) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for d in self.config.deployments(tier):
            info = dict(d.model_info or {})
            for key in (
                "max_input_tokens",
                "input_cost_per_token",
                "output_cost_per_token",
                "supports_function_calling",
            ):
                extra = (d.litellm_params.model_extra or {}).get(key)
                if extra is not None and key not in info:
                    info[key] = extra
            out.append((d.litellm_params.model, info))
        return out

    def context_window(self, tier: str) -> int | None:
        """Smallest max input tokens among the tier's deployments (config ``model_info`` first, then LiteLLM's map)."""
        if tier in self._window:
            return self._window[tier]
        litellm = _import_litellm()
        sizes = []
        for model, info in self._model_info(tier):
            size = info.get("max_input_tokens")
            if size is None:
                try:
                    size = litellm.get_model_info(model).get("max_input_tokens")
                except Exception:  # unknown model: no pre-check
                    size = None
            if size is not None:
                sizes.append(int(size))
        self._window[tier] = min(sizes) if sizes else None
        return self._window[tier]

    def count_tokens(self, tier: str, request: RouteRequest) -> int:
        """Prompt tokens as LiteLLM counts them for the tier's first deployment's model."""
        litellm = _import_litellm()
        deps = self.config.deployments(tier)
        model = deps[0].litellm_params.model if deps else ""
        kw: dict[str, Any] = {"model": model, "messages": [dict(m) for m in request.messages]}
        if request.tools:
            kw["tools"] = [dict(t) for t in request.tools]
        return int(litellm.token_counter(**kw))

    def supports_tools(self, tier: str) -> bool:
        """False only when the config or LiteLLM's map says a deployment cannot call functions."""
        litellm = _import_litellm()
        for model, info in self._model_info(tier):
            flag = info.get("supports_function_calling")
            if flag is None:
                try:
                    flag = litellm.get_model_info(model).get("supports_function_calling")
                except Exception:
                    flag = None
            if flag is False:
                return False
        return True

    def price(self, tier: str, usage: Usage) -> float:
        """List price of the usage on the tier's first deployment (custom prices in the config win)."""
        litellm = _import_litellm()
        infos = self._model_info(tier)
        if not infos:
            return 0.0
        model, info = infos[0]
        custom = None
        if info.get("input_cost_per_token") is not None or info.get("output_cost_per_token") is not None:
            custom = {
                "input_cost_per_token": float(info.get("input_cost_per_token") or 0.0),
                "output_cost_per_token": float(info.get("output_cost_per_token") or 0.0),
            }
        try:
            p, c = litellm.cost_per_token(
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                custom_cost_per_token=custom,
            )
        except Exception:  # a model LiteLLM has no price for and no custom price: unknown cost
            return 0.0
        return float(p) + float(c)
