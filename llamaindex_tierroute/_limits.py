"""Context window, output size and tool support of the tiers, for ``TierRouteLLM.metadata``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tierroute.router import TierRouter

__all__ = ["TierLimits", "tier_limits"]


@dataclass(frozen=True)
class TierLimits:
    """What LlamaIndex plans prompts with.

    Attributes:
        tier: The tier with the smallest known context window (the cheapest tier when none is known).
        context_window: Its context window (None when no tier's window is known).
        num_output: Its maximum output tokens (None when unknown).
        tools: Whether any tier can call tools.
    """

    tier: str
    context_window: int | None
    num_output: int | None
    tools: bool


def _litellm_max_output(router: TierRouter, tier: str) -> int | None:
    """Smallest max output among a LiteLLM tier's deployments: config ``model_info`` first, then LiteLLM's map."""
    sizes: list[int] = []
    for dep in router.config.deployments(tier):
        info: dict[str, Any] = {**(dep.litellm_params.model_extra or {}), **(dep.model_info or {})}
        size = info.get("max_output_tokens")
        if size is None:
            try:
                import litellm

                size = litellm.get_model_info(dep.litellm_params.model).get("max_output_tokens")
            except Exception:  # a model LiteLLM does not know: unknown
                size = None
        if size is not None:
            sizes.append(int(size))
    return min(sizes) if sizes else None


def tier_limits(router: TierRouter) -> TierLimits:
    """Limits of the smallest tier the router may pick (every configured tier may be picked)."""
    backends = router.cascade.backend  # TierBackends
    tiers = list(router.config.tiers)
    windows = {t: backends.context_window(t) for t in tiers}
    known = {t: w for t, w in windows.items() if w}
    smallest = min(known, key=lambda t: known[t]) if known else tiers[0]
    own = backends.by_tier.get(smallest)
    num_output = own.num_output(smallest) if hasattr(own, "num_output") else _litellm_max_output(router, smallest)
    return TierLimits(
        tier=smallest,
        context_window=known.get(smallest),
        num_output=num_output,
        tools=any(backends.supports_tools(t) for t in tiers),
    )
