"""``tierroute report``: every number is the ledger's, on SQLite and PostgreSQL, through the API and the CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tierroute import ConfigError
from tierroute.hooks import RequestEvent
from tierroute.ledger import Ledger, build_row
from tierroute.report import build_report, parse_time
from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace, Usage

PG_URL = os.environ.get("TIERROUTE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[2]
TIERS = ["budget", "mid", "premium"]
PRICE = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}
DAY0 = datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp()


def synthetic_rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Ledger rows of ``n`` requests over 4 days: real traces (decision, attempts with failures, costs)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        decided = rng.choice(TIERS)
        trace = RouteTrace(RouteDecision(decided, rng.choice(["rules", "semantic", "default"]), 0.5, "r"))
        tier = decided
        if rng.random() < 0.1 and decided != "premium":  # a failure, then the next tier answers
            trace.attempts.append(Attempt(tier, tier, failure=FailureKind.SERVER_ERROR))
            tier = TIERS[TIERS.index(decided) + 1]
            trace.escalations = 1
        error = None
        if rng.random() < 0.05:
            trace.attempts.append(Attempt(tier, tier, failure=FailureKind.CONTENT_POLICY))
            error = RuntimeError("refused")
        else:
            u = Usage(rng.randint(5, 500), rng.randint(1, 300))
            cost = PRICE[tier] * (u.prompt_tokens + 4 * u.completion_tokens)
            trace.attempts.append(Attempt(tier, tier, served_model=f"{tier}-model-v1", usage=u, cost_usd=cost))
            trace.counterfactual_cost_usd = PRICE["premium"] * (u.prompt_tokens + 4 * u.completion_tokens)
        meta = {"key": f"team-{i % 4}", "expected_tier": rng.choice(TIERS) if i % 2 else None}
        event = RequestEvent(RouteRequest.from_messages(f"p{i}", metadata=meta), trace.decision, trace, error=error)
        event.started_at = DAY0 + rng.uniform(0, 4 * 86400)
        event.latency_s = rng.uniform(0.05, 3.0)
        out.append(build_row(event))
    return out


def write(url: str, rows: list[dict[str, Any]], **kw: Any) -> None:
    ledger = Ledger(url, **kw)
    for r in rows:
        ledger.writer.put(r)
    assert ledger.close()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return synthetic_rows(600)


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    schema = f"trr_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_tier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_tier[r["tier"]].append(r)
    cost = sum(r["cost_usd"] for r in rows)
    cf = sum(r["counterfactual_cost_usd"] for r in rows)
    return {
        "requests": len(rows),
        "cost_usd": cost,
        "counterfactual_cost_usd": cf,
        "savings_pct": (cf - cost) / cf * 100,
        "fallback_rate": sum(r["fell_back"] for r in rows) / len(rows),
        "errors": sum(r["outcome"] != "ok" for r in rows),
        "by_tier": {t: (len(rs), sum(r["cost_usd"] for r in rs)) for t, rs in by_tier.items()},
    }


def check(rep: dict[str, Any], exp: dict[str, Any]) -> None:
    assert rep["requests"] == exp["requests"] and rep["errors"] == exp["errors"]
    for k in ("cost_usd", "counterfactual_cost_usd", "savings_pct"):
        assert rep[k] == pytest.approx(exp[k], rel=1e-12), k
    assert rep["fallback_rate"] == exp["fallback_rate"]
    assert {t: (v["requests"], pytest.approx(v["cost_usd"], rel=1e-12)) for t, v in rep["by_tier"].items()} == exp[
        "by_tier"
    ]


@pytest.mark.postgres
def test_report_numbers_match_the_ledger_on_sqlite_and_postgres(
    rows: list[dict[str, Any]], tmp_path: Path, pg_schema: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'l.db'}"
    write(sqlite_url, rows)
    write(PG_URL, rows, db_schema=pg_schema)
    exp = expected(rows)
    a = build_report(sqlite_url, tiers=TIERS)
    b = build_report(PG_URL, db_schema=pg_schema, tiers=TIERS)
    check(a, exp)
    check(b, exp)
    for k in ("requests", "fallbacks", "escalated", "errors", "calls", "prompt_tokens", "completion_tokens"):
        assert a[k] == b[k], k
    assert list(a["by_tier"]) == TIERS  # in the given tier order
    assert a["routing_accuracy"] == b["routing_accuracy"]
    labelled = [r for r in rows if r["expected_tier"]]
    assert a["routing_accuracy"]["labelled"] == len(labelled)
    assert a["routing_accuracy"]["correct"] == sum(r["expected_tier"] == r["decided_tier"] for r in labelled)
    assert a["bucket"] == "day" and len(a["timeline"]) == 4
    assert sum(b_["requests"] for b_ in a["timeline"]) == len(rows)
    assert [g["start"] for g in a["timeline"]] == [g["start"] for g in b["timeline"]]
    for tier in TIERS:  # nearest-rank percentiles straight from the rows
        lat = sorted(r["latency_ms"] for r in rows if r["tier"] == tier)
        assert a["by_tier"][tier]["latency_p50_ms"] == pytest.approx(lat[-(-len(lat) // 2) - 1])
        assert b["by_tier"][tier]["latency_p95_ms"] == pytest.approx(a["by_tier"][tier]["latency_p95_ms"])


def test_group_by_and_time_range(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    write(url, rows)
    by_key = build_report(url, group_by="key")
    assert {g["key"]: g["requests"] for g in by_key["groups"]} == {f"team-{k}": 150 for k in range(4)}
    by_day = build_report(url, group_by="day")
    assert [g["day"] for g in by_day["groups"]] == ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"]
    by_model = build_report(url, group_by="model")
    assert {g["model"] for g in by_model["groups"]} == {None, "budget-model-v1", "mid-model-v1", "premium-model-v1"}
    since, until = parse_time("2025-03-02"), parse_time("2025-03-03T12:00")
    part = build_report(url, since=since, until=until)
    inside = [r for r in rows if since is not None and until is not None and since <= r["ts_ms"] < until]
    check(part, expected(inside))
    assert part["bucket"] == "hour"


def test_parse_time() -> None:
    now = 1_700_000_000.0
    assert parse_time("24h", now=now) == (now - 86400) * 1000
    assert parse_time("30m", now=now) == (now - 1800) * 1000
    assert parse_time("2025-03-01", now=now) == DAY0 * 1000
    assert parse_time("2025-03-01T01:00+01:00") == DAY0 * 1000
    assert parse_time("now", now=now) == now * 1000 and parse_time(None) is None
    with pytest.raises(ConfigError):
        parse_time("last tuesday")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [sys.executable, "-m", "tierroute.cli", "report", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_cli_json_text_and_errors(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    write(url, rows)
    out = cli("--ledger", url, "--json")
    assert out.returncode == 0, out.stderr
    check(json.loads(out.stdout), expected(rows))
    out = cli("--ledger", url, "--group-by", "key", "--since", "2025-03-03")
    assert out.returncode == 0, out.stderr
    for text in ("spend (actual)", "by tier", "by key", "team-3", "routing: expected tier"):
        assert text in out.stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model_list: [{model_name: budget, litellm_params: {model: openai/x}}]\n"
        f"tiers: [budget]\nledger: {{url: '{url}'}}\n"
    )
    out = cli("--config", str(cfg), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["requests"] == len(rows)
    out = cli("--ledger", f"sqlite:///{tmp_path / 'none.db'}")
    assert out.returncode == 1 and "has no table" in out.stderr and "Traceback" not in out.stderr
    out = cli("--ledger", url, "--since", "yesterday-ish")
    assert out.returncode == 1 and "cannot read time" in out.stderr
    assert cli().returncode == 2
