"""Callbacks and tracing: LangSmith params, run metadata with tier and layer, llm_output, usage callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.outputs import LLMResult
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from tierroute import ContentPolicyError
from tierroute.testing import FakeProvider, Fault

from langchain_tierroute import ChatTierRoute

from .test_langchain_support import fake_provider, fault, lc_config, script

RULES = [{"name": "code", "tier": "mid", "regex": r"\bdebug\b"}]


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


class EndRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.metadata: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, metadata: Any = None, **kw: Any) -> None:
        self.metadata.append(dict(metadata or {}))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.outputs.append(dict(response.llm_output or {}))


def test_langsmith_params_name_the_router_and_the_call() -> None:
    llm = ChatTierRoute(config={"tiers": ["a"], "model_list": [{"model_name": "a", "litellm_params": {"model": "x"}}]})
    assert llm._get_ls_params() == {"ls_provider": "tierroute", "ls_model_name": "tierroute:a", "ls_model_type": "chat"}
    tuned = ChatTierRoute(config=llm.config, temperature=0.3, max_tokens=20, stop=["\n"])
    params = tuned._get_ls_params(temperature=0.1)
    assert (params["ls_temperature"], params["ls_max_tokens"], params["ls_stop"]) == (0.1, 20, ["\n"])


def test_run_metadata_gains_tier_and_layer(fp: FakeProvider) -> None:
    fault(fp, "mid", Fault("server_error"))
    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=RULES))
    collector, recorder = RunCollectorCallbackHandler(), EndRecorder()
    llm.invoke("debug this", config={"callbacks": [collector, recorder], "metadata": {"team": "search"}})
    (run,) = collector.traced_runs
    meta = run.extra["metadata"]
    assert meta["team"] == "search" and meta["ls_provider"] == "tierroute"
    assert meta["tierroute_tier"] == "premium" and meta["tierroute_decided_tier"] == "mid"
    assert meta["tierroute_layer"] == "rules" and meta["tierroute_served_model"] == "premium-model-2025-01-01"
    assert meta["tierroute_attempts"] == 3 and meta["tierroute_cost_usd"] > 0
    (out,) = recorder.outputs
    assert out["model_name"] == "premium-model-2025-01-01" and out["tierroute"]["tier"] == "premium"
    assert recorder.metadata[0]["ls_model_name"] == "tierroute:budget|mid|premium"


async def test_streamed_runs_carry_the_tier_in_their_output(fp: FakeProvider) -> None:
    # stream()/astream() give the model no handle on its run, so the tier travels in the run's output
    collector = RunCollectorCallbackHandler()
    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=RULES))
    _ = [c async for c in llm.astream("debug this", config={"callbacks": [collector]})]
    (run,) = collector.traced_runs
    assert run.outputs is not None
    message = run.outputs["generations"][0][0]["message"]
    meta = message["kwargs"]["response_metadata"] if isinstance(message, dict) else message.response_metadata
    assert meta["tierroute"]["tier"] == "mid" and meta["model_name"].startswith("lc-mid-model")


async def test_streaming_handlers_on_invoke_keep_run_metadata(fp: FakeProvider) -> None:
    # astream_events makes invoke take LangChain's streaming branch; routing input and annotations survive it
    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=[{"name": "t", "tier": "premium", "task_types": ["x"]}]))
    collector = RunCollectorCallbackHandler()
    events = [
        e
        async for e in llm.astream_events(
            "hi", config={"metadata": {"task_type": "x"}, "callbacks": [collector]}, version="v2"
        )
    ]
    assert any(e["event"] == "on_chat_model_stream" for e in events)
    assert events[-1]["data"]["output"].response_metadata["tierroute"]["tier"] == "premium"


async def test_failed_runs_say_which_error_and_where(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("content_policy"))
    collector = RunCollectorCallbackHandler()
    with pytest.raises(ContentPolicyError):
        await ChatTierRoute(config=lc_config(fp.base_url)).ainvoke("bad", config={"callbacks": [collector]})
    (run,) = collector.traced_runs
    meta = run.extra["metadata"]
    assert meta["tierroute_error"] == "ContentPolicyError" and meta["tierroute_decided_tier"] == "budget"
    assert run.error is not None


def test_usage_callback_counts_by_served_model(fp: FakeProvider) -> None:
    fp.set_script("lc-budget-model", script("budget", usage=(3, 2)))
    fp.set_script("lc-mid-model", script("mid", usage=(5, 4)))
    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=RULES))
    with get_usage_metadata_callback() as cb:
        llm.invoke("hello")
        list(llm.stream("debug this"))
        llm.invoke("hello again")
    assert cb.usage_metadata["budget-model-2025-01-01"]["total_tokens"] == 10
    streamed = [k for k in cb.usage_metadata if k.startswith("lc-mid-model")]
    assert len(streamed) == 1 and cb.usage_metadata[streamed[0]]["total_tokens"] == 9
