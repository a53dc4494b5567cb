"""ChatTierRoute end to end: LangChain messages -> router -> LiteLLM -> FakeProvider (HTTP) -> AIMessage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from tierroute import (
    CascadeExhaustedError,
    ConfigError,
    ContentPolicyError,
    InvalidRequestError,
    RouterConfig,
    TierRouter,
)
from tierroute.testing import FakeProvider, Fault

from langchain_tierroute import ChatTierRoute

from .test_langchain_support import PRICES, attempts, fake_provider, fault, lc_config, script

TRACE_KEYS = {"tier", "layer", "reason", "score", "served_model", "attempts", "cost_usd", "counterfactual_cost_usd"}
RULES = [
    {"name": "tagged-summary", "tier": "budget", "task_types": ["summarization"]},
    {"name": "vip", "tier": "premium", "tags": ["vip"]},
    {"name": "summarize", "tier": "budget", "keywords": ["tl;dr", "summarize"]},
    {"name": "code", "tier": "mid", "regex": r"\b(code|debug)\b"},
]


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


def make(fp: FakeProvider, **kw: Any) -> ChatTierRoute:
    cfg = kw.pop("config", None) or lc_config(fp.base_url, rules=RULES, override=["premium"])
    return ChatTierRoute(config=cfg, **kw)


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


def test_invoke_names_served_model_decision_and_cost(fp: FakeProvider) -> None:
    fp.set_script("lc-budget-model", script("budget", usage=(11, 7)))
    msg = make(fp).invoke([SystemMessage("be brief"), HumanMessage("tl;dr of this long thread please")])
    assert isinstance(msg, AIMessage) and msg.content == "budget answer"
    meta = msg.response_metadata
    assert meta["model_name"] == "budget-model-2025-01-01"  # the served model, not the alias 'budget'
    assert meta["finish_reason"] == "stop"
    tr = meta["tierroute"]
    assert set(tr) >= TRACE_KEYS
    assert (tr["tier"], tr["layer"]) == ("budget", "rules") and "tl;dr" in tr["reason"]
    assert msg.usage_metadata == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert tr["cost_usd"] == pytest.approx(11 * PRICES["budget"] + 7 * 4 * PRICES["budget"])
    assert tr["counterfactual_cost_usd"] == pytest.approx(11 * PRICES["premium"] + 7 * 4 * PRICES["premium"])
    body = fp.requests_for("lc-budget-model")[0].body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


async def test_fallback_is_visible_in_the_trace(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("server_error", status=503))
    msg = await make(fp).ainvoke("hello")
    assert msg.content == "mid answer" and msg.response_metadata["model_name"] == "mid-model-2025-01-01"
    assert attempts(msg.response_metadata) == [
        ("budget", "server_error", False),
        ("budget", "server_error", False),
        ("mid", None, False),
    ]
    tr = msg.response_metadata["tierroute"]
    assert tr["tier"] == "mid" and tr["decided_tier"] == "budget"


def test_stream_carries_usage_and_metadata_exactly_once(fp: FakeProvider) -> None:
    fp.set_script("lc-budget-model", script("budget", reply="one two three four five six", usage=(9, 8)))
    chunks = list(make(fp).stream("tl;dr please"))
    assert len([c for c in chunks if c.content]) > 1  # really streamed, not one blob
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert sum(1 for c in chunks if "tierroute" in c.response_metadata) == 1
    full = merge(chunks)
    assert full.content == "one two three four five six"
    assert full.usage_metadata == {"input_tokens": 9, "output_tokens": 8, "total_tokens": 17}
    assert full.response_metadata["model_name"].startswith("lc-budget-model")
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["tierroute"]["cost_usd"] == pytest.approx((9 + 32) * PRICES["budget"])
    assert chunks[-1].chunk_position == "last"


async def test_astream_falls_back_before_the_first_token(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("rate_limit", retry_after=0.01))
    chunks = [c async for c in make(fp).astream("hello")]
    full = merge(chunks)
    assert full.content == "mid answer"
    assert attempts(full.response_metadata) == [("budget", "rate_limit", False)] * 3 + [("mid", None, False)]


async def test_astream_events_end_with_the_routed_message(fp: FakeProvider) -> None:
    events = [e async for e in make(fp).astream_events("debug this code", version="v2")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    assert "on_chat_model_stream" in kinds
    out = events[-1]["data"]["output"]
    assert out.content == "mid answer" and out.response_metadata["tierroute"]["tier"] == "mid"


def test_config_metadata_and_tags_reach_the_rules_layer(fp: FakeProvider) -> None:
    llm = make(fp)
    by_task = llm.invoke("write me a poem", config={"metadata": {"task_type": "summarization"}})
    tr = by_task.response_metadata["tierroute"]
    assert (tr["tier"], tr["layer"]) == ("budget", "rules") and "summarization" in tr["reason"]
    by_tag = llm.invoke("write me a poem", config={"tags": ["vip"]})
    assert by_tag.response_metadata["tierroute"]["tier"] == "premium"
    assert "vip" in by_tag.response_metadata["tierroute"]["reason"]
    # the instance's own tags and metadata count too
    assert make(fp, tags=["vip"]).invoke("write me a poem").response_metadata["tierroute"]["tier"] == "premium"


async def test_streaming_paths_see_run_metadata_too(fp: FakeProvider) -> None:
    # LangChain calls _stream/_astream without the run manager; the run's metadata must still reach the rules
    llm = make(fp)
    cfg: Any = {"metadata": {"task_type": "summarization"}}
    streamed = merge(list(llm.stream("write me a poem", config=cfg))).response_metadata["tierroute"]
    assert (streamed["tier"], streamed["layer"]) == ("budget", "rules")
    assert (
        merge([c async for c in llm.astream("write me a poem", config={"tags": ["vip"]})]).content == "premium answer"
    )
    streaming = make(fp, streaming=True)
    assert (await streaming.ainvoke("write me a poem", config={"tags": ["vip"]})).content == "premium answer"
    assert streaming.invoke("write me a poem", config={"tags": ["vip"]}).content == "premium answer"


def test_model_kwarg_pins_an_allow_listed_tier(fp: FakeProvider) -> None:
    llm = make(fp)
    msg = llm.invoke("tl;dr please", model="premium")
    assert msg.response_metadata["tierroute"]["layer"] == "override"
    assert msg.response_metadata["model_name"] == "premium-model-2025-01-01"
    with pytest.raises(InvalidRequestError, match=r"routing\.override"):
        llm.invoke("hi", model="mid")
    with pytest.raises(InvalidRequestError, match="not a tier"):
        llm.invoke("hi", model="gpt-5")
    assert llm._get_ls_params(model="premium")["ls_model_name"] == "premium"


def test_chat_parameters_reach_the_provider_and_typos_fail(fp: FakeProvider) -> None:
    llm = make(fp, temperature=0.2, max_tokens=50, model_kwargs={"seed": 7})
    llm.invoke("hi", stop=["END"], top_p=0.5)
    body = fp.requests_for("lc-budget-model")[-1].body
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.2, 50, 7, 0.5)
    assert body["stop"] == ["END"]
    with pytest.raises(InvalidRequestError, match="tempreature"):
        llm.invoke("hi", tempreature=0)
    with pytest.raises(ConfigError, match="model_kwargs"):
        make(fp, model_kwargs={"sede": 1})


def test_batch_routes_each_input_and_chains_compose(fp: FakeProvider) -> None:
    llm = make(fp)
    out = llm.batch(["tl;dr of the meeting", "debug this code", "write a sonnet"])
    assert [m.response_metadata["tierroute"]["tier"] for m in out] == ["budget", "mid", "budget"]
    assert [m.response_metadata["tierroute"]["layer"] for m in out] == ["rules", "rules", "default"]
    chain = ChatPromptTemplate.from_messages([("system", "You help."), ("human", "{q}")]) | llm
    assert chain.invoke({"q": "please summarize this"}).content == "budget answer"


async def test_abatch_routes_concurrently(fp: FakeProvider) -> None:
    out = await make(fp).abatch(["tl;dr one", "debug this code", "tl;dr two"])
    assert [m.content for m in out] == ["budget answer", "mid answer", "budget answer"]


async def test_content_policy_refusal_is_not_escalated(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("content_policy"))
    with pytest.raises(ContentPolicyError) as ei:
        await make(fp).ainvoke("something bad")
    assert ei.value.trace is not None
    assert [(a.tier, a.failure.value if a.failure else None) for a in ei.value.trace.attempts] == [
        ("budget", "content_policy")
    ]
    assert not fp.requests_for("lc-mid-model") and not fp.requests_for("lc-premium-model")


def test_auth_failure_fails_fast_with_the_provider_error_as_cause(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("auth"))
    with pytest.raises(CascadeExhaustedError) as ei:
        make(fp).invoke("hi")
    assert ei.value.__cause__ is not None and "auth" in str(ei.value)


def test_max_retries_and_timeout_shape_the_cascade(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("rate_limit", retry_after=0.01))
    msg = make(fp, max_retries=0).invoke("hi")
    assert attempts(msg.response_metadata) == [("budget", "rate_limit", False), ("mid", None, False)]
    fault(fp, "budget", Fault("timeout", hang_s=2.0))
    msg = make(fp, timeout=0.3, max_retries=0).invoke("hi")
    assert attempts(msg.response_metadata) == [("budget", "timeout", False), ("mid", None, False)]


async def test_sync_invoke_inside_a_running_event_loop(fp: FakeProvider) -> None:
    # sync calls run on tierroute's background loop, so they also work from async code
    assert make(fp).invoke("hi").content == "budget answer"


def test_from_yaml_and_constructor_errors(fp: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "tierroute.yaml"
    path.write_text(yaml.safe_dump(lc_config(fp.base_url, rules=RULES)), encoding="utf-8")
    llm = ChatTierRoute.from_yaml(path, temperature=0)
    assert llm.invoke("debug this code").content == "mid answer"
    assert llm.model_name == "tierroute:budget|mid|premium"
    with pytest.raises(ConfigError, match="needs a config"):
        ChatTierRoute()
    with pytest.raises(ConfigError, match="does not list"):
        ChatTierRoute(config=path, tiers={"ultra": llm})
    with pytest.raises(ConfigError, match="no deployment"):
        ChatTierRoute(config=lc_config(fp.base_url, drop=("mid",)))
    with pytest.raises(ConfigError, match="does not exist"):
        ChatTierRoute.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="extra"):
        ChatTierRoute(config=path, temprature=0)
    router = TierRouter(RouterConfig.from_dict(lc_config(fp.base_url, rules=RULES)))
    shared = ChatTierRoute(router=router)
    assert shared.router is router and shared.invoke("debug this code").content == "mid answer"
    with pytest.raises(ConfigError, match="together with"):
        ChatTierRoute(router=router, timeout=3)
