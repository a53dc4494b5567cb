"""Build the :class:`~tierroute.TierRouter` behind a ``TierRouteLLM``: config plus tier objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.llms.llm import LLM
from tierroute.backends.base import Backend
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError
from tierroute.router import TierRouter

from llamaindex_tierroute.backend import LlamaIndexBackend

__all__ = ["build_router"]


def _config(config: RouterConfig | Mapping[str, Any] | None, external: frozenset[str]) -> RouterConfig:
    if isinstance(config, RouterConfig):
        return config
    if isinstance(config, Mapping):
        return RouterConfig.from_dict(config, external_tiers=external)
    if config is None:
        raise ConfigError(
            "no config given",
            path="config",
            hint="pass config=RouterConfig(...) or a config dict, or use TierRouteLLM.from_yaml(path)",
        )
    raise ConfigError(
        f"config is a {type(config).__name__}",
        path="config",
        hint="pass a RouterConfig or a mapping; for a file use TierRouteLLM.from_yaml(path)",
    )


def build_router(
    config: RouterConfig | Mapping[str, Any] | None,
    tiers: Mapping[str, Any] | None,
    prices: Mapping[str, Mapping[str, float]] | None,
    *,
    encoder: Any | None = None,
    classifier: Any | None = None,
    store: Any | None = None,
    checks: Sequence[Callable[..., Any]] = (),
    hooks: Sequence[Any] = (),
    alert_callbacks: Sequence[Callable[..., None]] = (),
) -> TierRouter:
    """A router whose tiers are the config's LiteLLM groups, except those served by objects in ``tiers``.

    Raises:
        ConfigError: Invalid config, an object for a tier the config does not list, an object that is neither a
            LlamaIndex LLM nor a tierroute backend, or a price for a tier that is not an LLM object.
    """
    tiers = dict(tiers or {})
    cfg = _config(config, frozenset(tiers))
    unknown = sorted(set(tiers) - set(cfg.tiers))
    if unknown:
        raise ConfigError(
            f"tier object(s) given for {unknown}, which the config does not list",
            path="tiers",
            hint=f"use the config's tier names {cfg.tiers}, or add the tier to `tiers:`",
        )
    llms = {t: obj for t, obj in tiers.items() if isinstance(obj, LLM)}
    stray = sorted(set(prices or {}) - set(llms))
    if stray:
        raise ConfigError(
            f"prices given for {stray}, which are not LlamaIndex LLM tiers",
            path="prices",
            hint="price LiteLLM tiers with input_cost_per_token / output_cost_per_token in their litellm_params",
        )
    backends: dict[str, Backend] = {}
    if llms:
        shared = LlamaIndexBackend(llms, prices)
        backends.update({t: shared for t in llms})
    for tier, obj in tiers.items():
        if tier in llms:
            continue
        if not isinstance(obj, Backend):
            raise ConfigError(
                f"tier {tier!r} is a {type(obj).__name__}",
                path=f"tiers.{tier}",
                hint="pass a LlamaIndex LLM (e.g. OpenAI(...)) or an object implementing tierroute's Backend protocol",
            )
        backends[tier] = obj
    return TierRouter(
        cfg,
        encoder=encoder,
        classifier=classifier,
        backends=backends,
        store=store,
        checks=checks,
        alert_callbacks=alert_callbacks,
        hooks=hooks,
    )
