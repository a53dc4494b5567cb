from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from tierroute import BudgetExceededError, ContentPolicyError, RouteDecision, TierRouter
from tierroute.hooks import RequestEvent
from tierroute.testing import FakeProvider, Fault, ModelScript

from .cascade_helpers import config


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer") for t in ("budget", "mid", "premium")}
    with FakeProvider(scripts) as provider:
        yield provider


class Recorder:
    def __init__(self, move_to: str | None = None, refuse: bool = False) -> None:
        self.events: list[RequestEvent] = []
        self.move_to = move_to
        self.refuse = refuse

    async def before(self, request: Any, decision: RouteDecision, extra: dict[str, Any]) -> RouteDecision | None:
        extra["seen"] = decision.tier
        if self.refuse:
            raise BudgetExceededError(1.0, 0.5, "global")
        if self.move_to:
            return dataclasses.replace(decision, tier=self.move_to, reason=f"downgraded: {decision.reason}")
        return None

    async def after(self, event: RequestEvent) -> None:
        self.events.append(event)


class Broken:
    async def after(self, event: RequestEvent) -> None:
        raise RuntimeError("hook bug")


async def test_after_sees_answers_and_errors(fp: FakeProvider) -> None:
    rec = Recorder()
    router = TierRouter(config(fp.base_url), hooks=[Broken(), rec])
    c = await router.acomplete("hello")
    fp.set_script("budget-model", ModelScript(faults=[Fault(kind="content_policy")]))
    with pytest.raises(ContentPolicyError):
        await router.acomplete("bad")
    ok, bad = rec.events
    assert ok.outcome == "ok" and ok.response is not None and ok.response.text == c.text and ok.trace is c.trace
    assert ok.extra["seen"] == "budget" and ok.latency_s > 0
    assert bad.outcome == "ContentPolicyError" and bad.trace is not None and bad.trace.attempts[0].failure is not None


async def test_before_can_downgrade_or_refuse(fp: FakeProvider) -> None:
    router = TierRouter(config(fp.base_url), hooks=[Recorder(move_to="mid")])
    c = await router.acomplete("hello")
    assert c.text == "mid answer" and c.decision.reason.startswith("downgraded")
    refuse = Recorder(refuse=True)
    with pytest.raises(BudgetExceededError):
        await TierRouter(config(fp.base_url), hooks=[refuse]).acomplete("hello")
    assert refuse.events[0].outcome == "BudgetExceededError" and refuse.events[0].trace is None
    assert len(fp.requests) == 1


async def test_after_runs_at_end_of_stream(fp: FakeProvider) -> None:
    rec = Recorder()
    s = TierRouter(config(fp.base_url), hooks=[rec]).astream("stream it")
    text = "".join([c.text async for c in s])
    (event,) = rec.events
    assert event.stream and event.response is not None and event.response.text == text
    assert event.response.usage.total_tokens > 0
