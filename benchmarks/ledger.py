"""Spend-ledger throughput and the overhead it adds to a routed request.

1. Sustained writes: ``--rows`` ledger rows (built from real request events) are queued as fast as one thread can
   and the clock stops when :meth:`Ledger.flush` returns (everything committed), on SQLite (a file in a temp
   dir, WAL) and PostgreSQL (``--pg-url``, a schema of its own, dropped afterwards), for each ``--batch`` size.
2. Overhead: ``TierRouter.acomplete`` against FakeProvider (``--latency`` per answer, no faults), one request
   at a time, without a ledger and with the SQLite ledger (and the PostgreSQL one), interleaved in blocks of
   ``--round`` calls per path (order rotated each round) after ``--warmup`` untimed calls. The ratio is the
   median latency with the ledger over the median without it (target: under 1.05).

Run from the repo root::

    .venv/bin/python benchmarks/ledger.py
    .venv/bin/python benchmarks/ledger.py --rows 100000 --n 400 --json

A measurement script, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_RATIO = 1.05
PG_DEFAULT = os.environ.get("TIERROUTE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def sample_rows(n: int) -> list[dict[str, Any]]:
    from tierroute.hooks import RequestEvent
    from tierroute.ledger import build_row
    from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace, Usage

    out = []
    for i in range(n):
        trace = RouteTrace(RouteDecision("budget", "rules", 0.9, "rule 'summarize'"))
        if i % 10 == 0:
            trace.attempts.append(Attempt("budget", "budget", failure=FailureKind.RATE_LIMIT, error="429"))
        trace.attempts.append(
            Attempt("budget", "budget", served_model="budget-model", usage=Usage(120, 80), cost_usd=4.4e-5)
        )
        trace.counterfactual_cost_usd = 4.4e-3
        req = RouteRequest.from_messages(f"summarize document {i}", metadata={"key": f"team-{i % 7}"})
        out.append(build_row(RequestEvent(req, trace.decision, trace, latency_s=0.4)))
    return out


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def writes(backend: str, url: str, rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    from tierroute.ledger import Ledger

    schema = f"trbench_{uuid.uuid4().hex[:8]}" if backend == "postgresql" else None
    ledger = Ledger(url, db_schema=schema, batch_size=batch, flush_interval_s=0.2, max_queue=len(rows) + 10)
    # create the table first so the clock measures writing, not DDL
    warm = dict(rows[0], id=uuid.uuid4().hex)
    ledger.writer.put(warm)
    ledger.flush()
    t0 = time.perf_counter()
    for r in rows:
        ledger.writer.put(dict(r, id=uuid.uuid4().hex))
    queued = time.perf_counter() - t0
    assert ledger.flush(600), ledger.writer.last_error
    elapsed = time.perf_counter() - t0
    count = ledger.count()
    ledger.close()
    if schema:
        drop_schema(url, schema)
    return {
        "backend": backend,
        "batch": batch,
        "rows": len(rows),
        "seconds": elapsed,
        "rows_per_s": len(rows) / elapsed,
        "enqueue_us_per_row": queued / len(rows) * 1e6,
        "committed": count - 1,
        "batches": ledger.stats.batches - 1,
    }


async def overhead(args: argparse.Namespace, pg_url: str | None) -> list[dict[str, Any]]:
    from tierroute import RouterConfig, TierRouter
    from tierroute.testing import FakeProvider, ModelScript

    tmp = Path(tempfile.mkdtemp(prefix="tierroute-bench-"))
    scripts = {"budget-model": ModelScript(reply="hello from the fake provider", usage=(30, 8), latency_s=args.latency)}
    with FakeProvider(scripts) as fp:
        base = {
            "model_list": [
                {
                    "model_name": "budget",
                    "litellm_params": {
                        "model": "openai/budget-model",
                        "api_base": fp.base_url,
                        "api_key": "sk-fake",
                        "input_cost_per_token": 1e-7,
                        "output_cost_per_token": 4e-7,
                    },
                }
            ],
            "tiers": ["budget"],
        }
        routers: dict[str, TierRouter] = {"no ledger": TierRouter(RouterConfig.from_dict(base))}
        routers["SQLite ledger"] = TierRouter(
            RouterConfig.from_dict({**base, "ledger": {"url": f"sqlite:///{tmp / 'bench.db'}"}})
        )
        schema = f"trbench_{uuid.uuid4().hex[:8]}"
        if pg_url:
            routers["PostgreSQL ledger"] = TierRouter(
                RouterConfig.from_dict({**base, "ledger": {"url": pg_url, "db_schema": schema}})
            )
        samples: dict[str, list[float]] = {k: [] for k in routers}
        names = list(routers)
        for name in names:
            for _ in range(args.warmup):
                await routers[name].acomplete("bench prompt")
        rounds = max(1, args.n // args.round)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                for _ in range(args.round):
                    t0 = time.perf_counter()
                    await routers[name].acomplete("bench prompt")
                    samples[name].append(time.perf_counter() - t0)
        for router in routers.values():
            await router.aclose()
        if pg_url:
            drop_schema(pg_url, schema)
    base_median = statistics.median(samples["no ledger"])
    out = []
    for name, xs in samples.items():
        xs.sort()
        med = statistics.median(xs)
        out.append(
            {
                "path": name,
                "n": len(xs),
                "median_ms": med * 1000,
                "p95_ms": xs[int(0.95 * (len(xs) - 1))] * 1000,
                "mean_ms": statistics.fmean(xs) * 1000,
                "ratio": med / base_median,
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000, help="rows per write run")
    p.add_argument("--batch", type=int, nargs="+", default=[100, 500, 2000], help="batch sizes to measure")
    p.add_argument("--pg-url", default=PG_DEFAULT, help="PostgreSQL URL ('' to skip PostgreSQL)")
    p.add_argument("--n", type=int, default=300, help="timed requests per path in the overhead run")
    p.add_argument("--round", type=int, default=25, help="requests per path per block")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.02, help="FakeProvider answer latency in seconds")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)

    rows = sample_rows(args.rows)
    tmp = Path(tempfile.mkdtemp(prefix="tierroute-bench-"))
    results = []
    for batch in args.batch:
        results.append(writes("sqlite", f"sqlite:///{tmp / f'w{batch}.db'}", rows, batch))
        if args.pg_url:
            results.append(writes("postgresql", args.pg_url, rows, batch))
    over = asyncio.run(overhead(args, args.pg_url or None))
    if args.json:
        print(json.dumps({"writes": results, "overhead": over}, indent=2))
        return
    print(f"# tierroute ledger benchmark ({platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs)\n")
    print(f"Sustained writes: {args.rows:,} rows queued from one thread; clock stops when every row is committed.\n")
    print("| backend | batch size | rows | seconds | rows/s | enqueue µs/row | commits |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['batch']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} "
            f"| {r['enqueue_us_per_row']:.1f} | {r['batches']} |"
        )
    print(
        f"\nOverhead on a routed request: `TierRouter.acomplete`, one at a time, FakeProvider latency "
        f"{args.latency * 1000:.0f} ms, {args.n} timed calls per path (target ratio < {TARGET_RATIO}).\n"
    )
    print("| path | n | median ms | p95 ms | mean ms | ratio (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for o in over:
        print(
            f"| {o['path']} | {o['n']} | {o['median_ms']:.2f} | {o['p95_ms']:.2f} | {o['mean_ms']:.2f} "
            f"| {o['ratio']:.3f} |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
