"""A LangChain chain on ChatTierRoute: ``prompt | llm | parser``, printing the tier and cost of every input.

    .venv/bin/python examples/langchain_chain.py                     # offline demo (FakeProvider)
    .venv/bin/python examples/langchain_chain.py --semantic          # also the semantic layer (local MiniLM)
    .venv/bin/python examples/langchain_chain.py --config my.yaml    # your own tiers and API keys

The offline demo loads the routing rules of ``examples/tierroute.yaml`` and points its three tiers at
tierroute's FakeProvider (an OpenAI-compatible server on 127.0.0.1) with the tiers' list prices, so nothing
leaves the machine. The chain is plain LangChain; ``ChatTierRoute`` replaces the chat model and nothing else
changes. A callback handler reads each answer's ``response_metadata["tierroute"]`` in ``on_llm_end`` (the
parser turns the message into a string, so the chain's output no longer has it) and the table shows which
tier served, which layer decided, and what the answer cost against sending it to the premium tier.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate

from langchain_tierroute import ChatTierRoute

EXAMPLE_CONFIG = Path(__file__).resolve().parent / "tierroute.yaml"
# (tier, served model, USD per input token, USD per output token): the example config's models at list price
MODELS = [
    ("budget", "claude-haiku-4-5", 1e-6, 5e-6),
    ("mid", "claude-sonnet-4-6", 3e-6, 15e-6),
    ("premium", "claude-opus-4-7", 5e-6, 25e-6),
]
INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("tl;dr: the standup moved to 10am, the release is Friday and QA needs two more testers", {}),
    ("Why does this function raise a KeyError? def f(d): return d['x']", {}),
    ("Translate 'good morning, see you tomorrow' into French", {"task_type": "translation"}),
    ("Plan the migration of our billing system to event sourcing", {"task_type": "planning"}),
    ("Write a limerick about a lighthouse keeper", {}),
]


def fake_reply(body: dict[str, Any]) -> str:
    """The fake model's answer: it says which model it is and what it was asked."""
    question = next(str(m.get("content")) for m in reversed(body["messages"]) if m["role"] == "user")
    return f"({body['model']}) Here is my answer to: {question[:48]}"


def offline_config(base_url: str, semantic: bool) -> dict[str, Any]:
    cfg = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    cfg["model_list"] = [
        {
            "model_name": tier,
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": base_url,
                "api_key": "sk-fake",
                "input_cost_per_token": inp,
                "output_cost_per_token": out,
            },
        }
        for tier, model, inp, out in MODELS
    ]
    if not semantic:
        cfg["routing"].pop("semantic", None)
    cfg.pop("ledger", None)
    return cfg


class TierTable(BaseCallbackHandler):
    """Collects the routing metadata of every chat model answer."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        message = getattr(response.generations[0][0], "message", None)
        meta = getattr(message, "response_metadata", {}) or {}
        if "tierroute" in meta:
            self.rows.append({**meta["tierroute"], "model_name": meta.get("model_name")})


def run(llm: ChatTierRoute) -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Answer in one or two sentences."), ("human", "{question}")])
    chain = prompt | llm | StrOutputParser()
    table = TierTable()
    print("| input | tier | layer | served model | cost USD | all-premium USD |")
    print("|---|---|---|---|---:|---:|")
    answers = []
    for question, metadata in INPUTS:
        answers.append(chain.invoke({"question": question}, config={"callbacks": [table], "metadata": metadata}))
        row = table.rows[-1]
        label = question[:44] + ("..." if len(question) > 44 else "")
        tag = f" [{metadata['task_type']}]" if metadata else ""
        print(
            f"| {label}{tag} | {row['tier']} | {row['layer']} | {row['model_name']} "
            f"| {row['cost_usd']:.6f} | {row['counterfactual_cost_usd']:.6f} |"
        )
    spent = sum(r["cost_usd"] for r in table.rows)
    premium = sum(r["counterfactual_cost_usd"] for r in table.rows)
    saved = 100 * (1 - spent / premium) if premium else 0.0
    print(f"\ntotal: ${spent:.6f} routed vs ${premium:.6f} all-premium ({saved:.0f}% saved)")
    print(f"first answer: {answers[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="your tierroute YAML (real providers); default: offline demo")
    parser.add_argument("--semantic", action="store_true", help="keep the semantic layer (loads the local model)")
    args = parser.parse_args(argv)
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)  # custom-price notices for the demo models
    if args.config is not None:
        run(ChatTierRoute.from_yaml(args.config, temperature=0))
        return
    from tierroute.testing import FakeProvider, ModelScript

    with FakeProvider({model: ModelScript(reply=fake_reply) for _, model, _, _ in MODELS}) as fp:
        run(ChatTierRoute(config=offline_config(fp.base_url, args.semantic), temperature=0))


if __name__ == "__main__":
    main()
