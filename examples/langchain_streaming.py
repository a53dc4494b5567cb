"""Streaming with ChatTierRoute: tokens as they arrive, then usage, served model and cost from the last chunk.

    .venv/bin/python examples/langchain_streaming.py                    # offline demo (FakeProvider)
    .venv/bin/python examples/langchain_streaming.py --config my.yaml   # your own tiers and API keys

Router wrappers often lose usage when streaming. ChatTierRoute's closing chunk carries ``usage_metadata`` and
``response_metadata`` (served ``model_name``, ``finish_reason``, and ``tierroute``: tier, layer, attempts,
cost), exactly once, so adding up the chunks gives the whole message with its usage. Retries and fallbacks
happen before the first token: in the offline demo the budget tier answers the second prompt with an HTTP 429
(``Retry-After: 0.2``) first, the cascade waits and retries, and the stream still starts cleanly. The last part
streams through ``astream_events``, the way an app pushes tokens to a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_core.messages import AIMessageChunk

from langchain_tierroute import ChatTierRoute

PRICES = {"budget": (1e-6, 5e-6), "mid": (3e-6, 15e-6), "premium": (5e-6, 25e-6)}  # demo prices, USD/token
HAIKU = "Queues wait in silence / one message, then another / the consumer wakes"
PROMPTS = [
    "Write a haiku about message queues",
    "Summarize: the outage began at 09:12 when the cache cluster lost quorum; failover took 14 minutes",
]


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
        "routing": {"rules": [{"name": "summarize", "tier": "budget", "keywords": ["summarize", "tl;dr"]}]},
        "cascade": {"fallbacks": {"budget": ["mid"], "mid": ["premium"]}, "retries": {"rate_limit": 2}},
    }


def report(full: AIMessageChunk, chunks: int) -> None:
    meta = full.response_metadata
    tr = meta["tierroute"]
    usage = full.usage_metadata or {}
    tried = ", ".join(f"{a['tier']}:{a['failure'] or 'ok'}" for a in tr["attempts"])
    print(f"  chunks: {chunks}; finish_reason: {meta['finish_reason']}")
    print(
        f"  usage: input {usage.get('input_tokens')}, output {usage.get('output_tokens')}, "
        f"total {usage.get('total_tokens')} tokens"
    )
    print(f"  served by tier {tr['tier']} ({meta['model_name']}), decided by {tr['layer']}: {tr['reason']}")
    print(f"  attempts: [{tried}]; cost ${tr['cost_usd']:.6f} (all-premium ${tr['counterfactual_cost_usd']:.6f})")


async def run(llm: ChatTierRoute) -> None:
    for prompt in PROMPTS:
        print(f"user: {prompt}\nassistant: ", end="", flush=True)
        full: AIMessageChunk | None = None
        n = 0
        async for chunk in llm.astream(prompt):
            print(chunk.text, end="", flush=True)
            full = chunk if full is None else full + chunk
            n += 1
        print()
        assert full is not None
        report(full, n)
    print("astream_events (v2):")
    tokens = 0
    async for event in llm.astream_events("Write a haiku about message queues", version="v2"):
        if event["event"] == "on_chat_model_stream" and event["data"]["chunk"].text:
            tokens += 1
        elif event["event"] == "on_chat_model_end":
            out = event["data"]["output"]
            print(
                f"  {tokens} token events; end event: tier {out.response_metadata['tierroute']['tier']}, "
                f"usage {out.usage_metadata}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="your tierroute YAML (real providers); default: offline demo")
    args = parser.parse_args(argv)
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    if args.config is not None:
        asyncio.run(run(ChatTierRoute.from_yaml(args.config)))
        return
    from tierroute.testing import FakeProvider, Fault, ModelScript

    scripts = {
        "budget-model": ModelScript(
            reply="The cache cluster lost quorum at 09:12; failover took 14 minutes.",
            chunk_delay_s=0.02,
            faults=[Fault("rate_limit", first=1, retry_after=0.2)],
        ),
        "mid-model": ModelScript(reply=HAIKU, chunk_delay_s=0.02),
        "premium-model": ModelScript(reply=HAIKU),
    }
    with FakeProvider(scripts) as fp:
        asyncio.run(run(ChatTierRoute(config=offline_config(fp.base_url))))


if __name__ == "__main__":
    main()
