"""The ledger as a hook of a real ``TierRouter`` (FakeProvider through LiteLLM) on a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tierroute import ConfigError, ContentPolicyError, RouterConfig, TierRouter
from tierroute.hooks import RequestEvent
from tierroute.ledger import Ledger, build_row
from tierroute.testing import FakeProvider, Fault, ModelScript
from tierroute.types import RouteRequest

from .cascade_helpers import config


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer", usage=(10, 5)) for t in ("budget", "mid", "premium")}
    with FakeProvider(scripts) as provider:
        yield provider


def with_ledger(cfg: RouterConfig, url: str, **ledger: Any) -> RouterConfig:
    return cfg.model_copy(update={"ledger": cfg.ledger.model_copy(update={"url": url, **ledger})})


def rows(db: Path, table: str = "tierroute_requests") -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY ts_ms")]
    finally:
        con.close()


async def test_one_row_per_request_with_trace_numbers(fp: FakeProvider, tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    script = ModelScript(reply="budget answer", usage=(10, 5), faults=[Fault("server_error", first=2)])
    fp.set_script("budget-model", script)
    async with TierRouter(with_ledger(config(fp.base_url), f"sqlite:///{db}")) as router:
        assert router.ledger is not None and router.ledger.stats.written == 0  # nothing written before a request
        meta = {"key": "team-a", "user": "u1", "task_type": "qa", "expected_tier": "budget", "request_id": "req-1"}
        c = await router.acomplete("What is 2 + 2?", metadata=meta)
        fp.set_script("budget-model", ModelScript(faults=[Fault("content_policy")]))
        with pytest.raises(ContentPolicyError):
            await router.acomplete("bad", metadata={"request_id": "req-2"})
    # leaving the router flushed: both rows are on disk now
    ok, bad = rows(db)
    assert ok["request_id"] == "req-1" and ok["key"] == "team-a" and ok["user"] == "u1"
    assert (ok["task_type"], ok["expected_tier"]) == ("qa", "budget")
    assert (ok["decided_tier"], ok["layer"], ok["tier"]) == ("budget", "default", "mid")  # fell back after 2 x 500
    assert ok["served_model"] == c.trace.served.served_model and ok["fell_back"] == 1 and ok["escalations"] == 1
    assert ok["cost_usd"] == c.trace.cost_usd > 0 and ok["counterfactual_cost_usd"] == c.trace.counterfactual_cost_usd
    assert (ok["prompt_tokens"], ok["completion_tokens"], ok["calls"]) == (10, 5, 3)
    assert [a["failure"] for a in json.loads(ok["attempts"])] == ["server_error", "server_error", None]
    assert ok["outcome"] == "ok" and ok["latency_ms"] > 0 and ok["stream"] == 0
    assert ok["prompt_text"] is None
    assert ok["prompt_sha256"] == hashlib.sha256(b"user: What is 2 + 2?").hexdigest()
    assert abs(ok["ts_ms"] / 1000 - time.time()) < 60
    assert bad["outcome"] == "ContentPolicyError" and bad["cost_usd"] == 0.0 and bad["served_model"] is None
    assert [a["failure"] for a in json.loads(bad["attempts"])] == ["content_policy"]


async def test_prompt_text_only_when_configured_and_streams_recorded(fp: FakeProvider, tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    cfg = with_ledger(config(fp.base_url), f"sqlite:///{db}", store_prompt_text=True, table="spend")
    async with TierRouter(cfg) as router:
        text = "".join([c.text async for c in router.astream("stream please", metadata={"request_id": "s"})])
    (row,) = rows(db, "spend")
    assert text == "budget answer" and row["stream"] == 1 and row["prompt_text"] == "user: stream please"
    assert row["completion_tokens"] > 0 and row["cost_usd"] > 0


async def test_rows_are_batched_and_flush_commits_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    ledger = Ledger(f"sqlite:///{db}", batch_size=10, flush_interval_s=30.0)
    event = RequestEvent(RouteRequest.from_messages("hi"), None, None)
    for _ in range(25):
        await ledger.after(event)
    assert ledger.flush(30)  # 2 full batches went on their own; the flush commits the last 5
    assert ledger.stats.written == 25 and ledger.stats.batches == 3 and ledger.count() == 25
    ledger.close()
    assert not ledger.writer.running
    await ledger.after(event)  # recording again restarts the writer
    assert await ledger.aclose() and ledger.count() == 26


async def test_retention_deletes_old_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ledger = Ledger(url, retention_days=1)
    now = time.time()
    for age_days in (0, 0.5, 2, 10):
        row = build_row(RequestEvent(RouteRequest.from_messages("x"), None, None))
        row["ts_ms"] = int((now - age_days * 86400) * 1000)
        ledger.writer.put(row)
    assert ledger.flush(30)  # the writer applies retention after its first commit
    assert ledger.count() == 2
    ledger.writer.put(row)  # a row 10 days old
    ledger.close()
    assert ledger.count() == 3 and Ledger(url).prune(1.0) == 1 and ledger.count() == 2


def test_config_validation() -> None:
    base = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x"}}], "tiers": ["a"]}
    for url in ("mysql://h/db", "sqlite:///:memory:", "sqlite://"):
        with pytest.raises(ConfigError) as ei:
            RouterConfig.from_dict({**base, "ledger": {"url": url}})
        assert ei.value.path == "ledger.url"
    with pytest.raises(ConfigError) as ei:
        RouterConfig.from_dict({**base, "ledger": {"url": "sqlite:///x.db", "table": "drop table;"}})
    assert ei.value.path == "ledger.table"
    cfg = RouterConfig.from_dict({**base, "ledger": {"url": "postgres://u@h/db", "flush_interval_ms": 50}})
    assert Ledger.from_config(cfg.ledger).url == "postgresql+psycopg://u@h/db"
    assert Ledger.from_config(cfg.ledger).loss_window_s == pytest.approx(1.05)


def test_unreachable_database_is_retried_and_reported(tmp_path: Path) -> None:
    ledger = Ledger("postgresql://nobody@127.0.0.1:1/none", flush_interval_s=0.01)
    ledger.record(RequestEvent(RouteRequest.from_messages("x"), None, None))
    assert ledger.flush(2.0) is False  # the row stays queued; the writer keeps retrying
    assert ledger.stats.failed_commits >= 1 and ledger.stats.written == 0
    assert ledger.writer.last_error is not None and "OperationalError" in ledger.writer.last_error
    assert ledger.close(timeout=0.5) is False  # given up at close...
    for _ in range(100):
        if not ledger.writer.running:
            break
        time.sleep(0.05)
    assert ledger.stats.dropped == 1  # ...and the lost row is counted
