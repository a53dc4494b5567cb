"""Shared helpers for cascade tests: a three-tier config pointed at a FakeProvider."""

from __future__ import annotations

from typing import Any

from tierroute import RouterConfig

TIERS = ("budget", "mid", "premium")
PRICES = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}


def config(
    base_url: str, *, windows: dict[str, int] | None = None, model_prefix: str = "", **cascade: Any
) -> RouterConfig:
    cascade = {
        "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
        "retries": {
            "rate_limit": 2,
            "timeout": 1,
            "server_error": 1,
            "connection": 1,
            "backoff_s": 0.01,
            "max_backoff_s": 2,
        },
        "max_escalations": 2,
        "timeout_s": 5,
        "circuit_breaker": {"allowed_fails": 50, "window_s": 60, "cooldown_s": 60},
        **cascade,
    }
    model_list = []
    for tier in TIERS:
        entry: dict[str, Any] = {
            "model_name": tier,
            "litellm_params": {
                "model": f"openai/{model_prefix}{tier}-model",
                "api_base": base_url,
                "api_key": "sk-fake-key-000",
                "input_cost_per_token": PRICES[tier],
                "output_cost_per_token": PRICES[tier] * 4,
            },
        }
        if windows and tier in windows:
            entry["model_info"] = {"max_input_tokens": windows[tier]}
        model_list.append(entry)
    return RouterConfig.from_dict(
        {"model_list": model_list, "tiers": list(TIERS), "default_tier": "budget", "cascade": cascade}
    )


def shape(trace: Any) -> list[tuple[str, str | None, bool]]:
    """(tier, failure kind, skipped) of every attempt."""
    return [(a.tier, a.failure.value if a.failure else None, a.skipped) for a in trace.attempts]
