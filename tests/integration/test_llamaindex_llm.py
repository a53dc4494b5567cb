"""TierRouteLLM as a LlamaIndex LLM, through real HTTP to FakeProvider via LiteLLM: answers, streams with
usage, the routing trace in additional_kwargs and in instrumentation, faults the cascade recovers from, and
tiers served by LlamaIndex LLM objects."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
import yaml
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.tools import FunctionTool
from llama_index.llms.litellm import LiteLLM
from tierroute import ConfigError, ContentPolicyError, InvalidRequestError
from tierroute.testing import FakeProvider, Fault, ModelScript

from llamaindex_tierroute import TierRouteEvent, TierRouteLLM

TIERS = ("budget", "mid", "premium")
PRICES = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}
TRACE_KEYS = {"tier", "layer", "reason", "score", "served_model", "attempts", "cost_usd", "counterfactual_cost_usd"}


def config(base_url: str, *, only: tuple[str, ...] = TIERS, **extra: Any) -> dict[str, Any]:
    model_list = [
        {
            "model_name": t,
            "litellm_params": {
                "model": f"openai/{t}-model",
                "api_base": base_url,
                "api_key": "sk-fake-key-000",
                "input_cost_per_token": PRICES[t],
                "output_cost_per_token": PRICES[t] * 4,
            },
            "model_info": {"max_input_tokens": 16_000 if t == "budget" else 128_000, "max_output_tokens": 2_000},
        }
        for t in TIERS
        if t in only
    ]
    data: dict[str, Any] = {
        "model_list": model_list,
        "tiers": list(TIERS),
        "default_tier": "budget",
        "routing": {"rules": [{"name": "hard", "tier": "premium", "keywords": ["prove"]}]},
        "cascade": {
            "fallbacks": {"budget": ["mid"], "mid": ["premium"]},
            "retries": {"backoff_s": 0.01, "max_backoff_s": 1},
            "timeout_s": 5,
            "max_escalations": 2,
            "circuit_breaker": {"allowed_fails": 50, "window_s": 60, "cooldown_s": 60},
        },
    }
    data.update(extra)
    return data


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer") for t in TIERS}
    scripts["gpt-4o-mini"] = ModelScript(reply="object tier answer")
    with FakeProvider(scripts) as provider:
        yield provider


class Recorder(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    rec = Recorder(events=[])
    root = get_dispatcher()
    root.add_event_handler(rec)
    yield rec
    root.event_handlers.remove(rec)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def tiers_of(resp: ChatResponse) -> list[tuple[str, str | None]]:
    return [(a["tier"], a["failure"]) for a in resp.additional_kwargs["tierroute"]["attempts"]]


def test_chat_answers_with_trace_usage_and_raw(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url))
    resp = llm.chat(user("Please prove that sqrt(2) is irrational"))
    assert resp.message.role == "assistant" and resp.message.content == "premium answer"
    meta = resp.additional_kwargs["tierroute"]
    assert set(meta) >= TRACE_KEYS
    assert (meta["tier"], meta["layer"], meta["served_model"]) == ("premium", "rules", "premium-model")
    assert "prove" in meta["reason"]
    usage = {k: resp.additional_kwargs[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert meta["cost_usd"] == pytest.approx(
        PRICES["premium"] * (usage["prompt_tokens"] + 4 * usage["completion_tokens"])
    )
    assert isinstance(resp.raw, litellm.ModelResponse) and resp.raw.choices[0].message.content == "premium answer"


async def test_async_completion_and_system_prompt_reach_the_provider(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url), temperature=0.2, max_tokens=50, system_prompt="Be terse.")
    out = await llm.acomplete("hello")
    assert out.text == "budget answer" and out.additional_kwargs["tierroute"]["tier"] == "budget"
    await llm.apredict(PromptTemplate("Say {x}"), x="hi")
    first, second = fp.requests_for("budget-model")
    assert first.body["temperature"] == 0.2 and first.body["max_tokens"] == 50
    assert first.body["messages"] == [{"role": "user", "content": "hello"}]
    assert second.body["messages"][0] == {"role": "system", "content": "Be terse."}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_ends_with_usage_and_trace(fp: FakeProvider, mode: str) -> None:
    fp.set_script("budget-model", ModelScript(reply="one two three four"))
    llm = TierRouteLLM(config=config(fp.base_url))
    if mode == "sync":
        chunks = list(llm.stream_chat(user("stream please")))
    else:
        chunks = [c async for c in await llm.astream_chat(user("stream please"))]
    assert "".join(c.delta or "" for c in chunks) == "one two three four"
    assert len([c for c in chunks if c.delta]) > 1  # really streamed
    assert [c.message.content for c in chunks][-2:] == ["one two three four"] * 2  # cumulative
    last = chunks[-1]
    assert last.delta == "" and last.additional_kwargs["completion_tokens"] > 0
    assert last.additional_kwargs["total_tokens"] > last.additional_kwargs["completion_tokens"]
    assert last.additional_kwargs["tierroute"]["served_model"] == "budget-model"
    assert last.additional_kwargs["tierroute"]["cost_usd"] > 0
    assert fp.requests_for("budget-model")[0].stream


async def test_stream_complete_is_derived_from_stream_chat(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url))
    parts = [c async for c in await llm.astream_complete("go")]
    assert "".join(c.delta or "" for c in parts) == "budget answer" and parts[-1].text == "budget answer"
    assert parts[-1].additional_kwargs["tierroute"]["tier"] == "budget"


async def test_budget_fault_recovered_by_the_cascade_is_in_the_trace(fp: FakeProvider, recorder: Recorder) -> None:
    fp.set_script("budget-model", ModelScript(reply="x", faults=[Fault("server_error", status=503)]))
    llm = TierRouteLLM(config=config(fp.base_url))
    resp = await llm.achat(user("hello"))
    assert resp.message.content == "mid answer"
    assert tiers_of(resp) == [("budget", "server_error"), ("budget", "server_error"), ("mid", None)]
    meta = resp.additional_kwargs["tierroute"]
    assert meta["decided_tier"] == "budget" and meta["tier"] == "mid"
    (event,) = [e for e in recorder.events if isinstance(e, TierRouteEvent)]
    assert event.fell_back and event.tier == "mid" and len(event.attempts) == 3 and event.error is None


def test_instrumentation_and_callbacks_show_the_decision(fp: FakeProvider, recorder: Recorder) -> None:
    debug = LlamaDebugHandler()
    llm = TierRouteLLM(config=config(fp.base_url), callback_manager=CallbackManager([debug]))
    llm.chat(user("prove it"))
    (route,) = [e for e in recorder.events if isinstance(e, TierRouteEvent)]
    (end,) = [e for e in recorder.events if isinstance(e, LLMChatEndEvent)]
    assert (route.tier, route.layer, route.stream) == ("premium", "rules", False)
    assert route.cost_usd > 0 and route.counterfactual_cost_usd == pytest.approx(route.cost_usd)
    assert route.span_id is not None and route.span_id == end.span_id  # same LLM span
    assert end.response is not None and end.response.additional_kwargs["tierroute"]["tier"] == "premium"
    ((_, end_payload),) = debug.get_llm_inputs_outputs()
    assert end_payload.payload["response"].additional_kwargs["tierroute"]["layer"] == "rules"
    assert "sk-fake-key-000" not in str(llm.to_payload())


async def test_failure_is_reported_to_instrumentation(fp: FakeProvider, recorder: Recorder) -> None:
    fp.set_script("budget-model", ModelScript(faults=[Fault("content_policy")]))
    llm = TierRouteLLM(config=config(fp.base_url))
    with pytest.raises(ContentPolicyError):
        await llm.achat(user("something bad"))
    (event,) = [e for e in recorder.events if isinstance(e, TierRouteEvent)]
    assert event.error is not None and event.error.startswith("ContentPolicyError")
    assert [a["failure"] for a in event.attempts] == ["content_policy"]


def test_metadata_is_the_smallest_tier(fp: FakeProvider) -> None:
    meta = TierRouteLLM(config=config(fp.base_url)).metadata
    assert (meta.context_window, meta.num_output) == (16_000, 2_000)
    assert meta.is_chat_model and meta.is_function_calling_model
    assert TierRouteLLM(config=config(fp.base_url), max_tokens=300).metadata.num_output == 300
    no_tools = config(fp.base_url)
    for entry in no_tools["model_list"]:
        entry["model_info"]["supports_function_calling"] = False
    assert not TierRouteLLM(config=no_tools).metadata.is_function_calling_model


def test_typos_and_bad_tiers_are_typed_errors(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url))
    with pytest.raises(InvalidRequestError, match="temprature"):
        llm.chat(user("hi"), temprature=0.1)
    with pytest.raises(ConfigError, match="additional_kwargs"):
        TierRouteLLM(config=config(fp.base_url), additional_kwargs={"top_kk": 3})
    with pytest.raises(ConfigError, match="gold"):
        TierRouteLLM(config=config(fp.base_url), tiers={"gold": LiteLLM(model="openai/gpt-4o-mini")})
    with pytest.raises(ConfigError, match="tier 'budget' has no deployment"):
        TierRouteLLM(config=config(fp.base_url, only=("mid", "premium")))
    with pytest.raises(ConfigError, match="from_yaml"):
        TierRouteLLM(config=42)  # type: ignore[arg-type]
    assert len(fp.requests) == 0


def test_routing_metadata_reaches_the_rules(fp: FakeProvider) -> None:
    cfg = config(fp.base_url)
    cfg["routing"]["rules"].append({"name": "legal", "tier": "mid", "task_types": ["legal"]})
    llm = TierRouteLLM(config=cfg, routing_metadata={"task_type": "legal"})
    assert llm.chat(user("hi")).additional_kwargs["tierroute"]["tier"] == "mid"
    plain = TierRouteLLM(config=cfg)
    assert plain.chat(user("hi"), routing_metadata={"task_type": "legal"}).message.content == "mid answer"
    assert plain.chat(user("hi")).message.content == "budget answer"


# ---- tiers served by LlamaIndex LLM objects ------------------------------------------------------------


def object_tier(fp: FakeProvider) -> LiteLLM:
    # llama-index-llms-litellm pointed at FakeProvider; max_retries=1 = one attempt (the cascade retries)
    return LiteLLM(model="openai/gpt-4o-mini", api_base=fp.base_url, api_key="sk-fake-key-000", max_retries=1)


def test_object_tier_mixed_with_litellm_groups(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url, only=("mid", "premium")), tiers={"budget": object_tier(fp)})
    resp = llm.chat(user("hello"))
    meta = resp.additional_kwargs["tierroute"]
    assert resp.message.content == "object tier answer"
    assert (meta["tier"], meta["served_model"]) == ("budget", "gpt-4o-mini")
    assert meta["cost_usd"] > 0  # priced from LiteLLM's map by the object's model name
    assert resp.additional_kwargs["completion_tokens"] > 0
    assert llm.chat(user("prove this")).message.content == "premium answer"
    assert len(fp.requests_for("gpt-4o-mini")) == 1 and len(fp.requests_for("premium-model")) == 1


async def test_object_tier_provider_errors_are_classified(fp: FakeProvider) -> None:
    fp.set_script("gpt-4o-mini", ModelScript(reply="x", faults=[Fault("rate_limit", retry_after=0.01)]))
    llm = TierRouteLLM(
        config=config(fp.base_url, only=("mid", "premium")),
        tiers={"budget": object_tier(fp)},
        prices={"budget": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}},
    )
    resp = await llm.achat(user("hello"))
    assert tiers_of(resp) == [("budget", "rate_limit")] * 3 + [("mid", None)]
    fp.set_script("gpt-4o-mini", ModelScript(faults=[Fault("content_policy")]))
    with pytest.raises(ContentPolicyError) as ei:
        await llm.achat(user("bad"))
    assert isinstance(ei.value.__cause__, litellm.ContentPolicyViolationError)
    assert len(fp.requests_for("mid-model")) == 1


async def test_object_tier_prices_and_timeouts(fp: FakeProvider) -> None:
    cfg = config(fp.base_url, only=("mid", "premium"))
    cfg["cascade"]["timeout_s"] = 0.5
    prices = {"budget": {"input_cost_per_token": 2e-7, "output_cost_per_token": 8e-7}}
    llm = TierRouteLLM(config=cfg, tiers={"budget": object_tier(fp)}, prices=prices)
    resp = await llm.achat(user("hello"))
    usage = resp.additional_kwargs
    expected = 2e-7 * usage["prompt_tokens"] + 8e-7 * usage["completion_tokens"]
    assert resp.additional_kwargs["tierroute"]["cost_usd"] == pytest.approx(expected)
    fp.set_script("gpt-4o-mini", ModelScript(faults=[Fault("timeout", hang_s=3)]))
    resp = await llm.achat(user("hello again"))  # the object's own 600 s timeout never matters
    assert tiers_of(resp) == [("budget", "timeout"), ("budget", "timeout"), ("mid", None)]


async def test_object_tier_streams_and_calls_tools(fp: FakeProvider) -> None:
    fp.set_script(
        "gpt-4o-mini",
        ModelScript(reply="streamed from the object", tool_calls=[{"name": "add", "arguments": {"a": 1}}]),
    )
    llm = TierRouteLLM(config=config(fp.base_url, only=("mid", "premium")), tiers={"budget": object_tier(fp)})
    chunks = [c async for c in await llm.astream_chat(user("stream"))]
    assert chunks[-1].message.content == "streamed from the object"
    assert chunks[-1].additional_kwargs["tierroute"]["tier"] == "budget"
    assert chunks[-1].additional_kwargs["completion_tokens"] > 0  # estimated: the object streams no usage

    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    resp = await llm.achat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="add 1")
    (call,) = llm.get_tool_calls_from_response(resp)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 1})
    sent = fp.requests_for("gpt-4o-mini")[-1].body
    assert sent["tools"][0]["function"]["name"] == "add"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["a"]


def test_from_yaml_with_object_tier(fp: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "tierroute.yaml"
    path.write_text(yaml.safe_dump(config(fp.base_url, only=("mid", "premium"))), encoding="utf-8")
    llm = TierRouteLLM.from_yaml(path, tiers={"budget": object_tier(fp)}, temperature=0)
    assert llm.chat(user("hi")).message.content == "object tier answer"
    with pytest.raises(ConfigError, match="tier 'budget' has no deployment"):
        TierRouteLLM.from_yaml(path)


def test_no_secret_in_repr_json_or_payload(fp: FakeProvider) -> None:
    llm = TierRouteLLM(config=config(fp.base_url))
    for text in (repr(llm), llm.to_json(), str(llm.to_payload()), str(llm.router.config)):
        assert "sk-fake-key-000" not in text


def test_import_loads_no_heavy_package() -> None:
    code = (
        "import sys, llamaindex_tierroute; "
        "print([m for m in ('litellm', 'torch', 'sentence_transformers', 'semantic_router', 'langchain_core') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
