"""LangChain chat models as tiers: provider errors raised by the tier model itself are classified by the cascade."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import cycle

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_openai import ChatOpenAI
from tierroute import CascadeExhaustedError, ConfigError, ContentPolicyError
from tierroute.testing import FakeProvider, Fault

from langchain_tierroute import ChatTierRoute, LangChainBackend

from .test_langchain_support import PRICES, attempts, fake_provider, fault, lc_config, script

BUDGET_PRICE = {"input_cost_per_token": 2e-7, "output_cost_per_token": 8e-7}


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


def openai_tier(fp: FakeProvider, name: str = "lc-budget-model") -> ChatOpenAI:
    return ChatOpenAI(model=name, base_url=fp.base_url, api_key="sk-fake", max_retries=0, stream_usage=True)


def mixed(fp: FakeProvider, **kw: object) -> ChatTierRoute:
    """budget = a ChatOpenAI object on the fake provider; mid and premium = LiteLLM model groups."""
    return ChatTierRoute(
        config=lc_config(fp.base_url, drop=("budget",)),
        tiers={"budget": openai_tier(fp)},
        tier_prices={"budget": BUDGET_PRICE},
        **kw,  # type: ignore[arg-type]
    )


def test_generic_fake_chat_model_tier_serves_and_is_priced() -> None:
    llm = ChatTierRoute(
        config={"tiers": ["budget", "premium"], "default_tier": "budget"},
        tiers={
            "budget": GenericFakeChatModel(messages=cycle(["cheap and cheerful"])),
            "premium": GenericFakeChatModel(messages=cycle(["expensive"])),
        },
        tier_prices={"budget": BUDGET_PRICE, "premium": {"input_cost_per_token": 1e-5, "output_cost_per_token": 4e-5}},
    )
    msg = llm.invoke("hello")
    assert msg.content == "cheap and cheerful"
    assert msg.response_metadata["model_name"] == "GenericFakeChatModel"
    chunks = list(llm.stream("hello again"))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.content == "cheap and cheerful" and len(chunks) > 2


def test_openai_tier_object_answers_with_usage_and_list_price(fp: FakeProvider) -> None:
    fp.set_script("lc-budget-model", script("budget", usage=(10, 5)))
    msg = mixed(fp).invoke("hello")
    assert msg.content == "budget answer"
    assert msg.response_metadata["model_name"] == "budget-model-2025-01-01"
    tr = msg.response_metadata["tierroute"]
    assert tr["cost_usd"] == pytest.approx(10 * 2e-7 + 5 * 8e-7)
    # the counterfactual prices the same tokens on the premium LiteLLM group
    assert tr["counterfactual_cost_usd"] == pytest.approx(10 * PRICES["premium"] + 5 * 4 * PRICES["premium"])
    assert msg.usage_metadata == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}


@pytest.mark.parametrize(
    ("fault_kw", "expected"),
    [
        ({"kind": "rate_limit", "first": 1, "retry_after": 0.01}, [("budget", "rate_limit"), ("budget", None)]),
        (
            {"kind": "server_error", "status": 500},
            [("budget", "server_error"), ("budget", "server_error"), ("mid", None)],
        ),
        ({"kind": "server_error", "status": 529}, [("budget", "rate_limit"), ("budget", None)]),
        ({"kind": "connection_reset", "first": 1}, [("budget", "connection"), ("budget", None)]),
    ],
)
async def test_provider_errors_raised_by_the_tier_model_are_classified(
    fp: FakeProvider, fault_kw: dict[str, object], expected: list[tuple[str, str | None]]
) -> None:
    if fault_kw.get("status") == 529:
        fault_kw = {**fault_kw, "first": 1}
    fault(fp, "budget", Fault(**fault_kw))  # type: ignore[arg-type]
    msg = await mixed(fp).ainvoke("hello")
    assert [(t, k) for t, k, _ in attempts(msg.response_metadata)] == expected


async def test_content_policy_from_the_tier_model_stops(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("content_policy"))
    with pytest.raises(ContentPolicyError) as ei:
        await mixed(fp).ainvoke("something bad")
    trace = ei.value.trace
    assert trace is not None and [(a.tier, a.failure.value if a.failure else None) for a in trace.attempts] == [
        ("budget", "content_policy")
    ]
    assert type(ei.value.__cause__).__module__.startswith(("openai", "langchain_openai"))
    assert not fp.requests_for("lc-mid-model")


def test_bad_request_and_auth_from_the_tier_model_fail_fast(fp: FakeProvider) -> None:
    for kind in ("bad_request", "auth"):
        fault(fp, "budget", Fault(kind))  # type: ignore[arg-type]
        with pytest.raises(CascadeExhaustedError) as ei:
            mixed(fp).invoke("hello")
        assert ei.value.trace is not None and ei.value.trace.attempts[-1].failure is not None
        assert ei.value.trace.attempts[-1].failure.value == kind
    assert not fp.requests_for("lc-mid-model")


async def test_a_hanging_tier_model_times_out_and_falls_back(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("timeout", hang_s=3.0))
    msg = await mixed(fp, timeout=0.3, max_retries=0).ainvoke("hello")
    assert attempts(msg.response_metadata) == [("budget", "timeout", False), ("mid", None, False)]


async def test_streaming_through_a_tier_model_object(fp: FakeProvider) -> None:
    fp.set_script("lc-budget-model", script("budget", reply="a b c d e f", usage=(4, 6)))
    chunks = [c async for c in mixed(fp).astream("hello")]
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.content == "a b c d e f"
    assert full.usage_metadata == {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["tierroute"]["cost_usd"] == pytest.approx(4 * 2e-7 + 6 * 8e-7)


async def test_stream_from_a_failing_tier_model_falls_back_before_tokens(fp: FakeProvider) -> None:
    fault(fp, "budget", Fault("server_error", status=502))
    chunks = [c async for c in mixed(fp).astream("hello")]
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.content == "mid answer"
    assert [a[:2] for a in attempts(full.response_metadata)] == [
        ("budget", "server_error"),
        ("budget", "server_error"),
        ("mid", None),
    ]


def test_tier_objects_are_checked_and_self_retrying_models_warned(
    fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match="expected a LangChain chat model"):
        ChatTierRoute(config=lc_config(fp.base_url, drop=("budget",)), tiers={"budget": "gpt-4o"})
    with pytest.raises(ConfigError, match="unknown price key"):
        LangChainBackend({"budget": openai_tier(fp)}, prices={"budget": {"input_price": 1.0}})
    with caplog.at_level(logging.WARNING, logger="tierroute"):
        LangChainBackend({"budget": ChatOpenAI(model="x", base_url=fp.base_url, api_key="k", max_retries=2)})
    assert "max_retries=2" in caplog.text
