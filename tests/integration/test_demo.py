"""``tierroute demo`` end to end without provider keys: the built-in prompts go through routing, the cascade
(real HTTP via LiteLLM to FakeProvider, replies and token counts from the demo's quality matrix) and the ledger,
and the spend report read back from the ledger matches what the requests cost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tierroute import RouterConfig
from tierroute.demo import build_demo_matrix, data_dir, expected_tier, run_demo
from tierroute.demo_prompts import DEMO_PROMPTS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tierroute.yaml"


def test_demo_runs_end_to_end_on_fake_provider(tmp_path: Path) -> None:
    cfg = RouterConfig.from_yaml(EXAMPLE)
    db = tmp_path / "demo.db"
    result = run_demo(cfg, ledger_url=f"sqlite:///{db}", fake=True)
    assert result.mode == "fake" and "FakeProvider" in result.note and "NO PROVIDER API KEYS" in result.note
    assert len(result.rows) == len(DEMO_PROMPTS) == 30
    assert all(r["outcome"] == "ok" for r in result.rows), [r for r in result.rows if r["outcome"] != "ok"]
    rep = result.report
    assert rep["requests"] == 30
    assert rep["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in result.rows), rel=1e-12)
    assert rep["counterfactual_cost_usd"] == pytest.approx(sum(r["counterfactual_cost_usd"] for r in result.rows))
    assert 0 < rep["cost_usd"] < rep["counterfactual_cost_usd"] and rep["savings_pct"] > 0
    # one scripted refusal from the cheapest tier is escalated, one 503 pair falls back: the report shows both
    assert rep["fallbacks"] >= 1 and rep["escalated"] >= 1
    assert rep["routing_accuracy"]["labelled"] == 30
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*), count(DISTINCT request_id) FROM tierroute_requests").fetchone() == (30, 30)
    # token counts come from the quality matrix: the served usage is the matrix row's
    matrix = {r["prompt"]: r for r in build_demo_matrix(DEMO_PROMPTS, cfg.tiers, data_dir())[0]}
    for prompt, tier, p_tok, c_tok in con.execute(
        "SELECT r.prompt_text, r.tier, r.prompt_tokens, r.completion_tokens FROM tierroute_requests r WHERE r.calls = 1"
    ):
        assert prompt is None  # no prompt text in the ledger by default
        assert tier in cfg.tiers and p_tok > 0 and c_tok > 0
    served = {r["prompt"]: r for r in result.rows if r["attempts"] == 1}
    for prompt, row in served.items():
        assert row["served_tier"] in matrix[prompt]["tokens"]


def test_demo_matrix_from_data_or_from_prompts(tmp_path: Path) -> None:
    rows, source = build_demo_matrix(DEMO_PROMPTS, ["budget", "mid", "premium"], tmp_path)  # no data there
    assert "estimated from the prompts" in source and len(rows) == 30
    assert all(r["tokens"]["premium"]["completion"] > r["tokens"]["budget"]["completion"] for r in rows)
    if (data_dir() / "routellm" / "gsm8k" / "gsm8k_responses.csv").exists():
        rows, source = build_demo_matrix(DEMO_PROMPTS, ["budget", "mid", "premium"], data_dir())
        assert "recorded GSM8K answers" in source
        assert len({r["tokens"]["budget"]["completion"] for r in rows}) > 10  # drawn, not a constant
    assert sum(expected_tier(str(p["prompt"])) is not None for p in DEMO_PROMPTS) == 30
