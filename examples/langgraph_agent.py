"""A LangGraph tool-calling agent on ChatTierRoute, with a failing budget tier that the cascade routes around.

    .venv/bin/python examples/langgraph_agent.py                    # offline demo (FakeProvider)
    .venv/bin/python examples/langgraph_agent.py --config my.yaml   # your own tiers and API keys

The agent is the classic LangGraph loop: an ``agent`` node calls ``llm.bind_tools(tools)``, a ``ToolNode`` runs
the tool calls, and ``tools_condition`` loops back until the model answers in text. The only tierroute part is
the model: ``ChatTierRoute``. Tool requests are routed to the budget tier by a ``tools: true`` rule; in the
offline demo that tier answers HTTP 503 on every call (an injected fault), so the cascade retries it once and
falls back to the mid tier, and the tools travel along with the fallback. Each model turn prints its trace:
every attempt with its failure kind, which tier served, and the cost. The conversation runs on a LangGraph
thread (``config={"configurable": {"thread_id": ...}}``) with sticky sessions on: ChatTierRoute reads the
``thread_id`` LangGraph puts in the run metadata, so later turns of a thread never drop to a cheaper tier than
the one it started on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_tierroute import ChatTierRoute

PRICES = {"budget": (1e-6, 5e-6), "mid": (3e-6, 15e-6), "premium": (5e-6, 25e-6)}  # demo prices, USD/token
WEATHER = {"paris": (18, "sunny"), "oslo": (4, "sleet"), "lima": (22, "overcast")}


@tool
def get_weather(city: str) -> str:
    """Current weather in a city, in degrees Celsius."""
    temp, sky = WEATHER.get(city.lower(), (15, "clear"))
    return json.dumps({"city": city, "celsius": temp, "sky": sky})


@tool
def to_fahrenheit(celsius: float) -> float:
    """Convert degrees Celsius to Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)


TOOLS = [get_weather, to_fahrenheit]


def fake_agent_reply(body: dict[str, Any]) -> str:
    """The fake model's text answer once the tools have run: it reads the tool results it was sent."""
    results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool" and "{" in m["content"]]
    if results:
        w = results[-1]
        return f"It is {w['celsius']} °C and {w['sky']} in {w['city']}."
    return "How can I help?"


def offline_config(base_url: str) -> dict[str, Any]:
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
        "default_tier": "mid",
        "routing": {"rules": [{"name": "agent-tools", "tier": "budget", "tools": True}]},
        "cascade": {
            "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
            "retries": {"server_error": 1, "backoff_s": 0.05},
            "circuit_breaker": {"allowed_fails": 100},
        },
    }


def build_agent(llm: ChatTierRoute) -> Any:
    model = llm.bind_tools(TOOLS)

    async def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver())


def show(message: BaseMessage) -> None:
    if isinstance(message, ToolMessage):
        print(f"  tool {message.name} -> {message.content}")
        return
    if not isinstance(message, AIMessage):
        return
    tr = message.response_metadata.get("tierroute", {})
    tried = ", ".join(f"{a['tier']}:{a['failure'] or 'ok'}" for a in tr.get("attempts", []))
    print(
        f"  model turn: served by tier {tr.get('tier')} ({message.response_metadata.get('model_name')}), "
        f"decided {tr.get('decided_tier')} by {tr.get('layer')}; attempts [{tried}]; cost ${tr.get('cost_usd', 0):.6f}"
    )
    if message.tool_calls:
        calls = ", ".join(f"{c['name']}({json.dumps(c['args'])})" for c in message.tool_calls)
        print(f"  tool calls: {calls}")
    else:
        print(f"  answer: {message.content}")


async def run(llm: ChatTierRoute) -> None:
    app = build_agent(llm)
    config: RunnableConfig = {"configurable": {"thread_id": "weather-chat-1"}}
    for question in ["What's the weather in Paris right now?"]:
        print(f"user: {question}")
        seen = len((await app.aget_state(config)).values.get("messages", []))
        out = await app.ainvoke({"messages": [("user", question)]}, config)
        for message in out["messages"][seen + 1 :]:
            show(message)


def main(argv: list[str] | None = None) -> None:
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="your tierroute YAML (real providers); default: offline demo")
    args = parser.parse_args(argv)
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    if args.config is not None:
        asyncio.run(run(ChatTierRoute.from_yaml(args.config, temperature=0, sticky=True)))
        return
    from tierroute.testing import FakeProvider, Fault, ModelScript

    scripts = {
        "budget-model": ModelScript(faults=[Fault("server_error", status=503)]),
        "mid-model": ModelScript(
            reply=fake_agent_reply, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]
        ),
        "premium-model": ModelScript(reply=fake_agent_reply),
    }
    with FakeProvider(scripts) as fp:
        asyncio.run(run(ChatTierRoute(config=offline_config(fp.base_url), temperature=0, sticky=True)))
        budget_calls = fp.requests_for("budget-model")
        print(
            f"\nbudget tier: {len(budget_calls)} calls, all answered {budget_calls[0].outcome}; the cascade fell back"
        )


if __name__ == "__main__":
    main()
