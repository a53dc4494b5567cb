"""LlamaIndex applications on TierRouteLLM, offline: a VectorStoreIndex over the bundled MiniLM answered by a
query engine and a chat engine, a FunctionAgent calling two tools, a ReActAgent, and structured output, each
through real HTTP to FakeProvider via LiteLLM."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, PromptTemplate, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field
from tierroute.testing import FakeProvider, ModelScript

from llamaindex_tierroute import LocalEmbedding, TierRouteEvent, TierRouteLLM

TIERS = ("budget", "mid", "premium")

DOCS = [
    "Lyra is the capital of the island nation of Vesper. The river Sable flows through Lyra.",
    "The Vesper Telescope was completed in 2031 and has a twelve-metre mirror.",
    "Kelp farming is the main industry on the northern coast of Vesper.",
]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3}


def grounded_reply(body: dict[str, Any]) -> str:
    """A fake model that answers from the context it was given: the context sentence closest to the question."""
    texts = [str(m.get("content") or "") for m in body["messages"]]
    last = next(str(m.get("content") or "") for m in reversed(body["messages"]) if m["role"] == "user")
    if "Standalone question:" in last:  # condense step of a chat engine
        return last.split("Follow Up Input:")[-1].split("Standalone question:")[0].strip()
    query = last.split("Query:")[-1].split("Answer:")[0] if "Query:" in last else last
    sentences = [s.strip() for t in texts for s in re.split(r"[.\n]", t) if s.strip()]
    candidates = [s for s in sentences if any(s in d for d in DOCS)]
    if not candidates:
        return "I don't know."
    best = max(candidates, key=lambda s: len(_words(s) & _words(query)))
    return f"According to the documents: {best}."


def config(base_url: str) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": t,
                "litellm_params": {"model": f"openai/{t}-model", "api_base": base_url, "api_key": "sk-fake"},
                "model_info": {"max_input_tokens": 32_000, "max_output_tokens": 1_000},
            }
            for t in TIERS
        ],
        "tiers": list(TIERS),
        "default_tier": "premium",
        "routing": {
            "rules": [
                {"name": "tools", "tier": "mid", "tools": True},
                {"name": "grounded", "tier": "budget", "keywords": ["context information", "relevant documents"]},
                {
                    "name": "grounded-chat",
                    "tier": "budget",
                    "keywords": ["relevant documents"],
                    "scope": "all",
                },
            ]
        },
        "cascade": {"retries": {"backoff_s": 0.01}, "timeout_s": 5},
    }


class Routes(BaseEventHandler):
    seen: list[TierRouteEvent] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, TierRouteEvent):
            self.seen.append(event)


@pytest.fixture()
def routes() -> Iterator[Routes]:
    rec = Routes(seen=[])
    root = get_dispatcher()
    root.add_event_handler(rec)
    yield rec
    root.event_handlers.remove(rec)


@pytest.fixture(scope="module")
def embed_model() -> LocalEmbedding:
    return LocalEmbedding()


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with FakeProvider({f"{t}-model": ModelScript(reply=grounded_reply) for t in TIERS}) as provider:
        yield provider


@pytest.fixture()
def settings(fp: FakeProvider, embed_model: LocalEmbedding) -> Iterator[TierRouteLLM]:
    saved = (Settings._llm, Settings._embed_model)
    llm = TierRouteLLM(config=config(fp.base_url))
    Settings.llm = llm
    Settings.embed_model = embed_model
    yield llm
    Settings._llm, Settings._embed_model = saved


@pytest.fixture()
def index(settings: TierRouteLLM) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=d) for d in DOCS])


def test_local_embedding_ranks_by_meaning(embed_model: LocalEmbedding) -> None:
    q = embed_model.get_query_embedding("Which city is the capital?")
    docs = embed_model.get_text_embedding_batch(DOCS)
    scores = [sum(a * b for a, b in zip(q, d)) for d in docs]
    assert len(q) == 384 and scores.index(max(scores)) == 0
    assert sum(x * x for x in q) == pytest.approx(1.0, abs=1e-4)


def test_query_engine_answers_from_retrieved_context(index: VectorStoreIndex, fp: FakeProvider, routes: Routes) -> None:
    engine = index.as_query_engine(similarity_top_k=1)
    response = engine.query("What is the capital of Vesper?")
    assert response.source_nodes[0].node.get_content() == DOCS[0]
    assert str(response) == "According to the documents: Lyra is the capital of the island nation of Vesper."
    (route,) = routes.seen
    assert (route.tier, route.layer) == ("budget", "rules") and "context information" in (route.reason or "")
    (sent,) = fp.requests_for("budget-model")
    assert DOCS[0] in sent.body["messages"][-1]["content"] and DOCS[1] not in sent.body["messages"][-1]["content"]


async def test_async_streaming_query_engine(index: VectorStoreIndex, routes: Routes) -> None:
    engine = index.as_query_engine(similarity_top_k=1, streaming=True)
    response = await engine.aquery("When was the telescope completed?")
    text = "".join([t async for t in response.async_response_gen()])
    assert (
        text == "According to the documents: The Vesper Telescope was completed in 2031 and has a twelve-metre mirror."
    )
    (route,) = routes.seen
    assert route.stream and route.tier == "budget" and route.cost_usd == 0.0  # no price configured


def test_chat_engine_keeps_history_and_routes_each_turn(index: VectorStoreIndex, fp: FakeProvider) -> None:
    chat = index.as_chat_engine(chat_mode="condense_plus_context", similarity_top_k=1)
    first = chat.chat("Tell me about the telescope.")
    assert "2031" in str(first)
    streamed = chat.stream_chat("Which river flows through the capital?")
    text = "".join(streamed.response_gen)
    assert text == "According to the documents: The river Sable flows through Lyra."
    # turn 2 = a condense call (no context: default tier) + the grounded answer (budget), with turn 1 in history
    condense = fp.requests_for("premium-model")[-1].body["messages"][-1]["content"]
    assert "Standalone question" in condense and "Tell me about the telescope." in condense
    roles = [m["role"] for m in fp.requests_for("budget-model")[-1].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def tool_results_reply(body: dict[str, Any]) -> str:
    results = [str(m["content"]) for m in body["messages"] if m["role"] == "tool"]
    return "The results are " + " and ".join(results) + "."


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_calls_two_tools_through_the_router(
    settings: TierRouteLLM, fp: FakeProvider, routes: Routes, streaming: bool
) -> None:
    calls = [{"name": "add", "arguments": {"a": 2, "b": 3}}, {"name": "multiply", "arguments": {"a": 4, "b": 5}}]
    fp.set_script("mid-model", ModelScript(tool_calls=calls, reply=tool_results_reply))
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=add), FunctionTool.from_defaults(fn=multiply)],
        llm=settings,
        streaming=streaming,
        system_prompt="You are a calculator.",
    )
    handler = agent.run(user_msg="What is 2+3 and what is 4*5?")
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    output = await handler
    assert str(output) == "The results are 5 and 20."
    assert sorted((r.tool_name, r.tool_output.content) for r in results) == [("add", "5"), ("multiply", "20")]
    first, second = (r.body for r in fp.requests_for("mid-model"))
    assert {t["function"]["name"] for t in first["tools"]} == {"add", "multiply"}
    assistant = second["messages"][-3]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["add", "multiply"]
    assert [m.get("tool_call_id") for m in second["messages"][-2:]] == [c["id"] for c in assistant["tool_calls"]]
    assert [(r.tier, r.layer, r.stream) for r in routes.seen] == [("mid", "rules", streaming)] * 2


def react_reply(body: dict[str, Any]) -> str:
    last = body["messages"][-1]["content"]
    if isinstance(last, str) and last.startswith("Observation:"):
        return f"Thought: I can answer without using any more tools.\nAnswer: The sum is {last.split(':')[1].strip()}."
    return 'Thought: I need to use a tool to help me answer the question.\nAction: add\nAction Input: {"a": 2, "b": 3}'


async def test_react_agent_runs_a_tool_from_text_actions(settings: TierRouteLLM, fp: FakeProvider) -> None:
    fp.set_script("premium-model", ModelScript(reply=react_reply))
    agent = ReActAgent(tools=[FunctionTool.from_defaults(fn=add)], llm=settings)
    output = await agent.run(user_msg="What is 2+3?")
    assert str(output) == "The sum is 5."
    assert len(fp.requests_for("premium-model")) == 2
    assert "tools" not in fp.requests_for("premium-model")[0].body  # ReAct describes tools in the prompt


class Invoice(BaseModel):
    customer: str
    total: float
    items: list[str]


INVOICE = {"customer": "ACME", "total": 42.5, "items": ["bolts", "nuts"]}


async def test_structured_output_into_a_pydantic_model(settings: TierRouteLLM, fp: FakeProvider) -> None:
    fp.set_script("mid-model", ModelScript(tool_calls=[{"name": "Invoice", "arguments": INVOICE}]))
    prompt = PromptTemplate("Extract the invoice from: {text}")
    text = "ACME bought bolts and nuts for 42.50"
    assert settings.structured_predict(Invoice, prompt, text=text) == Invoice(**INVOICE)
    assert await settings.astructured_predict(Invoice, prompt, text=text) == Invoice(**INVOICE)
    body = fp.requests_for("mid-model")[0].body
    assert body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "Invoice"

    structured = settings.as_structured_llm(Invoice)
    resp = await structured.achat([ChatMessage(role="user", content=text)])
    assert resp.raw == Invoice(**INVOICE) and json.loads(resp.message.content or "") == INVOICE
