"""The per task type x model table: mean score, bootstrap lower bound, cost per 1k requests, p50 latency.

The lower bound is the 5th percentile of 2,000 bootstrap resamples of the mean (the lower end of a 90%
percentile interval), seeded, so the same matrix always gives the same table. With 20-30 samples per task a
mean alone over-promises; the routing map uses this bound.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tierroute.bench.matrix import QualityRow

__all__ = ["Cell", "bootstrap_lcb", "heatmap_png", "task_table", "to_markdown"]


@dataclass(frozen=True)
class Cell:
    """One task type x model entry.

    Attributes:
        task: Task type.
        model: Model.
        n: Samples scored.
        mean: Mean score.
        lcb: Bootstrap lower confidence bound of the mean (90% interval's lower end).
        cost_per_1k: USD per 1,000 requests (mean cost x 1000); None without costs.
        p50_latency_s: Median latency; None without latencies.
    """

    task: str
    model: str
    n: int
    mean: float
    lcb: float
    cost_per_1k: float | None
    p50_latency_s: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return dict(self.__dict__)


def bootstrap_lcb(values: Sequence[float], *, level: float = 0.90, n_boot: int = 2000, seed: int = 0) -> float:
    """Lower end of the bootstrap percentile interval of the mean at ``level`` (5th percentile for 90%)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(np.quantile(means, (1.0 - level) / 2.0))


def task_table(rows: Sequence[QualityRow], models: Sequence[str], *, seed: int = 0) -> list[Cell]:
    """Cells for every task type (sorted) and model (in the given order) with at least one score."""
    tasks = sorted({r.task_type or "(none)" for r in rows})
    cells = []
    for t_i, task in enumerate(tasks):
        part = [r for r in rows if (r.task_type or "(none)") == task]
        for m_i, m in enumerate(models):
            scores = [r.scores[m] for r in part if m in r.scores]
            if not scores:
                continue
            costs = [r.costs[m] for r in part if m in r.costs]
            lat = [r.latency_s[m] for r in part if m in r.latency_s]
            cells.append(
                Cell(
                    task=task,
                    model=m,
                    n=len(scores),
                    mean=float(np.mean(scores)),
                    lcb=bootstrap_lcb(scores, seed=seed + 1000 * t_i + m_i),
                    cost_per_1k=1000.0 * float(np.mean(costs)) if costs else None,
                    p50_latency_s=float(np.median(lat)) if lat else None,
                )
            )
    return cells


def to_markdown(cells: Sequence[Cell], *, routing: dict[str, str] | None = None) -> str:
    """The table as Markdown; ``routing`` (task -> model) marks each task's chosen model with a star."""
    lines = [
        "| task type | model | n | mean | LCB (90%) | $ / 1k requests | p50 latency (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        star = " *" if routing and routing.get(c.task) == c.model else ""
        cost = "-" if c.cost_per_1k is None else f"{c.cost_per_1k:.4f}"
        lat = "-" if c.p50_latency_s is None else f"{c.p50_latency_s:.3f}"
        lines.append(f"| {c.task} | {c.model}{star} | {c.n} | {c.mean:.3f} | {c.lcb:.3f} | {cost} | {lat} |")
    if routing:
        lines.append("\n`*` = the model the routing map sends this task type to.")
    return "\n".join(lines) + "\n"


def heatmap_png(cells: Sequence[Cell], models: Sequence[str], path: str | os.PathLike[str]) -> str:
    """A task x model heatmap of mean scores, each cell annotated with mean and lower bound. Returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from tierroute.errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "bench", "drawing charts") from exc

    tasks = sorted({c.task for c in cells})
    grid = np.full((len(tasks), len(models)), np.nan)
    lcb = np.full_like(grid, np.nan)
    for c in cells:
        if c.model in models:
            grid[tasks.index(c.task), list(models).index(c.model)] = c.mean
            lcb[tasks.index(c.task), list(models).index(c.model)] = c.lcb
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(models), 1.2 + 0.5 * len(tasks)))
    im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(models)), labels=list(models), rotation=20, ha="right")
    ax.set_yticks(range(len(tasks)), labels=tasks)
    for i in range(len(tasks)):
        for j in range(len(models)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}\n({lcb[i, j]:.2f})", ha="center", va="center", fontsize=8)
    ax.set_title("mean score (bootstrap 90% lower bound)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
