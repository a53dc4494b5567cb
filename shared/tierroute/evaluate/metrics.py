"""Routing-quality metrics: the RouteLLM paper's PGR / APGR / CPT, and quality-cost curves for N models.

Definitions (RouteLLM, arXiv 2406.18665, section 3.2), for a strong/weak pair:

- ``c`` is the share of calls sent to the strong model. A router with a scalar ``route_score`` per prompt
  (higher = more in need of the strong model) reaches every ``c`` by sending the top ``c`` share of prompts to
  the strong model.
- ``PGR(c) = (r_router(c) - r_weak) / (r_strong - r_weak)``, where ``r`` is the mean score.
- ``APGR`` is the area under ``PGR(c)`` for ``c`` from 0 to 1.
- ``CPT(x%)`` is the smallest ``c`` at which ``PGR`` reaches ``x%``.

:func:`pgr_curve` evaluates the curve exactly, at every prompt (``c = k/n``); prompts with equal
``route_score`` are taken as a block in random order, i.e. the curve is straight across a tie (its expected
value). :func:`routellm_metrics` reproduces RouteLLM's own evaluation script, which samples the curve at 11
quantile thresholds and interpolates, for a like-for-like comparison with the published tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CostPoint",
    "area",
    "PairMetrics",
    "cost_to_match",
    "cpt",
    "pair_metrics",
    "pareto_front",
    "pgr_curve",
    "quality_at_cost",
    "routellm_metrics",
]

Float = NDArray[np.float64]


def area(y: ArrayLike, x: ArrayLike) -> float:
    """Trapezoid-rule area under ``y(x)`` (numpy 1.x ``trapz`` / 2.x ``trapezoid``)."""
    fn = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009
    return float(fn(y, x))


@dataclass(frozen=True)
class PairMetrics:
    """Strong/weak metrics of one router.

    Attributes:
        apgr: Area under the exact PGR curve.
        cpt50: Smallest strong-call share reaching PGR 0.5.
        cpt80: Smallest strong-call share reaching PGR 0.8.
        apgr_routellm: APGR as RouteLLM's script computes it (11 quantile thresholds).
        cpt50_routellm: CPT(50%) as RouteLLM's script computes it.
        cpt80_routellm: CPT(80%) as RouteLLM's script computes it.
    """

    apgr: float
    cpt50: float
    cpt80: float
    apgr_routellm: float
    cpt50_routellm: float
    cpt80_routellm: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _arrays(route_score: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> tuple[Float, Float, Float]:
    rs, s, w = (np.asarray(a, dtype=np.float64) for a in (route_score, strong, weak))
    if not (rs.shape == s.shape == w.shape) or rs.ndim != 1 or rs.size == 0:
        raise ValueError("route_score, strong and weak must be 1-D arrays of the same non-zero length")
    return rs, s, w


def _gap(s: Float, w: Float) -> float:
    gap = float(s.mean() - w.mean())
    if abs(gap) < 1e-12:
        raise ValueError("the strong and weak models have the same mean score; PGR is undefined")
    return gap


def pgr_curve(route_score: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> tuple[Float, Float]:
    """The exact PGR curve: ``c = k/n`` for ``k = 0..n`` and ``PGR(c)``.

    Args:
        route_score: Per-prompt router score (higher = send to the strong model first).
        strong: The strong model's score per prompt.
        weak: The weak model's score per prompt.

    Returns:
        ``(c, pgr)``, each of length ``n + 1``.
    """
    rs, s, w = _arrays(route_score, strong, weak)
    n = rs.size
    order = np.argsort(-rs, kind="stable")
    gain = (s - w)[order]
    sorted_rs = rs[order]
    # Ties: every prompt of a block of equal scores gets the block's mean gain (the expected curve).
    starts = np.flatnonzero(np.r_[True, sorted_rs[1:] != sorted_rs[:-1]])
    sums = np.add.reduceat(gain, starts)
    sizes = np.diff(np.r_[starts, n])
    gain = np.repeat(sums / sizes, sizes)
    r = w.mean() + np.r_[0.0, np.cumsum(gain)] / n
    return np.arange(n + 1) / n, (r - w.mean()) / _gap(s, w)


def cpt(c: Float, pgr: Float, level: float) -> float:
    """Smallest ``c`` at which the (piecewise-linear) curve reaches ``level``; 1.0 if it never does."""
    hit = np.flatnonzero(pgr >= level - 1e-12)
    if hit.size == 0:
        return 1.0
    k = int(hit[0])
    if k == 0:
        return float(c[0])
    c0, c1, p0, p1 = c[k - 1], c[k], pgr[k - 1], pgr[k]
    return float(c0 + (level - p0) * (c1 - c0) / (p1 - p0)) if p1 != p0 else float(c1)


def routellm_metrics(
    route_score: ArrayLike, strong: ArrayLike, weak: ArrayLike, num_results: int = 10
) -> tuple[float, float, float]:
    """APGR, CPT(50%), CPT(80%) as RouteLLM's ``evaluate.py`` computes them.

    Thresholds are the ``num_results + 1`` quantile edges of the scores; at each, prompts with a score at or
    above it (strictly above for the last) go to the strong model; the area is a trapezoid over those points and
    CPT interpolates the share at the target accuracy.
    """
    rs, s, w = _arrays(route_score, strong, weak)
    edges = np.quantile(rs, np.linspace(0.0, 1.0, num_results + 1))
    shares, accs = [], []
    for i, t in enumerate(edges):
        sel = rs > t if i == len(edges) - 1 else rs >= t
        shares.append(float(sel.mean()))
        accs.append(float(np.where(sel, s, w).mean()))
    order = np.argsort(shares, kind="stable")
    x, y = np.asarray(shares)[order], np.asarray(accs)[order]
    auc = float(area(y, x))
    weak_auc = float(area(np.full_like(x, w.mean()), x))
    strong_auc = float(area(np.full_like(x, s.mean()), x))
    apgr = (auc - weak_auc) / (strong_auc - weak_auc) if strong_auc != weak_auc else float("nan")
    cpts = [float(np.interp(p * (s.mean() - w.mean()) + w.mean(), y, x)) for p in (0.5, 0.8)]
    return apgr, cpts[0], cpts[1]


def pair_metrics(route_score: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> PairMetrics:
    """APGR and CPT(50%/80%), exact and RouteLLM-style, for one router on a strong/weak pair."""
    c, pgr = pgr_curve(route_score, strong, weak)
    apgr = float(area(pgr, c))
    r_apgr, r50, r80 = routellm_metrics(route_score, strong, weak)
    return PairMetrics(apgr, cpt(c, pgr, 0.5), cpt(c, pgr, 0.8), r_apgr, r50, r80)


@dataclass(frozen=True)
class CostPoint:
    """One operating point of a router: mean cost and mean quality per request.

    Attributes:
        cost: Mean USD per request.
        quality: Mean score per request.
        label: What produced it (router name and knob value).
        mix: Share of requests per model.
    """

    cost: float
    quality: float
    label: str = ""
    mix: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"cost": self.cost, "quality": self.quality, "label": self.label, "mix": dict(self.mix)}


def pareto_front(points: Sequence[CostPoint]) -> list[CostPoint]:
    """Points not beaten on both cost and quality by another, by increasing cost."""
    front: list[CostPoint] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.quality)):
        if not front or p.quality > front[-1].quality + 1e-12:
            front.append(p)
    return front


def cost_to_match(points: Sequence[CostPoint], quality: float) -> CostPoint | None:
    """The cheapest measured point whose quality is at least ``quality`` (None if none is)."""
    ok = [p for p in points if p.quality >= quality - 1e-12]
    return min(ok, key=lambda p: (p.cost, -p.quality)) if ok else None


def quality_at_cost(points: Sequence[CostPoint], cap: float) -> CostPoint | None:
    """The best measured point whose cost is at most ``cap`` (None if none is)."""
    ok = [p for p in points if p.cost <= cap + 1e-15]
    return max(ok, key=lambda p: (p.quality, -p.cost)) if ok else None
