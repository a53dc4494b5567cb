"""The LlamaIndex examples run as a user would run them (a subprocess, offline demo mode) and print what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "llamaindex_query_engine.py": ["--stream"],
    "llamaindex_agent.py": [],
}


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Run every example at once (they are independent processes), then collect what each printed."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / name), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in EXAMPLES.items()
    }
    out: dict[str, str] = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
        out[name] = stdout
    return out


def test_query_engine_example(outputs: dict[str, str]) -> None:
    out = outputs["llamaindex_query_engine.py"]
    assert "A: From the documents: Orbit Coffee Roasters was founded in 2019 in Tromsø" in out
    assert "international shipping takes five to eight working days" in out
    assert "opened bags are refunded as store credit" in out
    assert "attempts: budget!server_error -> budget!server_error -> mid (fell back)" in out
    assert "| Where was Orbit Coffee founded? | budget | rules | 1 |" in out
    assert "| How long does international shipping take? | mid | rules | 3 |" in out
    assert "saved)" in out


def test_agent_example(outputs: dict[str, str]) -> None:
    out = outputs["llamaindex_agent.py"]
    assert "tool get_weather({'city': 'Oslo'}) -> light snow, -3 °C" in out
    assert "tool get_local_time({'city': 'Oslo'}) -> 14:05" in out
    assert "agent: In Oslo it is 14:05 and the weather is light snow, -3 °C." in out
    assert "| 1 | mid | rules | rule 'tool-use': tools present | mid-model |" in out
    assert "| 3 | budget | default |" in out
    assert "3 routed LLM calls" in out
