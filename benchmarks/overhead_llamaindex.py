"""Overhead of ``TierRouteLLM.achat`` over LlamaIndex's own LiteLLM LLM calling the same (fake) model.

A :class:`tierroute.testing.FakeProvider` answers every call after a fixed latency (``--latency``, default
20 ms); no faults. Paths, each called one request at a time with the same message and the same
``litellm_params`` (prices included, so LiteLLM never scans its price map):

- ``LiteLLM.achat`` from ``llama-index-llms-litellm`` (one ``litellm.acompletion`` per call): the baseline;
- ``TierRouteLLM.achat`` over a LiteLLM tier, decided by a keyword rule (semantic layer off): the row the
  target applies to (p50 ratio < 1.15);
- ``TierRouteLLM.achat`` whose tier is that same ``LiteLLM`` object (the LlamaIndex tier-object backend);
- ``litellm.acompletion`` and ``TierRouter.acomplete`` straight, to show where the time goes.

Runs are interleaved in rounds (``--round`` calls per path, path order rotated every round) after ``--warmup``
untimed calls per path. Run from the repo root::

    .venv/bin/python benchmarks/overhead_llamaindex.py            # Markdown table
    .venv/bin/python benchmarks/overhead_llamaindex.py --n 500 --latency 0.05 --json

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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "bench-model"
REPLY = "hello from the fake provider"
PROMPT = "Please summarize this note: the team meeting moved to Tuesday at ten, bring the quarterly numbers."
TARGET = 1.15
BASELINE = "`LiteLLM.achat` (llama-index-llms-litellm)"
TARGET_ROW = "`TierRouteLLM.achat`, LiteLLM tier, rules layer"


@dataclass
class Path:
    name: str
    call: Callable[[], Awaitable[Any]]
    ns: list[int] = field(default_factory=list)


def pct(xs: Sequence[int], q: float) -> float:
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def text_of(out: Any) -> str:
    if hasattr(out, "message"):  # ChatResponse
        return str(out.message.content)
    if hasattr(out, "text"):  # tierroute Completion
        return str(out.text)
    return str(out.choices[0].message.content)  # litellm ModelResponse


async def measure(args: argparse.Namespace, base_url: str) -> list[dict[str, Any]]:
    import litellm
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.litellm import LiteLLM
    from tierroute import RouterConfig, TierRouter

    from llamaindex_tierroute import TierRouteLLM

    params = {
        "model": f"openai/{MODEL}",
        "api_base": base_url,
        "api_key": "sk-fake",
        "input_cost_per_token": 1e-7,
        "output_cost_per_token": 4e-7,
    }
    config = {
        "model_list": [{"model_name": "budget", "litellm_params": params}],
        "tiers": ["budget"],
        "routing": {"rules": [{"name": "summarize", "tier": "budget", "keywords": ["summarize"]}]},
    }
    extra = {k: v for k, v in params.items() if k not in ("model", "api_base", "api_key")}

    def li_litellm() -> LiteLLM:
        return LiteLLM(
            model=params["model"],
            api_base=base_url,
            api_key="sk-fake",
            temperature=0.1,
            max_retries=1,
            additional_kwargs=dict(extra),
        )

    baseline = li_litellm()
    routed = TierRouteLLM(config=config, temperature=0.1)
    object_tier = TierRouteLLM(
        config={**config, "model_list": []},
        tiers={"budget": li_litellm()},
        prices={"budget": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}},
        temperature=0.1,
    )
    core = TierRouter(RouterConfig.from_dict(config))
    messages = [ChatMessage(role="user", content=PROMPT)]
    dicts = [{"role": "user", "content": PROMPT}]
    paths = [
        Path(BASELINE, lambda: baseline.achat(messages)),
        Path(TARGET_ROW, lambda: routed.achat(messages)),
        Path("`TierRouteLLM.achat`, tier = the `LiteLLM` object", lambda: object_tier.achat(messages)),
        Path("`litellm.acompletion` (direct)", lambda: litellm.acompletion(messages=dicts, temperature=0.1, **params)),
        Path("`TierRouter.acomplete` (core, no adapter)", lambda: core.acomplete(dicts, temperature=0.1)),
    ]
    for p in paths:  # sanity, then warm-up (untimed)
        if text_of(await p.call()) != REPLY:
            raise SystemExit(f"{p.name}: unexpected reply")
        for _ in range(args.warmup):
            await p.call()
    clock = time.perf_counter_ns
    rounds = -(-args.n // args.round)
    for r in range(rounds):
        todo = min(args.round, args.n - r * args.round)
        shift = r % len(paths)
        for p in paths[shift:] + paths[:shift]:
            for _ in range(todo):
                t0 = clock()
                await p.call()
                p.ns.append(clock() - t0)
    base = pct(paths[0].ns, 50)
    return [
        {
            "path": p.name,
            "calls": len(p.ns),
            "p50_ms": pct(p.ns, 50) / 1e6,
            "p90_ms": pct(p.ns, 90) / 1e6,
            "mean_ms": statistics.fmean(p.ns) / 1e6,
            "ratio_p50": pct(p.ns, 50) / base,
        }
        for p in paths
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed calls per path (default 300)")
    parser.add_argument("--latency", type=float, default=0.02, help="fake provider latency in seconds (default 0.02)")
    parser.add_argument("--round", type=int, default=25, help="calls per path per interleaved round (default 25)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up calls per path (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.n < 1 or args.round < 1 or args.latency < 0:
        parser.error("--n and --round must be >= 1 and --latency >= 0")
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)

    from tierroute.testing import FakeProvider, ModelScript

    with FakeProvider({MODEL: ModelScript(reply=REPLY, latency_s=args.latency)}) as fp:
        rows = asyncio.run(measure(args, fp.base_url))
    target = next(r for r in rows if r["path"] == TARGET_ROW)
    res = {
        "rows": rows,
        "target_ratio": TARGET,
        "target_met": target["ratio_p50"] < TARGET,
        "latency_s": args.latency,
        "n": args.n,
        "round": args.round,
        "warmup": args.warmup,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "versions": {d: version(d) for d in ("litellm", "llama-index-core", "llama-index-llms-litellm")},
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return
    v = res["versions"]
    print(
        f"Python {res['python']}, {res['cpu_count']} CPUs; litellm {v['litellm']}, llama-index-core "
        f"{v['llama-index-core']}, llama-index-llms-litellm {v['llama-index-llms-litellm']}"
    )
    print(
        f"FakeProvider latency {args.latency * 1000:g} ms, no faults; {args.n} calls per path, sequential, "
        f"interleaved in rounds of {args.round} (order rotated), {args.warmup} warm-up calls per path\n"
    )
    print("| path | calls | p50 ms | p90 ms | mean ms | p50 ratio to `LiteLLM.achat` |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['path']} | {r['calls']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['mean_ms']:.2f} "
            f"| {r['ratio_p50']:.3f} |"
        )
    verdict = "met" if res["target_met"] else "missed"
    print(f"\ntarget: TierRouteLLM.achat / LiteLLM.achat p50 ratio < {TARGET}: {target['ratio_p50']:.3f} ({verdict})")


if __name__ == "__main__":
    main()
