"""A LlamaIndex FunctionAgent on TierRouteLLM: tool calls routed to a tool-capable tier, everything traced.

    .venv/bin/python examples/llamaindex_agent.py                   # offline demo (FakeProvider)
    .venv/bin/python examples/llamaindex_agent.py --config my.yaml  # your tiers and API keys

The agent has two tools, ``get_weather`` and ``get_local_time``. A routing rule sends every request that
carries tools to the ``mid`` tier; a small-talk question with no tools stays on ``budget``. In the offline demo
the FakeProvider model asks for both tools at once, then answers from their results, so the whole loop (tool
schemas out, tool calls back, tool results out, final answer back) runs over real HTTP through LiteLLM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PRICES = {"budget": (1e-6, 5e-6), "mid": (3e-6, 15e-6), "premium": (15e-6, 75e-6)}  # demo prices, USD/token
QUESTION = "What's the weather in Oslo right now, and what time is it there?"


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return {"oslo": "light snow, -3 °C"}.get(city.lower(), "no data")


def get_local_time(city: str) -> str:
    """Current local time in a city (24-hour clock)."""
    return {"oslo": "14:05"}.get(city.lower(), "unknown")


def answer_from_tools(body: dict[str, Any]) -> str:
    """The fake model's final answer: built from the tool results it was sent."""
    results = {m.get("tool_call_id"): m.get("content") for m in body["messages"] if m["role"] == "tool"}
    calls = [c for m in body["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    by_name = {c["function"]["name"]: results.get(c["id"]) for c in calls}
    if not by_name:
        return "Hello! Ask me about the weather or the time anywhere."
    return f"In Oslo it is {by_name.get('get_local_time')} and the weather is {by_name.get('get_weather')}."


def demo_config(base_url: str) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": tier,
                "litellm_params": {
                    "model": f"openai/{tier}-model",
                    "api_base": base_url,
                    "api_key": "sk-fake",
                    "input_cost_per_token": inp,
                    "output_cost_per_token": out,
                },
            }
            for tier, (inp, out) in PRICES.items()
        ],
        "tiers": list(PRICES),
        "default_tier": "budget",
        "routing": {"rules": [{"name": "tool-use", "tier": "mid", "tools": True}]},
        "cascade": {"fallbacks": {"budget": ["mid"], "mid": ["premium"]}, "timeout_s": 10},
    }


async def run(llm: Any) -> None:
    from llama_index.core.agent.workflow import FunctionAgent, ToolCall, ToolCallResult
    from llama_index.core.bridge.pydantic import Field
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.llms import ChatMessage
    from llama_index.core.tools import FunctionTool

    from llamaindex_tierroute import TierRouteEvent

    class Routes(BaseEventHandler):
        seen: list[TierRouteEvent] = Field(default_factory=list)

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, TierRouteEvent):
                self.seen.append(event)

    routes = Routes(seen=[])
    get_dispatcher().add_event_handler(routes)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=get_weather), FunctionTool.from_defaults(fn=get_local_time)],
        llm=llm,
        system_prompt="You answer questions about cities using the tools.",
    )
    print(f"user: {QUESTION}")
    handler = agent.run(user_msg=QUESTION)
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            print(f"  tool {event.tool_name}({event.tool_kwargs}) -> {event.tool_output.content}")
        elif isinstance(event, ToolCall):
            print(f"  model asks for {event.tool_name}({event.tool_kwargs})")
    print(f"agent: {await handler}\n")

    chat = await llm.achat([ChatMessage(role="user", content="hi!")])
    print(f"user: hi!\nassistant: {chat.message.content}\n")

    print("| call | tier | layer | reason | served model | cost USD |")
    print("|---:|---|---|---|---|---:|")
    for i, r in enumerate(routes.seen, 1):
        print(f"| {i} | {r.tier} | {r.layer} | {r.reason} | {r.served_model} | {r.cost_usd:.6f} |")
    spent = sum(r.cost_usd for r in routes.seen)
    premium = sum(r.counterfactual_cost_usd for r in routes.seen)
    print(f"\n{len(routes.seen)} routed LLM calls: ${spent:.6f} vs ${premium:.6f} all-premium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a tierroute YAML config (default: offline FakeProvider demo)")
    args = parser.parse_args()
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)  # custom-pricing notices when the Router starts

    from llamaindex_tierroute import TierRouteLLM

    if args.config:
        asyncio.run(run(TierRouteLLM.from_yaml(args.config)))
        return
    from tierroute.testing import FakeProvider, ModelScript

    calls = [
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
        {"name": "get_local_time", "arguments": {"city": "Oslo"}},
    ]
    scripts = {f"{t}-model": ModelScript(reply=answer_from_tools, tool_calls=calls) for t in PRICES}
    with FakeProvider(scripts) as fp:
        asyncio.run(run(TierRouteLLM(config=demo_config(fp.base_url))))


if __name__ == "__main__":
    main()
