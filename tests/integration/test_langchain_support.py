"""Shared helpers for the ``test_langchain_*`` modules (this module holds no tests).

A three-tier config whose tiers are LiteLLM model groups on a FakeProvider (real HTTP, real SSE), plus the
scripts the fake models answer with. The fake models are named ``lc-<tier>-model``: LiteLLM keeps a process-wide
model map that routers built with ``model_info`` write into, so names shared with other test modules could carry
their context windows into these tests.
"""

from __future__ import annotations

from typing import Any

from tierroute.testing import FakeProvider, Fault, ModelScript

TIERS = ("budget", "mid", "premium")
PRICES = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}


def script(tier: str, **kw: Any) -> ModelScript:
    """Each tier answers '<tier> answer' and reports itself as a dated model (not the tier alias)."""
    kw.setdefault("reply", f"{tier} answer")
    return ModelScript(served_model=f"{tier}-model-2025-01-01", **kw)


def fake_provider() -> FakeProvider:
    return FakeProvider({f"lc-{t}-model": script(t) for t in TIERS})


def fault(fp: FakeProvider, tier: str, *faults: Fault, **kw: Any) -> None:
    fp.set_script(f"lc-{tier}-model", script(tier, faults=list(faults), **kw))


def lc_config(
    base_url: str,
    *,
    rules: list[dict[str, Any]] | None = None,
    override: list[str] | None = None,
    drop: tuple[str, ...] = (),
    windows: dict[str, int] | None = None,
    default_tier: str = "budget",
    **cascade: Any,
) -> dict[str, Any]:
    """A config dict: one LiteLLM group per tier (except ``drop``, served by objects), fast retries."""
    model_list = [
        {
            **({"model_info": {"max_input_tokens": windows[t]}} if windows and t in windows else {}),
            "model_name": t,
            "litellm_params": {
                "model": f"openai/lc-{t}-model",
                "api_base": base_url,
                "api_key": "sk-fake-key-000",
                "input_cost_per_token": PRICES[t],
                "output_cost_per_token": PRICES[t] * 4,
            },
        }
        for t in TIERS
        if t not in drop
    ]
    routing: dict[str, Any] = {"rules": rules or []}
    if override is not None:
        routing["override"] = {"key": "tier", "allow": override}
    return {
        "model_list": model_list,
        "tiers": list(TIERS),
        "default_tier": default_tier,
        "routing": routing,
        "cascade": {
            "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
            "retries": {"backoff_s": 0.01, "max_backoff_s": 1.0},
            "max_escalations": 2,
            "timeout_s": 5,
            "circuit_breaker": {"allowed_fails": 50, "window_s": 60, "cooldown_s": 60},
            **cascade,
        },
    }


def attempts(meta: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    """(tier, failure kind, skipped) of every attempt in ``response_metadata["tierroute"]``."""
    return [(a["tier"], a["failure"], a["skipped"]) for a in meta["tierroute"]["attempts"]]
