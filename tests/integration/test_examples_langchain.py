"""The LangChain examples run offline (FakeProvider) as subprocesses and print what their docstrings promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("langchain_chain.py", "langgraph_agent.py", "langchain_streaming.py")


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Run the examples side by side (each pays LiteLLM's import once) and collect stdout."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / name)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in EXAMPLES
    }
    out: dict[str, str] = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
        out[name] = stdout
    return out


def test_chain_prints_tier_and_cost_per_input(outputs: dict[str, str]) -> None:
    rows = [line.split("|")[1:-1] for line in outputs["langchain_chain.py"].splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert [c.strip() for c in header][:3] == ["input", "tier", "layer"]
    assert [(r[1].strip(), r[2].strip()) for r in body] == [
        ("budget", "rules"),
        ("mid", "rules"),
        ("budget", "rules"),
        ("premium", "rules"),
        ("mid", "default"),
    ]
    assert [r[3].strip() for r in body][:2] == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    for r in body:
        assert 0 < float(r[4]) <= float(r[5])  # routed cost never above the all-premium cost
    assert "% saved)" in outputs["langchain_chain.py"]
    assert "first answer: (claude-haiku-4-5) Here is my answer to: tl;dr" in outputs["langchain_chain.py"]


def test_agent_calls_tools_through_the_router_and_falls_back(outputs: dict[str, str]) -> None:
    text = outputs["langgraph_agent.py"]
    turns = [line for line in text.splitlines() if "model turn:" in line]
    assert len(turns) == 2
    for line in turns:
        assert "served by tier mid" in line and "decided budget by rules" in line
        assert "attempts [budget:server_error, budget:server_error, mid:ok]" in line
    assert 'tool calls: get_weather({"city": "Paris"})' in text
    assert 'tool get_weather -> {"city": "Paris", "celsius": 18, "sky": "sunny"}' in text
    assert "answer: It is 18 °C and sunny in Paris." in text
    assert "budget tier: 4 calls, all answered server_error" in text


def test_streaming_example_reports_usage_after_a_retry(outputs: dict[str, str]) -> None:
    text = outputs["langchain_streaming.py"]
    assert "assistant: Queues wait in silence / one message, then another / the consumer wakes" in text
    assert "usage: input 8, output 18, total 26 tokens" in text
    assert "attempts: [budget:rate_limit, budget:ok]" in text
    assert "served by tier budget (budget-model), decided by rules" in text
    assert "end event: tier mid, usage {'input_tokens': 8, 'output_tokens': 18, 'total_tokens': 26}" in text
    chunk_counts = [int(line.split("chunks: ")[1].split(";")[0]) for line in text.splitlines() if "chunks: " in line]
    assert len(chunk_counts) == 2 and all(n > 3 for n in chunk_counts)
