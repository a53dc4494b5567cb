"""PGR / APGR / CPT and quality-cost helpers, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from tierroute.evaluate.metrics import (
    CostPoint,
    cost_to_match,
    cpt,
    pair_metrics,
    pareto_front,
    pgr_curve,
    quality_at_cost,
    routellm_metrics,
)


def test_pgr_curve_by_hand() -> None:
    # strong right on 0,1,3; weak right on 1 only. r_strong = 0.75, r_weak = 0.25, gap 0.5.
    strong = [1, 1, 0, 1]
    weak = [0, 1, 0, 0]
    # order by score: 0 (gain 1), 3 (gain 1), 1 (gain 0), 2 (gain 0)
    c, pgr = pgr_curve([0.9, 0.2, 0.1, 0.8], strong, weak)
    assert c.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert pgr.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])
    m = pair_metrics([0.9, 0.2, 0.1, 0.8], strong, weak)
    # trapezoid: 0.25 * (0.25 + 0.75 + 1 + 1) = 0.75
    assert m.apgr == pytest.approx(0.75)
    assert m.cpt50 == pytest.approx(0.25)
    assert m.cpt80 == pytest.approx(0.4)  # 0.25 + (0.8 - 0.5) / (1.0 - 0.5) * 0.25


def test_ties_are_taken_as_a_block_so_a_constant_score_is_the_random_line() -> None:
    rng = np.random.default_rng(3)
    strong = rng.random(500) < 0.8
    weak = rng.random(500) < 0.6
    c, pgr = pgr_curve(np.zeros(500), strong, weak)
    assert pgr == pytest.approx(c)
    assert pair_metrics(np.zeros(500), strong, weak).apgr == pytest.approx(0.5)


def test_oracle_beats_random_and_reversed_is_worst() -> None:
    rng = np.random.default_rng(0)
    strong = (rng.random(2000) < 0.8).astype(float)
    weak = (rng.random(2000) < 0.65).astype(float)
    gain = strong - weak
    oracle = pair_metrics(gain, strong, weak)
    rand = pair_metrics(rng.random(2000), strong, weak)
    worst = pair_metrics(-gain, strong, weak)
    assert oracle.apgr > 1.0 > rand.apgr > worst.apgr
    assert abs(rand.apgr - 0.5) < 0.05
    assert oracle.cpt50 < rand.cpt50 < worst.cpt50


def test_routellm_style_matches_exact_curve_closely_on_smooth_data() -> None:
    rng = np.random.default_rng(1)
    strong = (rng.random(5000) < 0.8).astype(float)
    weak = (rng.random(5000) < 0.6).astype(float)
    score = (strong - weak) + rng.normal(0, 1.0, 5000)
    exact = pair_metrics(score, strong, weak)
    apgr10, c50, c80 = routellm_metrics(score, strong, weak)
    assert apgr10 == pytest.approx(exact.apgr, abs=0.03)
    assert c50 == pytest.approx(exact.cpt50, abs=0.05)
    assert c80 == pytest.approx(exact.cpt80, abs=0.05)


def test_cpt_never_reached_is_one_and_equal_means_is_an_error() -> None:
    c = np.array([0.0, 0.5, 1.0])
    assert cpt(c, np.array([0.0, 0.2, 0.4]), 0.5) == 1.0
    with pytest.raises(ValueError, match="same mean score"):
        pgr_curve([1, 2], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="same non-zero length"):
        pgr_curve([1, 2, 3], [1, 0], [0, 1])


def test_pareto_cost_to_match_and_quality_at_cap() -> None:
    pts = [
        CostPoint(1.0, 0.50, "a"),
        CostPoint(2.0, 0.45, "dominated"),
        CostPoint(3.0, 0.70, "b"),
        CostPoint(5.0, 0.72, "c"),
    ]
    assert [p.label for p in pareto_front(pts)] == ["a", "b", "c"]
    match = cost_to_match(pts, 0.7)
    assert match is not None and match.label == "b"
    assert cost_to_match(pts, 0.9) is None
    cap = quality_at_cost(pts, 2.5)
    assert cap is not None and cap.label == "a"
    assert quality_at_cost(pts, 0.5) is None
