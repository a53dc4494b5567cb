"""Session stickiness: a conversation keeps its first tier unless a later turn needs a higher one."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from itertools import cycle
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from tierroute import ConfigError, RouteDecision, RouteRequest
from tierroute.state_redis import RedisStateStore
from tierroute.sticky import StickySessions
from tierroute.testing import FakeProvider

from langchain_tierroute import ChatTierRoute

from .test_langchain_support import fake_provider, lc_config

TIERS = ["budget", "mid", "premium"]
REDIS_URL = os.environ.get("TIERROUTE_REDIS_URL", "redis://127.0.0.1:6379/0")
RULES = [
    {"name": "hard", "tier": "premium", "keywords": ["prove"]},
    {"name": "code", "tier": "mid", "keywords": ["debug"]},
]


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def request(thread: Any = "t-1") -> RouteRequest:
    meta = {} if thread is None else {"thread_id": thread}
    return RouteRequest.from_messages("hello", metadata=meta)


def decision(tier: str, layer: str = "rules") -> RouteDecision:
    return RouteDecision(tier, layer, 1.0, f"{layer} chose {tier}")


async def route(sticky: StickySessions, tier: str, thread: Any = "t-1", layer: str = "rules") -> RouteDecision:
    d = decision(tier, layer)
    changed = await sticky.before(request(thread), d, {})
    return changed or d


async def test_first_tier_sticks_and_only_moves_up() -> None:
    sticky = StickySessions(TIERS)
    assert (await route(sticky, "mid")).tier == "mid"
    kept = await route(sticky, "budget")
    assert (kept.tier, kept.layer) == ("mid", "sticky")
    assert "rules layer chose 'budget'" in kept.reason and kept.verdicts[-1].layer == "sticky"
    assert (await route(sticky, "premium")).tier == "premium"
    assert (await route(sticky, "mid")).tier == "premium"
    assert await sticky.tier_of("t-1") == "premium"
    # other threads, requests without a thread and explicit overrides are left alone
    assert (await route(sticky, "budget", thread="t-2")).tier == "budget"
    assert (await route(sticky, "budget", thread=None)).tier == "budget"
    assert (await route(sticky, "budget", layer="override")).tier == "budget"
    assert await sticky.tier_of("t-1") == "premium"
    await sticky.forget("t-1")
    assert (await route(sticky, "budget")).tier == "budget"


async def test_memory_pins_expire_and_are_bounded() -> None:
    clock = Clock()
    sticky = StickySessions(TIERS, ttl_s=60, max_threads=2, clock=clock)
    await route(sticky, "premium", thread="a")
    clock.t += 59
    assert (await route(sticky, "budget", thread="a")).tier == "premium"  # used again: ttl restarts
    clock.t += 59
    assert (await route(sticky, "budget", thread="a")).tier == "premium"
    clock.t += 61
    assert (await route(sticky, "budget", thread="a")).tier == "budget"  # idle past ttl: routed afresh
    await route(sticky, "mid", thread="b")
    await route(sticky, "mid", thread="c")  # a is the least recently used of three
    assert len(sticky) == 2 and await sticky.tier_of("a") is None and await sticky.tier_of("b") == "mid"


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="each once"):
        StickySessions(["a", "a"])
    with pytest.raises(ConfigError, match="ttl_s"):
        StickySessions(TIERS, ttl_s=0)
    with pytest.raises(ConfigError, match="max_threads"):
        StickySessions(TIERS, max_threads=0)


@pytest.fixture()
async def redis_store() -> AsyncIterator[RedisStateStore]:
    store = RedisStateStore(REDIS_URL, prefix=f"tr-test-{uuid.uuid4().hex[:8]}")
    try:
        yield store
    finally:
        await store.reset()
        await store.aclose()


@pytest.mark.redis
async def test_pins_shared_through_redis(redis_store: RedisStateStore) -> None:
    clock = Clock()
    one = StickySessions(TIERS, store=redis_store, ttl_s=120, clock=clock)
    two = StickySessions(TIERS, store=lambda: redis_store, ttl_s=120, clock=clock)  # another "process"
    thread = "conversation with a user-supplied id: ünïcode & spaces"
    await route(one, "mid", thread=thread)
    kept = await route(two, "budget", thread=thread)
    assert (kept.tier, kept.layer) == ("mid", "sticky")
    await route(two, "premium", thread=thread)
    assert await one.tier_of(thread) == "premium"
    keys = [k async for k in redis_store._client().client.scan_iter(match=f"{redis_store.prefix}:*")]
    assert keys and not any("conversation" in str(k) for k in keys)  # thread ids are hashed
    clock.t += 200
    assert await one.tier_of(thread) is None  # expired
    await route(one, "mid", thread=thread)
    await two.forget(thread)
    assert await one.tier_of(thread) is None


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    with fake_provider() as provider:
        yield provider


def test_chat_model_keeps_a_thread_on_its_tier(fp: FakeProvider) -> None:
    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=RULES), sticky=True)
    first: RunnableConfig = {"metadata": {"thread_id": "chat-1"}}
    assert llm.invoke("debug this loop", config=first).content == "mid answer"
    followup = llm.invoke("thanks! one more small thing", config=first)
    tr = followup.response_metadata["tierroute"]
    assert (followup.content, tr["tier"], tr["layer"]) == ("mid answer", "mid", "sticky")
    assert llm.invoke("thanks! one more small thing").content == "budget answer"  # no thread: routed afresh
    assert llm.invoke("now prove it", config=first).content == "premium answer"
    assert llm.invoke("ok bye", config=first).content == "premium answer"


async def test_langgraph_thread_id_pins_and_messages_stream_once() -> None:
    llm = ChatTierRoute(
        config={"tiers": TIERS, "default_tier": "budget", "routing": {"rules": RULES}},
        tiers={t: GenericFakeChatModel(messages=cycle([f"{t} says hi"])) for t in TIERS},
        sticky=True,
    )

    async def chat(state: MessagesState) -> dict[str, list[AIMessage]]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    app = graph.compile(checkpointer=InMemorySaver())
    cfg: RunnableConfig = {"configurable": {"thread_id": "graph-1"}}
    tiers = []
    for text in ["hello", "please debug", "thanks"]:
        out = await app.ainvoke({"messages": [("user", text)]}, cfg)
        tiers.append(out["messages"][-1].response_metadata["tierroute"]["tier"])
    assert tiers == ["budget", "mid", "mid"]
    # "messages" streaming shows each token once: tier model calls are not streamed a second time
    tokens: list[str] = []
    async for chunk, _meta in app.astream({"messages": [("user", "hi again")]}, cfg, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk) and chunk.content:
            tokens.append(str(chunk.content))
    assert "".join(tokens) == "mid says hi"


def test_sticky_instance_and_hook_order(fp: FakeProvider) -> None:
    sticky = StickySessions(TIERS, key="session")
    seen: list[str] = []

    class Budget:
        async def before(self, req: RouteRequest, d: RouteDecision, extra: dict[str, Any]) -> RouteDecision:
            seen.append(d.layer)
            return dataclasses.replace(d, tier="budget", reason="budget cap")  # runs after stickiness

    llm = ChatTierRoute(config=lc_config(fp.base_url, rules=RULES), sticky=sticky, hooks=[Budget()])
    cfg: RunnableConfig = {"metadata": {"session": 7}}
    assert llm.invoke("now prove it", config=cfg).content == "budget answer"
    assert llm.invoke("hello", config=cfg).content == "budget answer"
    assert seen == ["rules", "sticky"] and llm.router.hooks[0] is sticky
