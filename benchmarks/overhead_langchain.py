"""Overhead of ``ChatTierRoute.ainvoke`` over ``ChatOpenAI.ainvoke`` pointed at the same (fake) model.

A :class:`tierroute.testing.FakeProvider` answers every call after a fixed latency (``--latency``, default
20 ms: a fast provider), no faults. It runs in its own process (``python -m tierroute.testing``) so that serving
does not compete with the measured client for this interpreter's GIL, as a real provider would not
(``--provider thread`` runs it in-process instead). Paths, each called one request at a time through LangChain's full
``ainvoke`` (callbacks, run managers, message conversion):

- ``ChatOpenAI.ainvoke`` straight to the fake model: the baseline of the ratio;
- ``ChatTierRoute.ainvoke`` whose tier is a LiteLLM model group on the same fake model, decided by a keyword
  rule (rules layer on, semantic layer off): the row the target is about (< 1.15);
- ``ChatTierRoute.ainvoke`` whose tier is that same ``ChatOpenAI`` object (tierroute's cascade and adapter
  wrapped around the baseline call);
- for reference, the same request without LangChain: ``litellm.acompletion`` and ``TierRouter.acomplete``.

The client CPU column (``time.process_time`` per block of calls, median over blocks) is what each path costs
this process, which matters on a busy machine where wall times inflate with the load.

Runs are interleaved in blocks (``--round`` calls per path, path order rotated each round) to cancel drift on a
busy machine, after ``--warmup`` untimed calls per path. The ratio grows as ``--latency`` shrinks.

Run from the repo root::

    .venv/bin/python benchmarks/overhead_langchain.py             # Markdown table
    .venv/bin/python benchmarks/overhead_langchain.py --n 300 --latency 0.05
    .venv/bin/python benchmarks/overhead_langchain.py --json

This is a measurement script, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPLY = "hello from the fake provider"
FAKE_MODEL = "budget-model"
TARGET_RATIO = 1.15
PROMPT = "Please summarize this note: the team meeting moved to Tuesday at ten, bring the quarterly numbers."
BASELINE = "`ChatOpenAI.ainvoke` (direct)"
TARGET = "`ChatTierRoute.ainvoke`, LiteLLM tier, rules layer"


@dataclass
class BenchPath:
    name: str
    call: Callable[[], Awaitable[Any]]
    samples_ns: list[int] = field(default_factory=list)
    cpu_per_call_s: list[float] = field(default_factory=list)  # client-process CPU, one value per block


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo))


def config(base_url: str) -> dict[str, Any]:
    """One tier on the fake model, one keyword rule; no semantic layer."""
    return {
        "model_list": [
            {
                "model_name": "budget",
                "litellm_params": {
                    "model": f"openai/{FAKE_MODEL}",
                    "api_base": base_url,
                    "api_key": "sk-fake",
                    "input_cost_per_token": 1e-7,
                    "output_cost_per_token": 4e-7,
                },
            }
        ],
        "tiers": ["budget"],
        "routing": {"rules": [{"name": "summarize", "tier": "budget", "keywords": ["summarize", "tl;dr"]}]},
    }


def text_of(out: Any) -> str:
    if hasattr(out, "choices"):
        return str(out.choices[0].message.content)
    return str(getattr(out, "text", ""))


async def measure(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    import litellm
    from langchain_openai import ChatOpenAI
    from tierroute import RouterConfig, TierRouter

    from langchain_tierroute import ChatTierRoute

    cfg = config(base_url)
    chat_openai = ChatOpenAI(model=FAKE_MODEL, base_url=base_url, api_key="sk-fake", max_retries=0)
    routed = ChatTierRoute(config=cfg)
    routed_object = ChatTierRoute(
        config={**cfg, "model_list": []},
        tiers={"budget": chat_openai},
        tier_prices={"budget": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}},
    )
    core = TierRouter(RouterConfig.from_dict(cfg))
    direct_kw = cfg["model_list"][0]["litellm_params"]
    messages = [{"role": "user", "content": PROMPT}]
    paths = [
        BenchPath(BASELINE, lambda: chat_openai.ainvoke(PROMPT)),
        BenchPath(TARGET, lambda: routed.ainvoke(PROMPT)),
        BenchPath("`ChatTierRoute.ainvoke`, the `ChatOpenAI` object as tier", lambda: routed_object.ainvoke(PROMPT)),
        BenchPath("`litellm.acompletion` (no LangChain)", lambda: litellm.acompletion(messages=messages, **direct_kw)),
        BenchPath("`TierRouter.acomplete` (no LangChain)", lambda: core.acomplete(messages)),
    ]
    layers: dict[str, str] = {}
    for p in paths:  # sanity: every path gets the fake reply; routed ones were decided by the rule
        out = await p.call()
        if text_of(out) != REPLY:
            raise SystemExit(f"{p.name}: unexpected reply {text_of(out)!r}")
        meta = getattr(out, "response_metadata", None) or {}
        if "tierroute" in meta:
            layers[p.name] = meta["tierroute"]["layer"]
        elif hasattr(out, "decision"):
            layers[p.name] = out.decision.layer
    for p in paths:
        for _ in range(args.warmup):
            await p.call()
    clock = time.perf_counter_ns
    rounds = -(-args.n // args.round)
    for r in range(rounds):
        todo = min(args.round, args.n - r * args.round)
        shift = r % len(paths)
        for p in paths[shift:] + paths[:shift]:
            c0 = time.process_time()
            for _ in range(todo):
                t0 = clock()
                await p.call()
                p.samples_ns.append(clock() - t0)
            p.cpu_per_call_s.append((time.process_time() - c0) / todo)
    rows: list[dict[str, Any]] = []
    for p in paths:
        xs = sorted(p.samples_ns)
        rows.append(
            {
                "path": p.name,
                "calls": len(xs),
                "p50_ms": percentile(xs, 50) / 1e6,
                "p90_ms": percentile(xs, 90) / 1e6,
                "mean_ms": statistics.fmean(xs) / 1e6,
                "cpu_ms": statistics.median(p.cpu_per_call_s) * 1000,
                "decided_by": layers.get(p.name),
            }
        )
    base = rows[0]["p50_ms"]
    for row in rows:
        row["ratio_p50"] = row["p50_ms"] / base
        row["delta_p50_ms"] = row["p50_ms"] - base
    await core.aclose()
    return {"rows": rows, "target_ratio": TARGET_RATIO}


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@contextlib.contextmanager
def fake_provider(latency_s: float, mode: str) -> Iterator[str]:
    """The fake model's base URL, served in a subprocess (default) or a thread of this process."""
    if mode == "thread":
        from tierroute.testing import FakeProvider, ModelScript

        with FakeProvider({FAKE_MODEL: ModelScript(reply=REPLY, latency_s=latency_s)}) as fp:
            yield fp.base_url
        return
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.json"
        script.write_text(json.dumps({"models": {FAKE_MODEL: {"reply": REPLY, "latency_s": latency_s}}}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tierroute.testing", "--script", str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            if not base_url.startswith("http"):
                raise SystemExit("the fake provider did not start")
            yield base_url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    with fake_provider(args.latency, args.provider) as base_url:
        res = asyncio.run(measure(args, base_url))
    res.update(
        {
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            },
            "versions": {d: _version(d) for d in ("litellm", "langchain-core", "langchain-openai", "openai")},
            "latency_s": args.latency,
            "provider": args.provider,
            "n": args.n,
            "round": args.round,
            "warmup": args.warmup,
        }
    )
    target = next(r for r in res["rows"] if r["path"] == TARGET)
    res["target_met"] = target["ratio_p50"] < TARGET_RATIO
    return res


def render(res: dict[str, Any]) -> str:
    m, v = res["machine"], res["versions"]
    load = f"; load average {m['load_avg_1m']:.1f}" if m["load_avg_1m"] is not None else ""
    lines = [
        f"Machine: Python {m['python']}, {m['platform']}, {m['cpu_count']} CPUs{load}",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"FakeProvider ({res['provider']}) latency {res['latency_s'] * 1000:g} ms per call, no faults; "
        f"{res['n']} calls per path, "
        f"sequential, interleaved in rounds of {res['round']} (order rotated), {res['warmup']} warm-up calls per path",
        "",
        "| path | calls | p50 ms | p90 ms | mean ms | client CPU ms/call | p50 ratio to `ChatOpenAI.ainvoke` |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['path']} | {r['calls']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['mean_ms']:.2f} "
            f"| {r['cpu_ms']:.2f} | {r['ratio_p50']:.3f} |"
        )
    lines.append("")
    for r in res["rows"][1:]:
        by = f" (decided by {r['decided_by']})" if r["decided_by"] else ""
        lines.append(f"- {r['path']}: p50 {r['delta_p50_ms']:+.2f} ms vs `ChatOpenAI.ainvoke`{by}")
    target = next(r for r in res["rows"] if r["path"] == TARGET)
    verdict = "met" if res["target_met"] else f"missed by {(target['ratio_p50'] - TARGET_RATIO) * 100:.1f} points"
    lines += [
        "",
        f"target: ChatTierRoute.ainvoke / ChatOpenAI.ainvoke p50 ratio < {TARGET_RATIO:.2f}",
        f"measured: {target['ratio_p50']:.3f} at {res['latency_s'] * 1000:g} ms provider latency: {verdict}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed calls per path (default 300)")
    parser.add_argument("--latency", type=float, default=0.02, help="fake provider latency in seconds (default 0.02)")
    parser.add_argument("--round", type=int, default=25, help="calls per path per interleaved round (default 25)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm-up calls per path (default 20)")
    parser.add_argument(
        "--provider", choices=("process", "thread"), default="process", help="where the fake provider runs"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.n < 1 or args.round < 1 or args.latency < 0 or args.warmup < 0:
        parser.error("--n and --round must be >= 1, --latency and --warmup >= 0")
    res = run(args)
    print(json.dumps(res, indent=2) if args.json else render(res))


if __name__ == "__main__":
    main()
