"""``kill -9`` a process mid-load: every request that completed longer ago than the ledger's documented loss
window (``Ledger.loss_window_s`` = ``flush_interval`` + the commit allowance) has its row on disk.

The child routes requests through ``TierRouter`` (real HTTP via LiteLLM to a FakeProvider in this process) with
the ledger on, and prints ``done <request id> <epoch seconds>`` after each request returned (its row is queued
by then). The parent reads those lines, kills the child with SIGKILL mid-load, and checks the ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tierroute.ledger import COMMIT_ALLOWANCE_S
from tierroute.testing import FakeProvider, ModelScript

PG_URL = os.environ.get("TIERROUTE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FLUSH_MS = 100
KILL_AFTER = 200  # completed requests before the kill, and at least LOAD_S seconds of load
LOAD_S = 3.0

CHILD = r"""
import asyncio, sys, time
from tierroute import RouterConfig, TierRouter

base_url, url, schema = sys.argv[1], sys.argv[2], sys.argv[3] or None
tiers = ["budget", "mid", "premium"]
cfg = RouterConfig.from_dict({
    "model_list": [{"model_name": t, "litellm_params": {"model": f"openai/{t}-model", "api_base": base_url,
                    "api_key": "sk-fake", "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}}
                   for t in tiers],
    "tiers": tiers, "default_tier": "budget",
    "ledger": {"url": url, "db_schema": schema, "flush_interval_ms": FLUSH_MS},
})

async def main():
    router = TierRouter(cfg)
    counter = iter(range(10**9))
    async def worker():
        for i in counter:
            await router.acomplete(f"question {i}", metadata={"request_id": f"k{i}"})
            sys.stdout.write(f"done k{i} {time.time():.6f}\n")
            sys.stdout.flush()
    await asyncio.gather(*(worker() for _ in range(20)))

asyncio.run(main())
""".replace("FLUSH_MS", str(FLUSH_MS))


@pytest.fixture()
def fp() -> Iterator[FakeProvider]:
    scripts = {f"{t}-model": ModelScript(reply=f"{t} answer", latency_s=0.005) for t in ("budget", "mid", "premium")}
    with FakeProvider(scripts) as provider:
        yield provider


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_loses_no_row_older_than_the_loss_window(fp: FakeProvider, tmp_path: Path, backend: str) -> None:
    schema = ""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url, schema = PG_URL, f"trk_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, fp.base_url, url, schema],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    done: dict[str, float] = {}
    enough = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "done":
                done[parts[1]] = float(parts[2])
                if len(done) >= KILL_AFTER and time.time() - min(done.values()) >= LOAD_S:
                    enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert enough.wait(120), f"the child completed only {len(done)} requests"
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        assert proc.wait(30) == -signal.SIGKILL
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    window = FLUSH_MS / 1000 + COMMIT_ALLOWANCE_S
    engine = _engine(url)
    try:
        t = sa.Table("tierroute_requests", sa.MetaData(schema=schema or None), autoload_with=engine)
        with engine.connect() as conn:
            on_disk = {r[0] for r in conn.execute(sa.select(t.c.request_id))}
    finally:
        if schema:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    due = {rid for rid, at in done.items() if at <= killed_at - window}
    recent = set(done) - due
    missing = sorted(due - on_disk)
    assert len(due) >= KILL_AFTER and recent, "too few requests completed before the window to prove anything"
    assert not missing, (
        f"{len(missing)} rows of requests completed > {window}s before the kill are missing: {missing[:5]}"
    )
    # rows on disk belong to requests that started (no phantom rows); recent ones may be lost: that is the window
    assert on_disk <= {f"k{i}" for i in range(len(done) + 1000)}
    print(
        "\n"
        + json.dumps(
            {
                "backend": backend,
                "completed": len(done),
                "completed_before_window": len(due),
                "in_window": len(recent),
                "rows_on_disk": len(on_disk),
                "lost_in_window": len(recent - on_disk),
                "window_s": window,
            }
        )
    )
