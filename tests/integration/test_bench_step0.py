"""``tierroute bench`` end to end against FakeProvider (replies replayed from a quality matrix) through LiteLLM:
matrix, table, heatmap and a routing map that validates; interrupted and resumed without redoing calls."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tierroute import RouterConfig, TierRouter
from tierroute.bench.matrix import QualityRow, read_matrix, write_matrix
from tierroute.bench.runner import RateLimiter
from tierroute.cli import main as tierroute_main
from tierroute.cli_evidence import bench
from tierroute.testing import FakeProvider, ModelScript

TIERS = ("budget", "mid", "premium")
PRICES = {"budget": 1e-7, "mid": 1e-6, "premium": 1e-5}
N = 8  # samples per task type

CAPITALS = [("France", "Paris"), ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Japan", "Tokyo"), ("Norway", "Oslo"),
            ("Chile", "Santiago"), ("Egypt", "Cairo"), ("Canada", "Ottawa")]  # fmt: skip


def samples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (country, city) in enumerate(CAPITALS[:N]):
        out.append({"id": f"cap-{i}", "task_type": "capitals", "prompt": f"Capital of {country}?", "reference": city,
                    "scorer": "contains"})  # fmt: skip
    for i in range(N):
        a, b = 17 + i, 23 + 2 * i
        out.append({"id": f"mul-{i}", "task_type": "arithmetic", "prompt": f"What is {a} * {b}?", "reference": a * b,
                    "scorer": "numeric"})  # fmt: skip
    for i in range(N):
        out.append({"id": f"proof-{i}", "task_type": "proofs", "prompt": f"Prove lemma {i} about primes.",
                    "reference": f"QED-{i}", "scorer": {"name": "regex", "pattern": f"QED-{i}\\b"}})  # fmt: skip
    return out


def answer(sample: dict[str, Any], tier: str) -> str:
    """What each tier answers: budget knows capitals only; mid also multiplies; premium also proves."""
    i = int(sample["id"].split("-")[1])
    task, ref = sample["task_type"], sample["reference"]
    good = {"capitals": True, "arithmetic": tier != "budget", "proofs": tier == "premium" or (tier == "mid" and i < 5)}
    if not good[task]:
        wrong = {"capitals": "Not sure.", "proofs": "It seems plausible."}
        return wrong.get(task) or f"About {int(ref) + 7}."
    return {"capitals": f"The capital is {ref}.", "arithmetic": f"{ref}", "proofs": f"... hence QED-{i}"}[task]


def quality_matrix(items: list[dict[str, Any]]) -> list[QualityRow]:
    return [
        QualityRow(
            id=s["id"], prompt=s["prompt"], task_type=s["task_type"], scores={t: 0.0 for t in TIERS},
            responses={t: answer(s, t) for t in TIERS}, tokens={t: {"prompt": 20, "completion": 10} for t in TIERS},
        )
        for s in items
    ]  # fmt: skip


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[tuple[FakeProvider, Path, Path, list[dict[str, Any]]]]:
    items = samples()
    matrix = write_matrix(tmp_path / "replies.jsonl", quality_matrix(items))
    scripts = {f"{t}-model": ModelScript.from_quality_matrix(matrix, t, latency_s=0.05) for t in TIERS}
    (tmp_path / "samples.yaml").write_text(yaml.safe_dump({"samples": items}))
    with FakeProvider(scripts) as fp:
        cfg = {
            "model_list": [
                {"model_name": t, "rpm": 6000, "litellm_params": {
                    "model": f"openai/{t}-model", "api_base": fp.base_url, "api_key": "sk-fake-key-000",
                    "input_cost_per_token": PRICES[t], "output_cost_per_token": 4 * PRICES[t]}}
                for t in TIERS
            ],
            "tiers": list(TIERS),
            "default_tier": "premium",
            "routing": {"rules": [{"name": "huge", "tier": "premium", "min_tokens": 60000}]},
        }  # fmt: skip
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
        yield fp, tmp_path / "config.yaml", tmp_path / "samples.yaml", items


def chat_pairs(fp: FakeProvider, since: int = 0) -> list[tuple[str, str]]:
    return [
        (r.model or "", r.body["messages"][-1]["content"])
        for r in fp.requests[since:]
        if r.path.endswith("/chat/completions") and r.outcome == "ok"
    ]


def test_bench_writes_matrix_table_heatmap_and_a_valid_routing_map(
    setup: tuple[FakeProvider, Path, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    fp, config, sample_file, _ = setup
    out = tmp_path / "out"
    args = ["--config", str(config), "--samples", str(sample_file), "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(bench, [*args, "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["calls_made"] == 3 * N * 3 and summary["failed"] == []
    assert len(chat_pairs(fp)) == 3 * N * 3

    rows = read_matrix(out / "matrix.jsonl")
    assert len(rows) == 3 * N
    by_task: dict[str, Counter[str]] = {}
    for r in rows:
        by_task.setdefault(r.task_type or "", Counter()).update({m: s for m, s in r.scores.items()})
        assert r.costs["premium"] > r.costs["mid"] > r.costs["budget"] > 0  # LiteLLM's cost from the config prices
        assert r.tokens["budget"]["prompt"] == 20 and r.latency_s["budget"] > 0
    assert by_task["capitals"] == {"budget": N, "mid": N, "premium": N}
    assert by_task["arithmetic"] == {"budget": 0, "mid": N, "premium": N}
    assert by_task["proofs"] == {"budget": 0, "premium": N, "mid": 5}

    routing = {t: e["model"] for t, e in summary["routing_map"].items()}
    assert routing == {"capitals": "budget", "arithmetic": "mid", "proofs": "premium"}
    assert summary["routing_map"]["proofs"]["cleared"] is True  # 8/8 -> lower bound 1.0
    cells = {(c["task"], c["model"]): c for c in summary["table"]}
    mid_proofs = cells[("proofs", "mid")]
    assert mid_proofs["mean"] == pytest.approx(5 / 8) and mid_proofs["lcb"] < mid_proofs["mean"]

    table = (out / "table.md").read_text()
    assert "| proofs | premium * | 8 | 1.000 | 1.000 |" in table
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the routing map is a config that `tierroute validate` accepts, and it routes as measured
    cfg = RouterConfig.from_yaml(out / "routing.yaml")
    assert [r.name for r in cfg.routing.rules][:3] == ["bench-arithmetic", "bench-capitals", "bench-proofs"]
    assert cfg.routing.rules[3].name == "huge"  # the config's own rules are kept after the evidence rules
    assert cfg.routing.semantic is not None and set(cfg.routing.semantic.routes) == set(TIERS)
    val = CliRunner().invoke(tierroute_main, ["validate", str(out / "routing.yaml")])
    assert val.exit_code == 0, val.output
    router = TierRouter.from_yaml(out / "routing.yaml")
    assert router.decide("What is 3 * 4?", metadata={"task_type": "arithmetic"}).tier == "mid"
    assert router.decide("Capital of Spain?", metadata={"task_type": "capitals"}).tier == "budget"

    # a second run sends nothing: every call comes from the cache
    again = CliRunner().invoke(bench, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["calls_made"] == 0 and len(chat_pairs(fp)) == 3 * N * 3


def test_interrupted_bench_resumes_without_redoing_finished_calls(
    setup: tuple[FakeProvider, Path, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    fp, config, sample_file, _ = setup
    for t in TIERS:  # slow the fake models down so the run can be interrupted part-way
        fp.set_script(f"{t}-model", ModelScript.from_quality_matrix(tmp_path / "replies.jsonl", t, latency_s=0.25))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tierroute.cli_evidence", "bench", "--config", str(config), "--samples",
           str(sample_file), "--out", str(out), "--concurrency", "2", "--no-progress"]  # fmt: skip
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    calls = out / "calls.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not calls.exists() or len(calls.read_text().splitlines()) < 10):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command to resume" in err

    done = [json.loads(line) for line in calls.read_text().splitlines()]
    assert 10 <= len(done) < 3 * N * 3
    finished = {(f"{rec['model']}-model", rec["prompt"]) for rec in done}
    assert len(finished) == len(done) and finished <= set(chat_pairs(fp))
    n_before = len(fp.requests)

    res = CliRunner().invoke(bench, ["--config", str(config), "--samples", str(sample_file), "--out", str(out),
                                     "--no-progress", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    resumed = chat_pairs(fp, since=n_before)
    assert not finished & set(resumed)  # no finished call is sent again
    assert summary["calls_cached"] == len(done)
    assert summary["calls_made"] == len(resumed) == 3 * N * 3 - len(done)
    assert finished | set(resumed) == {(f"{t}-model", s["prompt"]) for t in TIERS for s in samples()}
    assert len(read_matrix(out / "matrix.jsonl")) == 3 * N


async def test_rate_limiter_holds_requests_beyond_rpm_and_tpm() -> None:
    by_rpm = RateLimiter(rpm=2, tpm=None)
    await by_rpm.acquire(10)
    await by_rpm.acquire(10)
    with pytest.raises(asyncio.TimeoutError):  # the third request of the minute waits for the window to move
        await asyncio.wait_for(by_rpm.acquire(10), timeout=0.3)
    by_tpm = RateLimiter(rpm=None, tpm=1000)
    await by_tpm.acquire(600)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(by_tpm.acquire(600), timeout=0.3)
    await asyncio.wait_for(RateLimiter(rpm=None, tpm=100).acquire(5000), timeout=1)  # one oversized request passes
