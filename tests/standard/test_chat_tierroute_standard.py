"""langchain-tests standard suites for ChatTierRoute.

The unit suite builds the model from a config whose tiers are never called. The integration suite talks real
HTTP to a FakeProvider through LiteLLM (three tiers; tool requests go to ``mid`` by a ``tools: true`` rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_tierroute import ChatTierRoute

from .conftest import TIERS, default_script, provider, router_config

# Tool calls the fake model makes for the tests that check specific arguments. FakeProvider answers forced
# tool calls with arguments built from the schema; these scripts stand in for a model reading the prompt.
SCRIPTED_TOOL_CALLS: dict[str, list[dict[str, Any]]] = {
    "test_tool_calling": [{"name": "magic_function", "arguments": {"input": 3}}],
    "test_tool_calling_async": [{"name": "magic_function", "arguments": {"input": 3}}],
    "test_agent_loop": [{"name": "get_weather", "arguments": {"location": "San Francisco, CA"}}],
    # One script answers both prompts of the test (Chinese, then Japanese): the name carries both scripts'
    # characters. What the test checks is that non-ASCII arguments survive JSON, HTTP, LiteLLM and the router.
    "test_unicode_tool_call_integration": [
        {
            "name": "unicode_customer",
            "arguments": {"customer_name": "你好啊集团 / こんにちは株式会社", "description": "科技公司"},
        }
    ],
}


class TestChatTierRouteUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatTierRoute

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"config": router_config("http://127.0.0.1:9/v1")}

    @property
    def model_override_value(self) -> str:
        return "premium"


class TestChatTierRouteIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatTierRoute

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"config": router_config(provider().base_url)}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # a tier allow-listed in routing.override; the served model's name contains it
        return "premium"

    @pytest.fixture(autouse=True)
    def _tool_script(self, request: pytest.FixtureRequest) -> Iterator[None]:
        calls = SCRIPTED_TOOL_CALLS.get(request.node.originalname)
        fp = provider()
        if calls:
            for t in TIERS:
                fp.set_script(f"std-{t}-model", default_script(t, tool_calls=calls))
        try:
            yield
        finally:
            for t in TIERS:
                fp.set_script(f"std-{t}-model", default_script(t))
