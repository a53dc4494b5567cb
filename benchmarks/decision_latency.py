"""Decision latency per layer: rules, semantic (cold and warm query cache), the whole chain, async semantic.

Builds ``TierRouter.from_yaml("examples/tierroute.yaml")`` and times each layer separately over a deterministic
mix of prompts (short 5-30 words, medium ~100-200 tokens, long ~1,000-3,000 tokens; some hit a rule, most do not).
The embedding model is loaded and warmed up before anything is timed. Also reports the wall time of
``python -c "import tierroute"`` minus an empty interpreter start.

Run from the repo root::

    .venv/bin/python benchmarks/decision_latency.py            # Markdown table
    .venv/bin/python benchmarks/decision_latency.py --n 200    # fewer prompts
    .venv/bin/python benchmarks/decision_latency.py --json     # machine output

This is a measurement script, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = "examples/tierroute.yaml"
SHORT_TOKENS = 200  # "prompts under 200 tokens" for the semantic target

# Neutral filler vocabulary: none of these words trips a rule of the example config.
_WORDS_TEXT = (
    "the a an and or but if then when while because although after before during about over under "
    "between through across around near far above below inside outside people person team group city "
    "country river mountain garden kitchen school office market village island forest ocean window door "
    "table chair letter story music picture travel weather morning evening summer winter spring autumn "
    "history science language culture family friend teacher student doctor farmer artist writer driver "
    "coffee bread apple orange water paper money market price plan idea question answer reason result "
    "problem choice change moment minute hour week month year day night light color sound voice house "
    "road bridge train plane ship car bicycle street corner park library museum theater hospital bank "
    "quick slow bright dark warm cold quiet loud early late simple careful happy busy gentle strong "
    "small large old new young long short heavy light green blue red yellow brown white black "
    "walk talk read write think learn teach build carry bring send keep find choose visit watch listen "
    "open close start finish move stay grow cook clean share help follow remember describe imagine "
    "really often always never sometimes usually almost nearly quite rather very also still again soon"
)
WORDS = _WORDS_TEXT.split()

# Phrases that make a rule of the example config fire (keyword or regex rules).
RULE_HITS = (
    "summarize",
    "tl;dr",
    "bullet points",
    "debug",
    "refactor",
    "unit tests",
    "stack trace",
    "function",
    "code",
)

OPENERS = (
    "Please help with this:",
    "I have a question.",
    "Quick one:",
    "Can you look at the following?",
    "Here is some context.",
    "",
)


@dataclass
class Prompt:
    kind: str  # short | medium | long
    messages: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    hits_rule: bool
    tokens: int = 0


@dataclass
class Row:
    layer: str
    unit: str  # "µs" or "ms"
    samples_ns: list[int] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        xs = sorted(self.samples_ns)
        return {"p50": percentile(xs, 50), "p99": percentile(xs, 99), "mean": statistics.fmean(xs)}


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    if not sorted_xs:
        return float("nan")
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo))


# ---- prompts ----------------------------------------------------------------------------------------


class _TokenBudget:
    """Builds filler text to a target token count using per-word token costs (cached)."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._cost: dict[str, int] = {}

    def cost(self, word: str) -> int:
        c = self._cost.get(word)
        if c is None:
            c = self._cost[word] = self._count(" " + word)
        return c

    def text(self, rng: random.Random, target_tokens: int) -> str:
        out: list[str] = []
        used = 0
        sentence = 0
        while used < target_tokens:
            w = rng.choice(WORDS)
            sentence += 1
            if sentence >= rng.randint(8, 18):
                w += "."
                sentence = 0
            out.append(w)
            used += self.cost(w.rstrip(".")) + (1 if w.endswith(".") else 0)
        return " ".join(out)


def make_prompts(n: int, seed: int, count: Callable[[str], int]) -> list[Prompt]:
    """``n`` prompts: 50 % short (5-30 words), 35 % medium (100-200 tokens), 15 % long (1,000-3,000 tokens)."""
    rng = random.Random(seed)
    budget = _TokenBudget(count)
    n_short, n_medium = round(n * 0.50), round(n * 0.35)
    kinds = ["short"] * n_short + ["medium"] * n_medium + ["long"] * (n - n_short - n_medium)
    rng.shuffle(kinds)
    prompts: list[Prompt] = []
    for kind in kinds:
        if kind == "short":
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
        elif kind == "medium":
            body = budget.text(rng, rng.randint(100, 200))
        else:
            body = budget.text(rng, rng.randint(1000, 3000))
        roll = rng.random()
        metadata: dict[str, Any] | None = None
        hits = False
        if roll < 0.25:  # a keyword / regex rule fires
            words = body.split(" ")
            words.insert(rng.randint(0, len(words)), rng.choice(RULE_HITS))
            body = " ".join(words)
            hits = True
        elif roll < 0.30:  # a task-type rule fires
            metadata = {"task_type": rng.choice(["summarization", "translation", "planning", "research"])}
            hits = True
        opener = rng.choice(OPENERS)
        content = f"{opener} {body}".strip() if kind == "short" else f"{opener}\n\n{body}".strip()
        messages: list[dict[str, Any]] = []
        if rng.random() < 0.2:
            messages.append({"role": "system", "content": "You are a helpful assistant."})
        if rng.random() < 0.15:
            messages.append({"role": "user", "content": "hi"})
            messages.append({"role": "assistant", "content": "Hello! How can I help?"})
        messages.append({"role": "user", "content": content})
        prompts.append(Prompt(kind, messages, metadata, hits))
    return prompts


# ---- timing -----------------------------------------------------------------------------------------


def time_each(items: Sequence[Any], fn: Callable[[Any], Any], before: Callable[[], None] | None = None) -> list[int]:
    """Per-item wall time of ``fn(item)`` in ns; ``before`` runs untimed before each call."""
    gc.collect()  # start each timed section with a clean heap (GC stays enabled: its pauses are real)
    out: list[int] = []
    clock = time.perf_counter_ns
    for item in items:
        if before is not None:
            before()
        t0 = clock()
        fn(item)
        out.append(clock() - t0)
    return out


async def atime_each(items: Sequence[Any], fn: Callable[[Any], Any]) -> list[int]:
    """Per-item wall time of ``await fn(item)`` in ns."""
    gc.collect()
    out: list[int] = []
    clock = time.perf_counter_ns
    for item in items:
        t0 = clock()
        await fn(item)
        out.append(clock() - t0)
    return out


def import_time(runs: int = 5) -> dict[str, float]:
    """Median wall time (ms) of ``python -c "import tierroute"`` and of ``python -c pass``, in subprocesses."""

    def median_ms(code: str) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env=os.environ.copy())
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    median_ms("import tierroute")  # fill the OS page cache first
    base = median_ms("pass")
    full = median_ms("import tierroute")
    return {"import_ms": full - base, "with_interpreter_ms": full, "baseline_ms": base, "runs": runs}


# ---- main -------------------------------------------------------------------------------------------


def fmt(ns: float, unit: str) -> str:
    if unit == "µs":
        return f"{ns / 1e3:.1f} µs"
    value = ns / 1e6
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import tierroute
    import torch
    from tierroute.tokens import count_tokens
    from tierroute.types import RouteRequest

    load_at_start = os.getloadavg()[0]
    config = Path(args.config)
    if not config.exists() and (REPO / config).exists():
        config = REPO / config
    t0 = time.perf_counter()
    router = tierroute.TierRouter.from_yaml(config)
    semantic: Any = router.chain.semantic  # SemanticPolicy
    if semantic is None:
        raise SystemExit(f"{args.config} has no semantic layer")
    encoder = semantic.encoder  # builds the model and pins the utterance vectors
    build_s = time.perf_counter() - t0

    prompts = make_prompts(args.n, args.seed, count_tokens)
    reqs = [RouteRequest.from_messages(p.messages, metadata=p.metadata) for p in prompts]
    for p, r in zip(prompts, reqs):
        p.tokens = count_tokens(r.text(router.config.routing.scope))

    # Warm-up: model, tokenizer, torch kernels for several sequence lengths, regex caches; not timed.
    warm = make_prompts(max(args.warmup, 1), args.seed + 1, count_tokens)
    for p in warm:
        wr = RouteRequest.from_messages(p.messages, metadata=p.metadata)
        router.chain.rules.decide(wr)
        encoder.clear_queries()
        semantic.decide(wr)
        router.decide(wr)
    encoder.clear_queries()

    rules = router.chain.rules
    for r in reqs:  # one untimed pass: first-touch costs of the request objects and regexes
        rules.decide(r)
    rows: list[Row] = []
    rows.append(Row("rules: `rules.decide(req)`", "µs", time_each(reqs, rules.decide)))
    rows.append(
        Row(
            "rules incl. `RouteRequest.from_messages`",
            "µs",
            time_each(prompts, lambda p: rules.decide(RouteRequest.from_messages(p.messages, metadata=p.metadata))),
        )
    )

    cold = time_each(reqs, semantic.decide, before=encoder.clear_queries)
    short_idx = [i for i, p in enumerate(prompts) if p.tokens < SHORT_TOKENS]
    long_idx = [i for i, p in enumerate(prompts) if p.tokens >= SHORT_TOKENS]
    rows.append(Row(f"semantic, cold cache, < {SHORT_TOKENS} tokens", "ms", [cold[i] for i in short_idx]))
    rows.append(Row(f"semantic, cold cache, >= {SHORT_TOKENS} tokens", "ms", [cold[i] for i in long_idx]))
    rows.append(Row("semantic, cold cache, all", "ms", cold))

    encoder.clear_queries()
    time_each(reqs, semantic.decide)  # fill the query LRU (untimed)
    hits_before = encoder.hits
    rows.append(Row("semantic, warm cache", "ms", time_each(reqs, semantic.decide)))
    warm_hits = encoder.hits - hits_before
    rows.append(Row("whole chain `router.decide(req)`, warm", "ms", time_each(reqs, router.decide)))
    rows.append(Row("async `semantic.adecide(req)`, warm", "ms", asyncio.run(atime_each(reqs, semantic.adecide))))

    decided_by = Counter(router.decide(r).layer for r in reqs)
    imp = import_time(args.import_runs)

    sizes: dict[str, dict[str, int]] = {}
    for kind in ("short", "medium", "long"):
        toks = sorted(p.tokens for p in prompts if p.kind == kind)
        if toks:
            sizes[kind] = {"count": len(toks), "min_tokens": toks[0], "median_tokens": toks[len(toks) // 2]}
            sizes[kind]["max_tokens"] = toks[-1]

    results = []
    for row in rows:
        s = row.stats()
        results.append({"layer": row.layer, "prompts": len(row.samples_ns), "unit": row.unit, **_ns_to(s)})
    by = {r.layer: r for r in rows}
    short_p50 = by[f"semantic, cold cache, < {SHORT_TOKENS} tokens"].stats()["p50"]
    targets: dict[str, dict[str, Any]] = {
        "rules_p50_us": {"target": 50.0, "measured": rows[0].stats()["p50"] / 1e3},
        "semantic_short_p50_ms": {"target": 10.0, "measured": short_p50 / 1e6},
        "semantic_warm_p50_ms": {"target": "near zero", "measured": by["semantic, warm cache"].stats()["p50"] / 1e6},
    }
    targets["rules_p50_us"]["met"] = targets["rules_p50_us"]["measured"] < 50.0
    targets["semantic_short_p50_ms"]["met"] = targets["semantic_short_p50_ms"]["measured"] < 10.0
    return {
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m_at_start": load_at_start,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "config": args.config,
        "encoder": semantic.cfg.encoder.model,
        "encoder_max_chars": semantic.cfg.encoder.max_chars,
        "router_build_s": build_s,
        "n": args.n,
        "seed": args.seed,
        "warmup": args.warmup,
        "prompt_sizes": sizes,
        "rule_hits_expected": sum(p.hits_rule for p in prompts),
        "decided_by_layer": dict(decided_by),
        "warm_cache_hits": warm_hits,
        "rows": results,
        "import": imp,
        "targets": targets,
    }


def _ns_to(s: dict[str, float]) -> dict[str, float]:
    return {"p50_ns": s["p50"], "p99_ns": s["p99"], "mean_ns": s["mean"]}


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: Python {m['python']} ({m['implementation']}), {m['platform']}, "
        f"{m['cpu_count']} CPUs (1-min load average {m['load_avg_1m_at_start']:.2f} at start), "
        f"torch {m['torch']} with {m['torch_threads']} threads",
        f"Config: {res['config']}; encoder {res['encoder']} (prompts cut to {res['encoder_max_chars']} chars); "
        f"{res['n']} prompts, seed {res['seed']}, {res['warmup']} warm-up decisions; "
        f"router + model build {res['router_build_s']:.1f} s (not measured below)",
        "Targets: rules p50 < 50 µs; semantic p50 < 10 ms for prompts under 200 tokens (cold cache); "
        "warm cache near zero",
        "",
        "| layer | prompts | p50 | p99 | mean |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        u = r["unit"]
        cells = [r["layer"], str(r["prompts"]), fmt(r["p50_ns"], u), fmt(r["p99_ns"], u), fmt(r["mean_ns"], u)]
        lines.append("| " + " | ".join(cells) + " |")
    sizes = ", ".join(
        f"{k} {v['count']} ({v['min_tokens']}-{v['max_tokens']} tokens, median {v['median_tokens']})"
        for k, v in res["prompt_sizes"].items()
    )
    decided = ", ".join(f"{k} {v}" for k, v in sorted(res["decided_by_layer"].items()))
    t = res["targets"]
    imp = res["import"]
    lines += [
        "",
        f"Prompts: {sizes}. Decided by: {decided}. Warm pass cache hits: {res['warm_cache_hits']}/{res['n']}.",
        f"Targets: rules p50 {t['rules_p50_us']['measured']:.1f} µs "
        f"({'met' if t['rules_p50_us']['met'] else 'missed'}); "
        f"semantic cold p50 < 200 tokens {t['semantic_short_p50_ms']['measured']:.2f} ms "
        f"({'met' if t['semantic_short_p50_ms']['met'] else 'missed'}); "
        f"semantic warm p50 {t['semantic_warm_p50_ms']['measured']:.3f} ms.",
        f'Import time: `python -c "import tierroute"` {imp["import_ms"]:.1f} ms over an empty interpreter '
        f"(median of {imp['runs']}: {imp['with_interpreter_ms']:.1f} ms vs `python -c pass` "
        f"{imp['baseline_ms']:.1f} ms)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of prompts (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the prompt generator")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm-up decisions (default 20)")
    parser.add_argument("--import-runs", type=int, default=5, help="subprocess runs for the import time")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"router config (default {DEFAULT_CONFIG})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    res = run(args)
    print(json.dumps(res, indent=2) if args.json else render(res))


if __name__ == "__main__":
    main()
