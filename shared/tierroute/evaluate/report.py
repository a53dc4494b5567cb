"""``tierroute eval`` in code: replay routers, compute the metrics, draw the curves.

For the strong/weak pair: APGR, CPT(50%), CPT(80%) (exact, and as RouteLLM's script computes them). With costs,
for N models: each router's operating points (the classifier and the oracle swept over a cost weight), the
quality-cost Pareto front, the cost to match the best single model, and the quality at a cost cap (default:
half the best single model's cost).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierroute.bench.matrix import QualityRow, complete_models, estimate_costs
from tierroute.errors import ConfigError
from tierroute.evaluate.metrics import CostPoint, cost_to_match, pair_metrics, pareto_front, quality_at_cost
from tierroute.evaluate.replay import (
    Replay,
    replay_classifier_cv,
    replay_classifier_split,
    replay_config,
    replay_oracle,
    replay_random,
    replay_single,
)
from tierroute.evaluate.training import TrainOptions
from tierroute.policies.classifier import Embedder, pick

__all__ = ["EvalResult", "LAMBDAS", "plot_eval", "run_eval"]

Array = NDArray[np.float64]
#: Cost weights swept for N-model operating points (utility = success - weight * cost / max cost).
LAMBDAS = np.r_[0.0, np.geomspace(1e-3, 30.0, 80)]


@dataclass
class EvalResult:
    """Everything ``tierroute eval`` reports (``to_dict`` is the ``--json`` output)."""

    rows: int
    models: list[str]
    mean_scores: dict[str, float]
    mean_costs: dict[str, float] | None
    pair: tuple[str, str]
    routers: dict[str, dict[str, Any]]
    n_models: dict[str, Any] | None
    seed: int
    elapsed_s: float
    curves: dict[str, list[CostPoint]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rows": self.rows,
            "models": self.models,
            "mean_scores": self.mean_scores,
            "mean_costs": self.mean_costs,
            "pair": {"strong": self.pair[0], "weak": self.pair[1]},
            "routers": self.routers,
            "n_models": self.n_models,
            "seed": self.seed,
            "elapsed_s": round(self.elapsed_s, 2),
        }

    def to_text(self) -> str:
        """Plain-text report."""
        strong, weak = self.pair
        lines = [
            f"{self.rows} prompts, models (cheapest first): {', '.join(self.models)}",
            "mean score: " + ", ".join(f"{m} {v:.3f}" for m, v in self.mean_scores.items()),
            f"strong/weak pair: {strong} / {weak}",
            "",
        ]
        w = max(len("router"), *(len(n) for n in self.routers)) + 2
        lines.append(f"{'router':<{w}}{'APGR':>7}{'CPT50':>8}{'CPT80':>8}{'quality':>9}{'cost/1k':>10}  mix")
        for name, r in self.routers.items():
            pm = r.get("pair") or {}
            apgr = f"{pm['apgr']:.3f}" if pm else "-"
            c50 = f"{100 * pm['cpt50']:.1f}%" if pm else "-"
            c80 = f"{100 * pm['cpt80']:.1f}%" if pm else "-"
            cost = f"{1000 * r['cost']:.4f}" if r.get("cost") is not None else "-"
            mix = ", ".join(f"{m} {100 * s:.0f}%" for m, s in r["mix"].items() if s > 0)
            lines.append(f"{name:<{w}}{apgr:>7}{c50:>8}{c80:>8}{r['quality']:>9.4f}{cost:>10}  {mix}")
        if self.n_models:
            nm = self.n_models
            b = nm["best_single"]
            lines += ["", f"best single model: {b['label']} quality {b['quality']:.4f} at ${1000 * b['cost']:.4f}/1k"]
            m = nm.get("cost_to_match")
            lines.append(
                f"classifier matches it at ${1000 * m['cost']:.4f}/1k ({100 * m['cost'] / b['cost']:.1f}% of its cost)"
                if m
                else "classifier never matches it"
            )
            q = nm.get("quality_at_cap")
            cap = nm["cost_cap"]
            lines.append(
                f"quality at cost cap ${1000 * cap:.4f}/1k: {q['quality']:.4f} ({q['label']})"
                if q
                else f"no operating point within the cost cap ${1000 * cap:.4f}/1k"
            )
        return "\n".join(lines)


def _pair(y: Array, models: list[str], costs: Array | None, pair: tuple[str, str] | None) -> tuple[str, str]:
    if pair is not None:
        bad = [m for m in pair if m not in models]
        if bad or pair[0] == pair[1]:
            raise ConfigError(f"--strong/--weak {list(pair)} must be two different models of {models}")
        return pair
    means = y.mean(axis=0)
    strong = models[int(np.argmax(means))]
    weak_idx = int(np.argmin(costs.mean(axis=0))) if costs is not None else int(np.argmin(means))
    weak = models[weak_idx] if models[weak_idx] != strong else models[int(np.argsort(means)[-2])]
    return strong, weak


def _point(rep: Replay, y: Array, c: Array | None, choice: NDArray[np.int64], label: str) -> CostPoint:
    idx = np.arange(len(y))
    mix = {m: float(np.mean(choice == j)) for j, m in enumerate(rep.models)}
    cost = float(c[idx, choice].mean()) if c is not None else float("nan")
    return CostPoint(cost, float(y[idx, choice].mean()), label, mix)


def _sweep(rep: Replay, y: Array, c: Array, believed: Array) -> list[CostPoint]:
    pts = []
    for lam in LAMBDAS:
        choice = pick(rep.probs, "cost_weight", float(lam), believed.tolist())
        pts.append(_point(rep, y, c, choice, f"{rep.name} cost_weight={lam:.4g}"))
    return pts


def run_eval(
    test: Sequence[QualityRow],
    *,
    train: Sequence[QualityRow] | None = None,
    routers: Sequence[str] = ("classifier", "random", "oracle", "single"),
    folds: int = 5,
    opts: TrainOptions | None = None,
    target: dict[str, float] | None = None,
    pair: tuple[str, str] | None = None,
    cost_cap: float | None = None,
    prices: dict[str, tuple[float, float]] | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[EvalResult, dict[str, Replay]]:
    """Replay routers on ``test`` and compute every metric.

    Args:
        test: The matrix to evaluate on.
        train: Matrices to train the classifier on; without them, k-fold cross-validation on ``test``.
        routers: ``classifier``, ``random``, ``oracle``, ``single`` (every model) or ``config:PATH``.
        folds: Folds for cross-validation.
        opts: Training options (its ``seed`` seeds everything).
        target: The classifier's decision target for its ``choice``.
        pair: ``(strong, weak)``; default the best-scoring model and the cheapest (or weakest) one.
        cost_cap: USD per request for "quality at a cost cap" (default half the best single model's cost).
        prices: Model -> (USD per input token, per output token) for rows without costs.
        embedder: Embedder for the classifier.
        progress: Called with progress lines.

    Raises:
        ConfigError: Fewer than two models scored in every row, or bad router names.
    """
    t0 = time.perf_counter()
    opts = opts or TrainOptions()
    models = complete_models(test)
    if len(models) < 2:
        raise ConfigError("the test matrix needs at least two models scored in every row", hint="check its scores")
    try:
        costs: Array | None = np.asarray(estimate_costs(test, models, prices or opts.prices), dtype=np.float64)
    except ConfigError:
        costs = None
    y = np.asarray([[r.scores[m] for m in models] for r in test], dtype=np.float64)
    order = np.argsort(costs.mean(axis=0), kind="stable") if costs is not None else np.argsort(y.mean(0), kind="stable")
    models = [models[i] for i in order]
    y = y[:, order]
    costs = costs[:, order] if costs is not None else None
    the_pair = _pair(y, models, costs, pair)
    s_idx, w_idx = models.index(the_pair[0]), models.index(the_pair[1])
    replays: dict[str, Replay] = {}
    for name in routers:
        if name == "classifier":
            if train:
                replays[name] = replay_classifier_split(
                    train, test, models, the_pair, opts=opts, target=target, embedder=embedder, progress=progress
                )
            else:
                replays[name] = replay_classifier_cv(
                    test, models, the_pair, folds=folds, opts=opts, target=target, embedder=embedder, progress=progress
                )
        elif name == "random":
            replays[name] = replay_random(test, models, the_pair, opts.seed)
        elif name == "oracle":
            replays[name] = replay_oracle(test, models, y, the_pair)
        elif name == "single":
            for m in models:
                replays[f"single:{m}"] = replay_single(test, models, m, the_pair)
        elif name.startswith("config:"):
            rep = replay_config(test, models, name.removeprefix("config:"), the_pair)
            replays[rep.name] = rep
        else:
            raise ConfigError(f"unknown router {name!r}", hint="use classifier, random, oracle, single or config:PATH")
    results: dict[str, dict[str, Any]] = {}
    curves: dict[str, list[CostPoint]] = {}
    for name, rep in replays.items():
        point = _point(rep, y, costs, rep.choice, name)
        entry: dict[str, Any] = {
            "quality": point.quality,
            "cost": None if costs is None else point.cost,
            "mix": point.mix,
        }
        if not name.startswith("single:"):
            entry["pair"] = pair_metrics(rep.route_score, y[:, s_idx], y[:, w_idx]).to_dict()
        if rep.info:
            entry["info"] = rep.info
        results[name] = entry
        if costs is not None and name in ("classifier", "oracle"):
            believed = np.asarray(rep.costs) if (name == "classifier" and rep.costs) else costs.mean(axis=0)
            curves[name] = _sweep(rep, y, costs, believed)
    n_models = None
    if costs is not None:
        singles = (
            [_point(replays[f"single:{m}"], y, costs, replays[f"single:{m}"].choice, m) for m in models]
            if (all(f"single:{m}" in replays for m in models))
            else [CostPoint(float(costs[:, j].mean()), float(y[:, j].mean()), m) for j, m in enumerate(models)]
        )
        best = max(singles, key=lambda p: (p.quality, -p.cost))
        cap = cost_cap if cost_cap is not None else best.cost / 2
        pts = curves.get("classifier", [])
        match = cost_to_match(pts, best.quality) if pts else None
        at_cap = quality_at_cost(pts, cap) if pts else None
        n_models = {
            "best_single": best.to_dict(),
            "singles": [p.to_dict() for p in singles],
            "cost_cap": cap,
            "cost_to_match": match.to_dict() if match else None,
            "quality_at_cap": at_cap.to_dict() if at_cap else None,
            "target_met": bool(at_cap is not None and at_cap.quality >= best.quality),
            "pareto": {k: [p.to_dict() for p in pareto_front(v)] for k, v in curves.items()},
        }
    result = EvalResult(
        rows=len(test),
        models=models,
        mean_scores={m: float(v) for m, v in zip(models, y.mean(axis=0))},
        mean_costs=None if costs is None else {m: float(v) for m, v in zip(models, costs.mean(axis=0))},
        pair=the_pair,
        routers=results,
        n_models=n_models,
        seed=opts.seed,
        elapsed_s=time.perf_counter() - t0,
        curves=curves,
    )
    return result, replays


def plot_eval(
    result: EvalResult, replays: dict[str, Replay], test: Sequence[QualityRow], path: str | os.PathLike[str]
) -> str:
    """Draw the quality vs strong-share curves (and, with costs, quality vs cost) to a PNG. Returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from tierroute.errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "bench", "drawing charts") from exc

    from tierroute.evaluate.metrics import pgr_curve

    y = np.asarray([[r.scores[m] for m in result.models] for r in test], dtype=np.float64)
    s_idx, w_idx = result.models.index(result.pair[0]), result.models.index(result.pair[1])
    panels = 2 if result.n_models else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 5), squeeze=False)
    ax = axes[0][0]
    ys, yw = y[:, s_idx].mean(), y[:, w_idx].mean()
    for name, rep in replays.items():
        if name.startswith("single:"):
            continue
        c, pgr = pgr_curve(rep.route_score, y[:, s_idx], y[:, w_idx])
        apgr = result.routers[name]["pair"]["apgr"]
        ax.plot(100 * c, yw + pgr * (ys - yw), label=f"{name} (APGR {apgr:.3f})")
    ax.axhline(ys, color="red", linestyle="--", label=result.pair[0])
    ax.axhline(yw, color="grey", linestyle="--", label=result.pair[1])
    ax.set_xlabel(f"calls to {result.pair[0]} (%)")
    ax.set_ylabel("mean score")
    ax.set_title(f"quality vs strong-model share ({result.rows} prompts)")
    ax.legend(fontsize=8)
    if result.n_models:
        ax = axes[0][1]
        for name, pts in result.curves.items():
            front = pareto_front(pts)
            ax.plot([1000 * p.cost for p in front], [p.quality for p in front], marker=".", label=f"{name} (Pareto)")
        for p in result.n_models["singles"]:
            ax.scatter([1000 * p["cost"]], [p["quality"]], marker="x")
            ax.annotate(p["label"], (1000 * p["cost"], p["quality"]), fontsize=7)
        ax.set_xlabel("USD per 1k requests")
        ax.set_ylabel("mean score")
        ax.set_title("quality vs cost")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
