"""The LlamaIndex LLM contract, run against TierRouteLLM: LiteLLM tiers, and a LlamaIndex LLM object as a tier."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.llms.llm import LLM
from llama_index.llms.litellm import LiteLLM
from tierroute.testing import FakeProvider

from llamaindex_tierroute import TierRouteLLM

from .llm_contract import FAKE_MODEL, SECRET, LLMContract


def config(base_url: str, *, budget: bool = True) -> dict[str, Any]:
    deployments = [("premium", "premium-model")]
    if budget:
        deployments.insert(0, ("budget", FAKE_MODEL))
    return {
        "model_list": [
            {
                "model_name": tier,
                "litellm_params": {"model": f"openai/{model}", "api_base": base_url, "api_key": SECRET},
            }
            for tier, model in deployments
        ],
        "tiers": ["budget", "premium"],
        "default_tier": "budget",
        "cascade": {"fallbacks": {}, "retries": {"backoff_s": 0.01}, "timeout_s": 5},
    }


class TestTierRouteLLMContract(LLMContract):
    @pytest.fixture()
    def llm(self, fake: FakeProvider) -> LLM:
        return TierRouteLLM(config=config(fake.base_url))


class TestTierRouteLLMObjectTierContract(LLMContract):
    """The budget tier is a LlamaIndex LLM object: the backend converts requests to ChatMessages and back."""

    @pytest.fixture()
    def llm(self, fake: FakeProvider) -> LLM:
        tier = LiteLLM(model=f"openai/{FAKE_MODEL}", api_base=fake.base_url, api_key=SECRET, max_retries=1)
        return TierRouteLLM(config=config(fake.base_url, budget=False), tiers={"budget": tier})
