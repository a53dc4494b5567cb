"""Overhead of ``TierRouter.acomplete`` over a direct ``litellm.acompletion`` to the same (fake) model.

A :class:`tierroute.testing.FakeProvider` answers every call after a fixed latency (``--latency``, default
20 ms: a fast provider); no faults are injected. Paths, each called one request at a time:

- ``litellm.acompletion`` straight to the fake model with the tier's ``litellm_params`` (prices included):
  the baseline of the ratio; and once more without the price kwargs (LiteLLM then runs its zero-cost
  diagnostic over the whole price map on every call, which is slower);
- a bare ``litellm.Router`` with the same ``model_list`` (separates LiteLLM Router's cost from tierroute's);
- ``TierRouter.acomplete`` with a keyword rule that decides (rules layer on, semantic layer off);
- ``TierRouter.acomplete`` with the example config's semantic layer, warm query cache (same prompt, the rule
  does not match, so the embedding lookup decides), and with a cold cache (query LRU cleared before each call:
  one embedding per request). Skip both with ``--no-semantic``.

Runs are interleaved in blocks (``--round`` calls per path, path order rotated each round) to cancel drift,
after ``--warmup`` untimed calls per path. The ratio grows as ``--latency`` shrinks; it is reported with it.

Run from the repo root::

    .venv/bin/python benchmarks/overhead.py             # Markdown table
    .venv/bin/python benchmarks/overhead.py --n 200 --latency 0.05
    .venv/bin/python benchmarks/overhead.py --json

This is a measurement script, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "tierroute.yaml"
REPLY = "hello from the fake provider"
FAKE_MODEL = "budget-model"
TARGET_RATIO = 1.10
DIRECT = "`litellm.acompletion` (direct)"

RULE_PROMPT = "Please summarize this note: the team meeting moved to Tuesday at ten, bring the quarterly numbers."
SEMANTIC_PROMPT = "what is the capital city of Australia"


@dataclass
class BenchPath:
    name: str
    call: Callable[[], Awaitable[Any]]
    before: Callable[[], None] | None = None  # untimed, before each call
    samples_ns: list[int] = field(default_factory=list)
    cpu_ns: int = 0  # process CPU time spent in the timed blocks (this process also runs the fake server)


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo))


def tier_params(base_url: str) -> dict[str, Any]:
    return {
        "model": f"openai/{FAKE_MODEL}",
        "api_base": base_url,
        "api_key": "sk-fake",
        "input_cost_per_token": 1e-7,
        "output_cost_per_token": 4e-7,
    }


def rules_config(base_url: str) -> dict[str, Any]:
    """One tier, one keyword rule; no semantic layer."""
    return {
        "model_list": [{"model_name": "budget", "litellm_params": tier_params(base_url)}],
        "tiers": ["budget"],
        "routing": {"rules": [{"name": "summarize", "tier": "budget", "keywords": ["summarize", "tl;dr"]}]},
    }


def semantic_config(base_url: str) -> dict[str, Any]:
    """The example config's semantic section over three tiers that all point at the fake model."""
    import yaml

    example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    tiers = list(example["tiers"])
    return {
        "model_list": [{"model_name": t, "litellm_params": tier_params(base_url)} for t in tiers],
        "tiers": tiers,
        "default_tier": example.get("default_tier"),
        "routing": {
            "rules": [{"name": "summarize", "tier": "budget", "keywords": ["summarize", "tl;dr"]}],
            "semantic": example["routing"]["semantic"],
        },
    }


async def measure(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    import litellm
    import tierroute
    from litellm.router import Router

    messages_rule = [{"role": "user", "content": RULE_PROMPT}]
    messages_sem = [{"role": "user", "content": SEMANTIC_PROMPT}]

    # Same litellm_params everywhere, prices included: without a price LiteLLM scans its whole cost map on
    # every call (zero-cost diagnostic, ~2-3 ms here), which would flatter every path that does have one.
    direct_kw = tier_params(base_url)
    unpriced_kw = {k: v for k, v in direct_kw.items() if not k.endswith("_cost_per_token")}
    bare = Router(model_list=[{"model_name": "budget", "litellm_params": tier_params(base_url)}])
    tr_rules = tierroute.TierRouter(tierroute.RouterConfig.from_dict(rules_config(base_url)))

    paths = [
        BenchPath(DIRECT, lambda: litellm.acompletion(messages=messages_rule, **direct_kw)),
        BenchPath(
            "`litellm.acompletion` (direct, no price kwargs)",
            lambda: litellm.acompletion(messages=messages_rule, **unpriced_kw),
        ),
        BenchPath(
            "bare `litellm.Router.acompletion`", lambda: bare.acompletion(model="budget", messages=messages_rule)
        ),
        BenchPath("`TierRouter.acomplete`, rules layer (semantic off)", lambda: tr_rules.acomplete(messages_rule)),
    ]
    tr_sem = None
    if not args.no_semantic:
        tr_sem = tierroute.TierRouter(tierroute.RouterConfig.from_dict(semantic_config(base_url)))
        semantic: Any = tr_sem.chain.semantic  # SemanticPolicy
        assert semantic is not None
        encoder = semantic.encoder  # load the model now, not inside a timed call
        paths.append(
            BenchPath("`TierRouter.acomplete`, semantic layer, warm cache", lambda: tr_sem.acomplete(messages_sem))
        )
        paths.append(
            BenchPath(
                "`TierRouter.acomplete`, semantic layer, cold cache",
                lambda: tr_sem.acomplete(messages_sem),
                before=encoder.clear_queries,
            )
        )

    # Sanity: every path gets the fake reply, and the tierroute paths are decided by the intended layer.
    layers: dict[str, str] = {}
    for p in paths:
        out = await p.call()
        text = out.text if hasattr(out, "text") else out.choices[0].message.content
        if text != REPLY:
            raise SystemExit(f"{p.name}: unexpected reply {text!r}")
        if hasattr(out, "decision"):
            layers[p.name] = out.decision.layer

    for p in paths:  # warm-up (untimed)
        for _ in range(args.warmup):
            if p.before:
                p.before()
            await p.call()

    clock = time.perf_counter_ns
    rounds = -(-args.n // args.round)
    for r in range(rounds):
        todo = min(args.round, args.n - r * args.round)
        shift = r % len(paths)
        for p in paths[shift:] + paths[:shift]:
            c0 = time.process_time_ns()
            for _ in range(todo):
                if p.before:
                    p.before()
                t0 = clock()
                await p.call()
                p.samples_ns.append(clock() - t0)
            p.cpu_ns += time.process_time_ns() - c0

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
                "decided_by": layers.get(p.name),
                "cpu_ms_per_call": p.cpu_ns / len(xs) / 1e6,
            }
        )
    base = rows[0]["p50_ms"]
    for row in rows:
        row["ratio_p50"] = row["p50_ms"] / base
        row["delta_p50_ms"] = row["p50_ms"] - base
        row["delta_cpu_ms"] = row["cpu_ms_per_call"] - rows[0]["cpu_ms_per_call"]
    if tr_sem is not None:
        await tr_sem.aclose()
    await tr_rules.aclose()
    return {"rows": rows, "target_ratio": TARGET_RATIO}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import litellm

    logging.getLogger("LiteLLM").setLevel(logging.ERROR)  # custom-pricing notices on Router start
    load_at_start = os.getloadavg()[0]

    from tierroute.testing import FakeProvider, ModelScript

    with FakeProvider({FAKE_MODEL: ModelScript(reply=REPLY, latency_s=args.latency)}) as fp:
        res = asyncio.run(measure(args, fp.base_url))
    res.update(
        {
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "load_avg_1m_at_start": load_at_start,
            },
            "litellm": getattr(litellm, "__version__", None) or _version("litellm"),
            "latency_s": args.latency,
            "n": args.n,
            "round": args.round,
            "warmup": args.warmup,
        }
    )
    tr = next(r for r in res["rows"] if r["path"].startswith("`TierRouter.acomplete`, rules"))
    res["target_met"] = tr["ratio_p50"] < TARGET_RATIO
    return res


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: Python {m['python']}, {m['platform']}, {m['cpu_count']} CPUs (1-min load average "
        f"{m['load_avg_1m_at_start']:.2f} at start); litellm {res['litellm']}",
        f"FakeProvider latency {res['latency_s'] * 1000:g} ms per call, no faults; {res['n']} calls per path, "
        f"sequential, interleaved in rounds of {res['round']} (order rotated), {res['warmup']} warm-up calls per path",
        "",
        "| path | calls | p50 ms | p90 ms | mean ms | ratio of p50 to direct litellm.acompletion |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['path']} | {r['calls']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['mean_ms']:.2f} "
            f"| {r['ratio_p50']:.3f} |"
        )
    lines.append("")
    lines.append(
        "Difference to direct `litellm.acompletion` (CPU = this process's CPU time per call, fake server included; "
        "less sensitive to other load on the machine than wall time):"
    )
    for r in res["rows"]:
        by = f", decided by {r['decided_by']}" if r["decided_by"] else ""
        lines.append(
            f"- {r['path']}: p50 {r['delta_p50_ms']:+.2f} ms; CPU {r['cpu_ms_per_call']:.2f} ms/call "
            f"({r['delta_cpu_ms']:+.2f}){by}"
        )
    tr = next(r for r in res["rows"] if r["path"].startswith("`TierRouter.acomplete`, rules"))
    verdict = "met" if res["target_met"] else f"missed by {(tr['ratio_p50'] - TARGET_RATIO) * 100:.1f} points"
    lines += [
        "",
        f"target: TierRouter.acomplete / litellm.acompletion p50 ratio < {TARGET_RATIO:.2f}",
        f"measured: {tr['ratio_p50']:.3f} (rules layer, semantic off) at {res['latency_s'] * 1000:g} ms "
        f"provider latency: {verdict}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="timed calls per path (default 500)")
    parser.add_argument("--latency", type=float, default=0.02, help="fake provider latency in seconds (default 0.02)")
    parser.add_argument("--round", type=int, default=50, help="calls per path per interleaved round (default 50)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm-up calls per path (default 20)")
    parser.add_argument("--no-semantic", action="store_true", help="skip the semantic-layer rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.n < 1 or args.round < 1 or args.latency < 0:
        parser.error("--n and --round must be >= 1 and --latency >= 0")
    res = run(args)
    print(json.dumps(res, indent=2) if args.json else render(res))


if __name__ == "__main__":
    main()
