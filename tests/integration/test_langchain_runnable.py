"""RouterRunnable: the same decision layers choose between whole chains; failures fall back along the config."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_openai import ChatOpenAI
from tierroute import CascadeExhaustedError, ConfigError, ContentPolicyError, InvalidRequestError
from tierroute.testing import FakeProvider, Fault

from langchain_tierroute import ChatTierRoute, RouterRunnable

from .test_langchain_support import fake_provider, fault, lc_config

CONFIG: dict[str, Any] = {
    "tiers": ["faq", "rag", "agent"],
    "default_tier": "rag",
    "routing": {
        "rules": [
            {"name": "faq", "tier": "faq", "keywords": ["opening hours", "refund"]},
            {"name": "plan", "tier": "agent", "task_types": ["planning"]},
        ]
    },
    "cascade": {"fallbacks": {"faq": ["rag"], "rag": ["agent"]}, "max_escalations": 2},
}


def chain(name: str) -> Any:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return (prompt | GenericFakeChatModel(messages=cycle([f"{name} answer"])) | StrOutputParser()).with_config(
        run_name=f"{name}-chain"
    )


def broken(_: Any) -> str:
    raise RuntimeError("index unavailable")


def make(**tiers: Any) -> RouterRunnable:
    return RouterRunnable({"faq": chain("faq"), "rag": chain("rag"), "agent": chain("agent"), **tiers}, config=CONFIG)


def test_routes_dict_inputs_between_chains() -> None:
    router = make()
    assert router.invoke({"question": "What are your opening hours?"}) == "faq answer"
    assert router.invoke({"question": "Compare these two contracts"}) == "rag answer"
    planned = router.invoke({"question": "Ship it"}, config={"metadata": {"task_type": "planning"}})
    assert planned == "agent answer"
    assert router.batch([{"question": "refund please"}, {"question": "why?"}]) == ["faq answer", "rag answer"]


async def test_falls_back_along_the_config_and_reports_the_trace() -> None:
    router = RouterRunnable(
        {"faq": RunnableLambda(broken), "rag": chain("rag"), "agent": chain("agent")}, config=CONFIG, with_trace=True
    )
    out = await router.ainvoke({"question": "opening hours?"})
    assert out["output"] == "rag answer"
    tr = out["tierroute"]
    assert (tr["tier"], tr["decided_tier"], tr["layer"]) == ("rag", "faq", "rules")
    assert [(a["tier"], a["failure"]) for a in tr["attempts"]] == [("faq", "unknown"), ("rag", None)]
    assert "index unavailable" in tr["attempts"][0]["error"]


def test_exhausted_when_every_tier_fails() -> None:
    router = make(faq=RunnableLambda(broken), rag=RunnableLambda(broken), agent=RunnableLambda(broken))
    with pytest.raises(CascadeExhaustedError) as ei:
        router.invoke("refund?")
    assert ei.value.trace is not None and [a.tier for a in ei.value.trace.attempts] == ["faq", "rag", "agent"]
    assert isinstance(ei.value.__cause__, RuntimeError)


async def test_records_the_tier_in_callbacks_and_run_metadata() -> None:
    events = [e async for e in make().astream_events({"question": "refund?"}, version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["tierroute"] and custom[0]["data"]["tier"] == "faq"
    collector = RunCollectorCallbackHandler()
    make().invoke({"question": "hello"}, config={"callbacks": [collector]})
    (run,) = collector.traced_runs
    assert run.extra["metadata"]["tierroute_tier"] == "rag"
    assert [c.name for c in run.child_runs] == ["rag-chain"] and "tierroute:rag" in run.child_runs[0].tags


def test_streams_and_falls_back_before_the_first_chunk() -> None:
    router = make(faq=RunnableLambda(broken))
    assert "".join(router.stream({"question": "refund?"})) == "rag answer"
    assert "".join(make().stream("what are your opening hours")) == "faq answer"


async def test_astream_routes_messages_input() -> None:
    parts = [p async for p in make().astream([("human", "refund please")])]
    assert "".join(parts) == "faq answer"


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


async def test_tiers_can_be_tiered_chat_models_and_refusals_stop(fp: FakeProvider) -> None:
    llm = ChatTierRoute(config=lc_config(fp.base_url))
    cheap_model = ChatOpenAI(model="lc-budget-model", base_url=fp.base_url, api_key="sk-fake", max_retries=0)
    router = RouterRunnable({"faq": cheap_model, "rag": llm, "agent": llm}, config=CONFIG, with_trace=True)
    out = await router.ainvoke("hello")  # rag: a ChatTierRoute inside; its cost is counted
    assert out["output"].content == "budget answer"
    assert out["tierroute"]["attempts"][0]["cost_usd"] == out["output"].response_metadata["tierroute"]["cost_usd"] > 0
    fault(fp, "budget", Fault("content_policy"))
    with pytest.raises(ContentPolicyError):
        await router.ainvoke("refund my order")  # faq's own model refuses: not escalated to rag


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="'rag' has no deployment"):
        RouterRunnable({"faq": chain("faq")}, config=CONFIG)
    with pytest.raises(ConfigError, match="config"):
        RouterRunnable({"faq": chain("faq")})
    with pytest.raises(InvalidRequestError, match="input_key"):
        RouterRunnable(
            {"faq": chain("faq"), "rag": chain("rag"), "agent": chain("agent")}, config=CONFIG, input_key="q"
        ).invoke({"question": "x"})
