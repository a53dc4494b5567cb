"""The ``tierroute`` command, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tierroute.yaml"


def tr(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [sys.executable, "-m", "tierroute.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_help_lists_commands() -> None:
    out = tr("--help")
    assert out.returncode == 0
    for cmd in ("validate", "route", "demo", "report"):
        assert cmd in out.stdout
    for cmd in ("validate", "route", "demo", "report"):
        assert tr(cmd, "--help").returncode == 0


def test_validate_ok() -> None:
    out = tr("validate", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "ok (3 tiers: budget, mid, premium; 6 rules)" in out.stdout


def test_validate_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model_list:\n  - {model_name: budget, litellm_params: {model: openai/x, api_key: sk-secret-value-1}}\n"
        "tiers: [budget, mid]\n"
        "routing:\n  rules:\n    - {name: a, tier: gold, keywords: [x]}\n"
        "    - {name: b, tier: budget, regex: '(a+)+'}\n"
        "cascade: {fallbacks: {budget: [mid], mid: [budget]}, retrys: {}}\n"
    )
    out = tr("validate", str(bad))
    assert out.returncode == 1
    err = out.stderr
    assert "routing.rules[1].regex" in err and "'(a+)+'" in err
    assert "cascade.retrys" in err
    assert "sk-secret-value-1" not in out.stdout + err
    # --json lists the same problems
    data = json.loads(tr("validate", str(bad), "--json").stdout)
    assert data["ok"] is False and any(p["path"] == "routing.rules[1].regex" for p in data["problems"])


def test_validate_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [a, b\n  - : :")
    out = tr("validate", str(bad))
    assert out.returncode == 1 and "not valid YAML" in out.stderr and "Traceback" not in out.stderr


def test_route_json_and_explain() -> None:
    out = tr("route", str(EXAMPLE), "tl;dr of this thread please", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert (d["tier"], d["layer"]) == ("budget", "rules") and "summarize" in d["reason"]
    out = tr("route", str(EXAMPLE), "Formally prove this lock-free queue is linearizable", "--explain")
    assert out.returncode == 0, out.stderr
    assert "tier: premium" in out.stdout and "layer: semantic" in out.stdout
    assert "rules" in out.stdout and "(abstain)" in out.stdout
    out = tr("route", str(EXAMPLE), "anything", "-m", "task_type=summarization", "--json")
    assert json.loads(out.stdout)["tier"] == "budget"


def test_route_bad_metadata_and_missing_config() -> None:
    out = tr("route", str(EXAMPLE), "x", "-m", "novalue")
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr
    out = tr("route", "nope.yaml", "x")
    assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_demo_prints_table_and_mix() -> None:
    out = tr("demo", "--config", str(EXAMPLE), "--fake")  # end to end on FakeProvider, then the spend report
    assert out.returncode == 0, out.stderr
    assert "tier mix: budget:" in out.stdout and "decided by:" in out.stdout
    assert "FAKE PROVIDER" in out.stdout and "counterfactual saving" in out.stdout and "spend (actual)" in out.stdout
    data = json.loads(tr("demo", "--config", str(EXAMPLE), "--json", "--decide-only").stdout)
    assert len(data["decisions"]) == 30
    layers = {d["layer"] for d in data["decisions"]}
    assert {"rules", "semantic", "override"} <= layers
    assert sum(data["tier_mix"].values()) == 30
