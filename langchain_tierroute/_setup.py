"""Building a TierRouter for the LangChain adapter: config loading, tier objects, retries and timeouts."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import SecretStr
from tierroute.backends.base import Backend
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError, InvalidRequestError
from tierroute.router import TierRouter
from tierroute.types import RouteRequest

from langchain_tierroute._convert import route_metadata, to_openai_messages
from langchain_tierroute._tracing import RunContext
from langchain_tierroute.backend import LangChainBackend

__all__ = ["ConfigLike", "build_request", "build_router", "effective_config", "load_config", "split_tiers"]

ConfigLike = RouterConfig | Mapping[str, Any] | str | os.PathLike[str]

_RETRY_KINDS = ("rate_limit", "timeout", "server_error", "connection", "truncated_stream")


def load_config(config: Any, external: Iterable[str] = ()) -> RouterConfig:
    """A validated config from a :class:`RouterConfig`, a mapping (parsed YAML) or a YAML file path.

    Args:
        config: The config.
        external: Tiers served by objects passed in code; they need no ``model_list`` deployment.

    Raises:
        ConfigError: The config is invalid, or a configured tier has neither a deployment nor an object.
    """
    ext = frozenset(external)
    if isinstance(config, RouterConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = RouterConfig.from_dict(config, external_tiers=ext)
    elif isinstance(config, (str, os.PathLike)):
        cfg = RouterConfig.from_yaml(Path(config), external_tiers=ext)
    else:
        raise ConfigError(
            f"config must be a RouterConfig, a dict or a YAML path, got {type(config).__name__}",
            hint="e.g. ChatTierRoute.from_yaml('tierroute.yaml')",
        )
    unknown = sorted(ext - set(cfg.tiers))
    if unknown:
        raise ConfigError(
            f"tier object(s) given for {unknown}, which the config does not list",
            path="tiers",
            hint=f"use tier names from the config: {cfg.tiers}",
        )
    groups = {d.model_name for d in cfg.model_list}
    missing = [t for t in cfg.tiers if t not in groups and t not in ext]
    if missing:
        raise ConfigError(
            f"tier(s) {missing} have no model_list deployment and no model object",
            path="tiers",
            hint="add a model_list entry for each, or pass tiers={name: ChatModel(...)}",
        )
    return cfg


def effective_config(
    cfg: RouterConfig, *, timeout: float | None, max_retries: int | None, api_key: SecretStr | None
) -> RouterConfig:
    """The config with the LangChain-standard ``timeout``, ``max_retries`` and ``api_key`` applied.

    ``timeout`` replaces ``cascade.timeout_s`` (per attempt); ``max_retries`` caps the retries per failure kind on
    one tier; ``api_key`` fills deployments that have none. The given config is not modified.
    """
    if timeout is None and max_retries is None and api_key is None:
        return cfg
    out = cfg.model_copy(deep=True)
    if timeout is not None:
        out.cascade.timeout_s = float(timeout)
    if max_retries is not None:
        for kind in _RETRY_KINDS:
            setattr(out.cascade.retries, kind, min(int(getattr(out.cascade.retries, kind)), max(0, max_retries)))
    if api_key is not None:
        for dep in out.model_list:
            if dep.litellm_params.api_key is None:
                dep.litellm_params.api_key = api_key
    return out


def split_tiers(tiers: Mapping[str, Any]) -> tuple[dict[str, BaseChatModel], dict[str, Backend]]:
    """Separate LangChain chat models from ready-made tierroute backends.

    Raises:
        ConfigError: A value is neither.
    """
    models: dict[str, BaseChatModel] = {}
    backends: dict[str, Backend] = {}
    for tier, obj in tiers.items():
        if isinstance(obj, BaseChatModel):
            models[tier] = obj
        elif isinstance(obj, Backend):
            backends[tier] = obj
        else:
            raise ConfigError(
                f"tier {tier!r} is a {type(obj).__name__}; expected a LangChain chat model or a tierroute Backend",
                path=f"tiers.{tier}",
                hint="pass e.g. ChatOpenAI(model=..., max_retries=0)",
            )
    return models, backends


def build_router(
    cfg: RouterConfig,
    tiers: Mapping[str, Any],
    *,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    hooks: Sequence[Any] = (),
    encoder: Any = None,
    classifier: Any = None,
) -> TierRouter:
    """A :class:`TierRouter` whose tier objects become backends (one :class:`LangChainBackend` for the models)."""
    models, backends = split_tiers(tiers)
    by_tier: dict[str, Backend] = dict(backends)
    if models:
        lc = LangChainBackend(models, prices=prices)
        by_tier.update(dict.fromkeys(models, lc))
    return TierRouter(cfg, backends=by_tier, hooks=list(hooks), encoder=encoder, classifier=classifier)


def _pin(cfg: RouterConfig, tier: Any) -> tuple[str, str]:
    """The override metadata key and tier for a per-call ``model=<tier>``."""
    if tier not in cfg.tiers:
        raise InvalidRequestError(f"model={tier!r} is not a tier; tiers: {cfg.tiers}")
    override = cfg.routing.override
    if override is None or tier not in override.allow:
        allowed = override.allow if override is not None else []
        raise InvalidRequestError(
            f"model={tier!r} pins a tier through routing.override, which allows {allowed}; "
            f"add it to routing: {{override: {{allow: [{tier}]}}}} in the config"
        )
    return override.key, str(tier)


def build_request(
    cfg: RouterConfig,
    messages: Sequence[BaseMessage],
    *,
    stop: list[str] | None,
    run: RunContext,
    defaults: Mapping[str, Any],
    kwargs: Mapping[str, Any],
) -> tuple[RouteRequest, dict[str, Any]]:
    """The routed request and the chat parameters of one LangChain call.

    The run's metadata and tags become request metadata (the rules layer reads them); ``tools`` become the
    request's tools; ``model=<tier>`` pins an allow-listed tier through ``routing.override``; the rest are
    OpenAI chat parameters over the model's defaults (the core rejects unknown ones).

    Raises:
        InvalidRequestError: ``model`` is not a tier the override allows, or the messages cannot be routed.
    """
    call = dict(kwargs)
    call.pop("stream", None)
    pinned = call.pop("model", None)
    tools = call.pop("tools", None)
    params: dict[str, Any] = {**defaults, **call}
    if stop is not None:
        params["stop"] = stop
    params = {k: v for k, v in params.items() if v is not None and not (k == "stop" and not v)}
    metadata = route_metadata(run.metadata, run.tags)
    if pinned is not None:
        key, tier = _pin(cfg, pinned)
        metadata[key] = tier
    request = RouteRequest.from_messages(to_openai_messages(messages), tools=tools, metadata=metadata)
    return request, params
