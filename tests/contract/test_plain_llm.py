"""The LlamaIndex LLM contract, run against a plain tier LLM (llama-index-llms-litellm) to keep the suite honest:
whatever it demands, an established integration also does."""

from __future__ import annotations

import pytest
from llama_index.core.llms.llm import LLM
from llama_index.llms.litellm import LiteLLM
from tierroute.testing import FakeProvider

from .llm_contract import FAKE_MODEL, SECRET, LLMContract


class TestPlainLiteLLMContract(LLMContract):
    @pytest.fixture()
    def llm(self, fake: FakeProvider) -> LLM:
        return LiteLLM(model=f"openai/{FAKE_MODEL}", api_base=fake.base_url, api_key=SECRET, max_retries=1)
