"""Routing quality of tierroute's trained router on real recorded model outcomes, beside RouteLLM's published numbers.

    .venv/bin/python benchmarks/routing_quality.py [--data-dir DIR] [--only mmlu,gsm8k,llmrouter]
        [--folds 5] [--seed 0] [--family auto] [--compare-families] [--json OUT.json]

- MMLU and GSM8K (RouteLLM's GPT-4-1106-preview / Mixtral-8x7B correctness, contaminated prompts dropped):
  5-fold cross-validation by prompt; APGR, CPT(50%), CPT(80%) exactly as defined in the RouteLLM paper (and as
  RouteLLM's own script computes them, 10 quantile thresholds), next to the published bests (paper_tables.csv).
- LLMRouter (9 open models, costs from models.json prices x estimated tokens): 5-fold CV; quality at half the
  best single model's cost, and the cost at which the router matches it.

Hyperparameters and the model family are chosen inside each training fold (held-out prompts of the training
folds); the test fold is never seen. Embeddings are cached on disk (TIERROUTE_CACHE_DIR or ~/.cache/tierroute),
so a second run skips encoding. Prints wall-clock times for embedding and for train + evaluate.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tierroute.evaluate.data import default_data_dir
from tierroute.evaluate.importers import load_llmrouter, load_routellm_gsm8k, load_routellm_mmlu
from tierroute.evaluate.report import run_eval
from tierroute.evaluate.training import FAMILIES, TrainOptions
from tierroute.policies.classifier import Embedder

TARGETS = {
    "mmlu": {"apgr": (">=", 0.68), "cpt50": ("<=", 0.27)},
    "gsm8k": {"apgr": (">=", 0.66)},
}
PAPER = {"mmlu": "MMLU (5-shot)", "gsm8k": "GSM8K (8-shot)"}


def paper_bests(data_dir: Path, benchmark: str) -> dict[str, tuple[float, str]]:
    """Best published APGR (max) and CPT(50%/80%) (min) among the trained routers of a benchmark's table."""
    path = data_dir / "routellm" / "paper_tables.csv"
    rows = [
        r for r in csv.DictReader(path.open()) if r["benchmark"] == benchmark and not r["method"].startswith("Random")
    ]
    pick = {
        "apgr": max(rows, key=lambda r: float(r["apgr"])),
        "cpt50": min(rows, key=lambda r: float(r["cpt50_pct"])),
        "cpt80": min(rows, key=lambda r: float(r["cpt80_pct"])),
    }
    value = {"apgr": lambda r: float(r["apgr"]), "cpt50": lambda r: float(r["cpt50_pct"]) / 100,
             "cpt80": lambda r: float(r["cpt80_pct"]) / 100}  # fmt: skip
    return {k: (value[k](r), f"{r['method']}, {r['training_data']}") for k, r in pick.items()}


def embed_all(rows: list[Any], embedder: Embedder) -> float:
    t0 = time.perf_counter()
    embedder.embed([r.text for r in rows])
    return time.perf_counter() - t0


def pair_run(name: str, rows: list[Any], args: argparse.Namespace, embedder: Embedder) -> dict[str, Any]:
    t_embed = embed_all(rows, embedder)
    t0 = time.perf_counter()
    result, _ = run_eval(
        rows,
        routers=("classifier", "random", "oracle", "single"),
        folds=args.folds,
        opts=TrainOptions(family=args.family, seed=args.seed),
        embedder=embedder,
        progress=(lambda m: print(f"  [{name}] {m}", file=sys.stderr)) if args.verbose else None,
    )
    out = {
        "rows": len(rows),
        "embed_s": t_embed,
        "train_eval_s": time.perf_counter() - t0,
        "classifier": result.routers["classifier"]["pair"],
        "random": result.routers["random"]["pair"],
        "oracle": result.routers["oracle"]["pair"],
        "families_chosen": [
            f["family"] + (f"({f['params'].get('dense')})" if f["family"] == "blend" else "")
            for f in result.routers["classifier"]["info"]["folds"]
        ],
        "mean_scores": result.mean_scores,
    }
    if args.compare_families:
        out["by_family"] = {}
        for fam in FAMILIES:
            r, _ = run_eval(rows, routers=("classifier",), folds=args.folds,
                            opts=TrainOptions(family=fam, seed=args.seed), embedder=embedder)  # fmt: skip
            out["by_family"][fam] = r.routers["classifier"]["pair"]
    return out


def llmrouter_run(rows: list[Any], args: argparse.Namespace, embedder: Embedder) -> dict[str, Any]:
    t_embed = embed_all(rows, embedder)
    t0 = time.perf_counter()
    result, _ = run_eval(
        rows,
        routers=("classifier", "random", "oracle", "single"),
        folds=args.folds,
        opts=TrainOptions(family=args.family, seed=args.seed),
        embedder=embedder,
        progress=(lambda m: print(f"  [llmrouter] {m}", file=sys.stderr)) if args.verbose else None,
    )
    assert result.n_models is not None
    return {
        "rows": len(rows),
        "embed_s": t_embed,
        "train_eval_s": time.perf_counter() - t0,
        **result.n_models,
        "families_chosen": [f["family"] for f in result.routers["classifier"]["info"]["folds"]],
        "random": {k: result.routers["random"][k] for k in ("quality", "cost")},
        "oracle_best": max(result.curves["oracle"], key=lambda p: p.quality).to_dict(),
    }


def fmt_pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_pair_table(results: dict[str, Any], data_dir: Path) -> None:
    print("\nRouteLLM benchmarks: GPT-4-1106-preview (strong) vs Mixtral-8x7B (weak), 5-fold CV by prompt\n")
    head = (
        f"{'benchmark':<8} {'metric':<9} {'tierroute':>10} {'(RouteLLM script)':>18} {'RouteLLM best':>14}  "
        f"{'published router':<36} {'random':>7} {'target':>8}"
    )
    print(head)
    print("-" * len(head))
    for key in ("mmlu", "gsm8k"):
        if key not in results:
            continue
        r = results[key]
        bests = paper_bests(data_dir, PAPER[key])
        for metric, legacy in (("apgr", "apgr_routellm"), ("cpt50", "cpt50_routellm"), ("cpt80", "cpt80_routellm")):
            ours, script, rnd = r["classifier"][metric], r["classifier"][legacy], r["random"][metric]
            best, method = bests[metric]
            show = (lambda v: f"{v:.3f}") if metric == "apgr" else fmt_pct
            target = TARGETS.get(key, {}).get(metric)
            tgt = f"{target[0]}{show(target[1])}" if target else ""
            ok = ""
            if target:
                ok = " ok" if (ours >= target[1] if target[0] == ">=" else ours <= target[1]) else " MISSED"
            print(f"{key:<8} {metric:<9} {show(ours):>10} {show(script):>18} {show(best):>14}  {method:<36} "
                  f"{show(rnd):>7} {tgt:>8}{ok}")  # fmt: skip
        print(f"{'':<8} families chosen per fold: {', '.join(r['families_chosen'])}; oracle APGR "
              f"{r['oracle']['apgr']:.3f}; {r['rows']} prompts; embed {r['embed_s']:.1f}s, "
              f"train+eval {r['train_eval_s']:.1f}s")  # fmt: skip
        if "by_family" in r:
            fams = ", ".join(f"{k} {v['apgr']:.3f}/{fmt_pct(v['cpt50'])}" for k, v in r["by_family"].items())
            print(f"{'':<8} single family (APGR/CPT50): {fams}")


def print_llmrouter(r: dict[str, Any]) -> None:
    best, cap = r["best_single"], r["cost_cap"]
    print("\nLLMRouter (9 open models; costs = models.json prices x estimated tokens), 5-fold CV by prompt\n")
    print(f"best single model        {best['label']}: quality {best['quality']:.4f} at ${1000 * best['cost']:.4f} / 1k")
    q = r["quality_at_cap"]
    verdict = "ok" if r["target_met"] else "MISSED"
    share = 100 * q["cost"] / best["cost"]
    print(
        f"router at <= half cost   quality {q['quality']:.4f} at ${1000 * q['cost']:.4f} / 1k "
        f"({share:.0f}% of its cost)  target: quality >= best single: {verdict}"
    )
    m = r["cost_to_match"]
    if m:
        print(f"router matching it       quality {m['quality']:.4f} at ${1000 * m['cost']:.4f} / 1k "
              f"({100 * m['cost'] / best['cost']:.0f}% of its cost)")  # fmt: skip
    print(f"oracle (upper bound)     quality {r['oracle_best']['quality']:.4f}; random model: "
          f"{r['random']['quality']:.4f} at ${1000 * r['random']['cost']:.4f} / 1k")  # fmt: skip
    print(
        f"{r['rows']} prompts; families chosen per fold: {', '.join(r['families_chosen'])}; "
        f"embed {r['embed_s']:.1f}s, train+eval {r['train_eval_s']:.1f}s; cap ${1000 * cap:.4f} / 1k"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--only", default="mmlu,gsm8k,llmrouter")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", default="auto", choices=["auto", *FAMILIES])
    ap.add_argument("--compare-families", action="store_true", help="also run CV for each family alone (slow)")
    ap.add_argument("--json", default=None, help="write all numbers here")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    only = set(args.only.split(","))
    embedder = Embedder(lru_size=100_000)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    if "mmlu" in only:
        results["mmlu"] = pair_run("mmlu", load_routellm_mmlu(data_dir), args, embedder)
    if "gsm8k" in only:
        results["gsm8k"] = pair_run("gsm8k", load_routellm_gsm8k(data_dir), args, embedder)
    if "llmrouter" in only:
        results["llmrouter"] = llmrouter_run(load_llmrouter(data_dir), args, embedder)
    print_pair_table(results, data_dir)
    if "llmrouter" in results:
        print_llmrouter(results["llmrouter"])
    total = time.perf_counter() - t0
    print(f"\ntotal wall time {total:.0f}s on {os.cpu_count()} cores (embedding cache: {embedder.cache_path})")
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "total_s": total}, indent=1, default=str))


if __name__ == "__main__":
    main()
