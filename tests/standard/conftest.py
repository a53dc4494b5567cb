"""One FakeProvider for the langchain-tests suites: three tiers answered over real HTTP through LiteLLM.

The fake models are named ``std-<tier>-model`` so that no other test module's LiteLLM routers (which write
``model_info`` into LiteLLM's process-wide model map) share their names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tierroute.testing import FakeProvider, ModelScript

TIERS = ("budget", "mid", "premium")
PRICES = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}
JOKE = {"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse."}

_provider: list[FakeProvider] = []


def default_script(tier: str, **overrides: Any) -> ModelScript:
    """Echo the last user message; JSON-mode requests get a joke (the model following the prompt's instruction)."""
    return ModelScript(reply="echo", json_reply=JOKE, served_model=f"{tier}-model-2025-01-01", **overrides)


def provider() -> FakeProvider:
    if not _provider:
        raise RuntimeError("the FakeProvider fixture has not started")
    return _provider[0]


def router_config(base_url: str) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": t,
                "litellm_params": {
                    "model": f"openai/std-{t}-model",
                    "api_base": base_url,
                    "api_key": "sk-fake",
                    "input_cost_per_token": PRICES[t],
                    "output_cost_per_token": PRICES[t] * 4,
                },
            }
            for t in TIERS
        ],
        "tiers": list(TIERS),
        "default_tier": "budget",
        "routing": {
            "override": {"key": "tier", "allow": ["premium"]},
            "rules": [{"name": "agent-tools", "tier": "mid", "tools": True}],
        },
        "cascade": {
            "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
            "retries": {"backoff_s": 0.01, "max_backoff_s": 0.5},
            "timeout_s": 10,
        },
    }


@pytest.fixture(scope="session", autouse=True)
def fake_tiers() -> Iterator[FakeProvider]:
    with FakeProvider({f"std-{t}-model": default_script(t) for t in TIERS}) as fp:
        _provider.append(fp)
        try:
            yield fp
        finally:
            _provider.clear()
