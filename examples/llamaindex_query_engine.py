"""A LlamaIndex query engine on TierRouteLLM: retrieval-augmented answers routed to the cheapest tier.

    .venv/bin/python examples/llamaindex_query_engine.py                   # offline demo (FakeProvider)
    .venv/bin/python examples/llamaindex_query_engine.py --config my.yaml  # your tiers and API keys

The offline demo starts tierroute's FakeProvider (an OpenAI-compatible server on 127.0.0.1) as three tiers
with demo prices, embeds a few documents with the bundled all-MiniLM-L6-v2 (no network), and sets
``Settings.llm = TierRouteLLM(...)``. The fake model answers from the context it is given (the context sentence
closest to the question), so you can see retrieval and routing work end to end; one call meets an injected
503 on the budget tier that the cascade recovers from. Each answer is printed with its routing decision,
taken from the ``TierRouteEvent`` that every TierRouteLLM call sends through LlamaIndex instrumentation.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DOCS = [
    "Orbit Coffee Roasters was founded in 2019 in Tromsø by two marine biologists.",
    "Orbit's flagship blend, Polar Night, mixes Ethiopian and Colombian beans and is roasted medium-dark.",
    "Orders over 40 euros ship free within Norway; international shipping takes five to eight working days.",
    "Every bag can be returned within 30 days if it is unopened; opened bags are refunded as store credit.",
    "The roastery runs on hydroelectric power and composts all of its coffee chaff.",
]
QUESTIONS = [
    "Where was Orbit Coffee founded?",
    "How long does international shipping take?",
    "Can I return an opened bag?",
]
PRICES = {"budget": (1e-6, 5e-6), "mid": (3e-6, 15e-6), "premium": (15e-6, 75e-6)}  # demo prices, USD/token


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3}


def grounded_reply(body: dict[str, Any]) -> str:
    """The fake model: quote the context sentence that shares the most words with the question."""
    last = next(str(m.get("content") or "") for m in reversed(body["messages"]) if m["role"] == "user")
    if "Query:" not in last:
        return "I can only answer questions about the documents."
    context = last.split("---------------------")[1] if last.count("---------------------") >= 2 else last
    query = last.split("Query:")[-1].split("Answer:")[0]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", context) if len(s.strip()) > 20]
    best = max(sentences, key=lambda s: len(_words(s) & _words(query)), default="")
    return f"From the documents: {best}" if best else "The documents do not say."


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
                "model_info": {"max_input_tokens": 32_000, "max_output_tokens": 1_000},
            }
            for tier, (inp, out) in PRICES.items()
        ],
        "tiers": list(PRICES),
        "default_tier": "mid",
        "routing": {
            "rules": [
                {"name": "grounded-qa", "tier": "budget", "keywords": ["context information"]},
                {"name": "hard", "tier": "premium", "keywords": ["prove", "trade-offs"]},
            ]
        },
        "cascade": {
            "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
            "retries": {"backoff_s": 0.05},
            "timeout_s": 10,
        },
    }


def run(llm: Any, streaming: bool) -> list[Any]:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.bridge.pydantic import Field
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    from llamaindex_tierroute import LocalEmbedding, TierRouteEvent

    class Routes(BaseEventHandler):
        seen: list[TierRouteEvent] = Field(default_factory=list)

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, TierRouteEvent):
                self.seen.append(event)

    routes = Routes(seen=[])
    get_dispatcher().add_event_handler(routes)
    Settings.llm = llm
    Settings.embed_model = LocalEmbedding()  # bundled all-MiniLM-L6-v2, offline
    index = VectorStoreIndex.from_documents([Document(text=d) for d in DOCS])
    engine = index.as_query_engine(similarity_top_k=2, streaming=streaming)
    rows = []
    for question in QUESTIONS:
        response = engine.query(question)
        answer = "".join(response.response_gen) if streaming else str(response)  # type: ignore[union-attr]
        route = routes.seen[-1]
        rows.append((question, answer, route))
        print(f"Q: {question}\nA: {answer}")
        print(f"   source: {response.source_nodes[0].node.get_content()[:70]}...")
        path = " -> ".join(f"{a['tier']}{'!' + a['failure'] if a['failure'] else ''}" for a in route.attempts)
        fell = " (fell back)" if route.fell_back else ""
        print(f"   routed: {route.tier} by {route.layer} ({route.reason}); attempts: {path}{fell}\n")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a tierroute YAML config (default: offline FakeProvider demo)")
    parser.add_argument("--stream", action="store_true", help="stream the answers")
    args = parser.parse_args()
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)  # custom-pricing notices when the Router starts

    from llamaindex_tierroute import TierRouteLLM

    if args.config:
        rows = run(TierRouteLLM.from_yaml(args.config), args.stream)
    else:
        from tierroute.testing import FakeProvider, Fault, ModelScript

        scripts = {f"{t}-model": ModelScript(reply=grounded_reply) for t in PRICES}
        # the budget tier answers 503 on its 2nd and 3rd calls: question 2 is retried once, then falls back
        scripts["budget-model"].faults = [Fault("server_error", status=503, calls={2, 3})]
        with FakeProvider(scripts) as fp:
            rows = run(TierRouteLLM(config=demo_config(fp.base_url)), args.stream)

    print("| question | tier | layer | attempts | cost USD | all-premium USD |")
    print("|---|---|---|---:|---:|---:|")
    for question, _, r in rows:
        print(
            f"| {question} | {r.tier} | {r.layer} | {len(r.attempts)} | {r.cost_usd:.6f} "
            f"| {r.counterfactual_cost_usd:.6f} |"
        )
    spent = sum(r.cost_usd for _, _, r in rows)
    premium = sum(r.counterfactual_cost_usd for _, _, r in rows)
    saved = 1 - spent / premium if premium else 0.0
    print(f"\ntotal: ${spent:.6f} spent vs ${premium:.6f} on the premium tier alone ({saved:.0%} saved)")


if __name__ == "__main__":
    main()
