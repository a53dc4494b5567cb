"""5,000 requests at concurrency 100 through one ``TierRouter`` with mixed faults, written to a SQLite ledger
(from the config) and a PostgreSQL ledger (a second hook) at once: every request has exactly one row in each,
each row's money equals its trace's, and ``tierroute report --json`` (the CLI, as other scripts call it)
sums to the traces' totals on both databases.

Real HTTP through LiteLLM to FakeProvider; a real SQLite file; the real PostgreSQL at TIERROUTE_POSTGRES_URL
(a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tierroute import TierRouter
from tierroute.config import OverrideConfig, RoutingConfig
from tierroute.errors import TierRouteError
from tierroute.ledger import Ledger
from tierroute.router import Completion
from tierroute.testing import FakeProvider, Fault, ModelScript
from tierroute.types import RouteTrace

from .cascade_helpers import TIERS, config

PG_URL = os.environ.get("TIERROUTE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
N_REQUESTS = 5000
CONCURRENCY = 100
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def faults(seed: int) -> list[Fault]:
    """About 12% of calls fail: rate limits, 5xx, resets, content-policy refusals (no hangs: they only cost time)."""
    return [
        Fault("rate_limit", rate=0.04, seed=seed + 1, retry_after=0.01),
        Fault("server_error", rate=0.03, seed=seed + 2, status=502),
        Fault("connection_reset", rate=0.03, seed=seed + 3),
        Fault("content_policy", rate=0.015, seed=seed + 4),
    ]


def reply(tier: str, every: int) -> Any:
    """The tier's answer, or "" (rejected by ``non_empty``: an escalation) for every ``every``-th question."""

    def fn(body: dict[str, Any]) -> str:
        n = int(str(body["messages"][-1]["content"]).split()[-1])
        return "" if n % every == 0 else f"{tier} answer"

    return fn


def lane(i: int) -> str:
    r = i % 10
    return "budget" if r < 6 else "mid" if r < 9 else "premium"


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    schema = f"trl_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({exc}); run `bash scripts/ensure_services.sh`")
    yield schema
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def report_json(url: str, table: str, schema: str | None = None) -> dict[str, Any]:
    args = [sys.executable, "-m", "tierroute.cli", "report", "--ledger", url, "--table", table, "--json"]
    if schema:
        args += ["--schema", schema]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def rows_by_request(url: str, table: str, schema: str | None = None) -> dict[str, Any]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    t = sa.Table(table, sa.MetaData(schema=schema), autoload_with=engine)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(t)).mappings())
    engine.dispose()
    ids = Counter(r["request_id"] for r in rows)
    assert not [k for k, n in ids.items() if n != 1], "a request has more than one row"
    return {r["request_id"]: r for r in rows}


async def test_5000_requests_ledger_matches_traces_on_sqlite_and_postgres(tmp_path: Path, pg_schema: str) -> None:
    scripts = {
        f"{t}-model": ModelScript(reply=reply(t, 29 + 2 * i), faults=faults(10 * (i + 1))) for i, t in enumerate(TIERS)
    }
    sqlite_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with FakeProvider(scripts) as fp:
        cfg = config(
            fp.base_url,
            retries={"rate_limit": 2, "server_error": 1, "connection": 1, "backoff_s": 0.001, "max_backoff_s": 0.05},
            max_escalations=1,
            accept=["non_empty"],
            circuit_breaker={"allowed_fails": 10_000, "window_s": 1, "cooldown_s": 0.1},
        )
        cfg = cfg.model_copy(
            update={
                "routing": RoutingConfig(override=OverrideConfig(key="tier", allow=list(TIERS))),
                "ledger": cfg.ledger.model_copy(update={"url": sqlite_url, "flush_interval_ms": 100}),
            }
        )
        pg_ledger = Ledger(PG_URL, db_schema=pg_schema, table="requests", flush_interval_s=0.1)
        sem = asyncio.Semaphore(CONCURRENCY)
        async with TierRouter(cfg, hooks=[pg_ledger]) as router:

            async def one(i: int) -> Completion | BaseException:
                meta = {"tier": lane(i), "request_id": f"r{i}", "key": f"team-{i % 3}", "expected_tier": "budget"}
                async with sem:
                    try:
                        return await router.acomplete(f"question {i}", metadata=meta)
                    except TierRouteError as exc:
                        return exc

            results = await asyncio.gather(*(one(i) for i in range(N_REQUESTS)))
        # leaving the router flushed both ledgers: nothing is left in their queues
        await pg_ledger.aclose()

    traces: dict[str, RouteTrace] = {}
    for i, r in enumerate(results):
        trace = r.trace if isinstance(r, Completion) else getattr(r, "trace", None)
        assert trace is not None, repr(r)
        traces[f"r{i}"] = trace
    errors = Counter(type(r).__name__ for r in results if not isinstance(r, Completion))
    assert errors, "the fault mix produced no failed request"
    assert sum(1 for t in traces.values() if t.fell_back) > 0

    exp_cost = sum(t.cost_usd for t in traces.values())
    exp_cf = sum(t.counterfactual_cost_usd for t in traces.values())
    exp_by_tier: dict[str, list[float]] = defaultdict(list)
    for t in traces.values():
        s = t.served
        exp_by_tier[s.tier if s is not None else t.decision.tier].append(t.cost_usd)
    exp_fallbacks = sum(1 for t in traces.values() if t.fell_back)
    outcomes = {f"r{i}": ("ok" if isinstance(r, Completion) else type(r).__name__) for i, r in enumerate(results)}

    for url, table, schema in ((sqlite_url, "tierroute_requests", None), (PG_URL, "requests", pg_schema)):
        rows = rows_by_request(url, table, schema)
        assert len(rows) == N_REQUESTS and set(rows) == set(traces)
        for rid, trace in traces.items():  # every row carries its own trace's numbers, exactly
            row = rows[rid]
            assert row["cost_usd"] == trace.cost_usd and row["counterfactual_cost_usd"] == trace.counterfactual_cost_usd
            assert row["fell_back"] == trace.fell_back and row["outcome"] == outcomes[rid]
            assert row["calls"] == sum(1 for a in trace.attempts if not a.skipped)
            kinds = [a["failure"] for a in json.loads(row["attempts"])]
            assert kinds == [a.failure.value if a.failure else None for a in trace.attempts]
        rep = report_json(url, table, schema)
        assert rep["requests"] == N_REQUESTS
        assert rep["cost_usd"] == pytest.approx(exp_cost, rel=1e-9)
        assert rep["counterfactual_cost_usd"] == pytest.approx(exp_cf, rel=1e-9)
        assert rep["savings_pct"] == pytest.approx((exp_cf - exp_cost) / exp_cf * 100, rel=1e-9)
        assert rep["fallback_rate"] == exp_fallbacks / N_REQUESTS
        assert rep["errors"] == sum(errors.values())
        assert set(rep["by_tier"]) == set(exp_by_tier)
        for tier, costs in exp_by_tier.items():
            assert rep["by_tier"][tier]["requests"] == len(costs)
            assert rep["by_tier"][tier]["cost_usd"] == pytest.approx(sum(costs), rel=1e-9)
        acc = rep["routing_accuracy"]
        assert acc["labelled"] == N_REQUESTS and acc["correct"] == sum(
            1 for i in range(N_REQUESTS) if lane(i) == "budget"
        )
    print(f"\nledger load: {N_REQUESTS} requests, errors={dict(errors)}, fallbacks={exp_fallbacks}")
