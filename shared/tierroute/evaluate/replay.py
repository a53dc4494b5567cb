"""Replaying routers on a quality matrix: what each would have chosen, and what that would have scored.

Every router yields a :class:`Replay`: per prompt, a predicted success per model, a choice, and the scalar
``route_score`` the strong/weak threshold sweep uses (higher = strong). Routers:

- ``random``: uniform route scores and choices (seeded);
- ``single:MODEL``: always one model;
- ``oracle``: knows the outcomes (an upper bound);
- ``config:PATH``: the rules / semantic (/ classifier) layers of a tierroute config, tiers named as models;
- ``classifier``: the trained router, by k-fold cross-validation by prompt or trained on other matrices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierroute.bench.matrix import QualityRow
from tierroute.errors import ConfigError
from tierroute.evaluate.training import TrainOptions, fold_ids, train_classifier
from tierroute.policies.classifier import Embedder, pick

__all__ = [
    "Prediction",
    "Replay",
    "replay_classifier_cv",
    "replay_classifier_split",
    "replay_config",
    "replay_oracle",
    "replay_random",
    "replay_single",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Prediction:
    """One line of ``--predictions``: ``{"id", "scores", "choice", "route_score"}``."""

    id: str
    scores: dict[str, float]
    choice: str
    route_score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "scores": self.scores, "choice": self.choice, "route_score": self.route_score}


@dataclass
class Replay:
    """A router's replay on a matrix.

    Attributes:
        name: Router name.
        models: Column order of ``probs`` (cheapest first).
        probs: Predicted success per prompt and model.
        choice: Chosen model index per prompt.
        route_score: Strong/weak route score per prompt.
        costs: Per-model cost the router believes (for cost-aware sweeps), when known.
        info: Extra facts (training time, family chosen per fold...).
    """

    name: str
    models: list[str]
    probs: Array
    choice: NDArray[np.int64]
    route_score: Array
    costs: list[float] | None = None
    info: dict[str, Any] | None = None

    def predictions(self, rows: Sequence[QualityRow]) -> list[Prediction]:
        """One :class:`Prediction` per row."""
        return [
            Prediction(
                r.id,
                {m: round(float(v), 6) for m, v in zip(self.models, self.probs[i])},
                self.models[int(self.choice[i])],
                float(self.route_score[i]),
            )
            for i, r in enumerate(rows)
        ]


def _pair_score(probs: Array, models: list[str], pair: tuple[str, str]) -> Array:
    strong, weak = models.index(pair[0]), models.index(pair[1])
    out: Array = probs[:, strong] - probs[:, weak]
    return out


def replay_random(rows: Sequence[QualityRow], models: list[str], pair: tuple[str, str], seed: int) -> Replay:
    """Uniformly random scores and choices."""
    rng = np.random.default_rng(seed)
    probs = rng.random((len(rows), len(models)))
    choice = rng.integers(0, len(models), len(rows))
    return Replay("random", models, probs, choice.astype(np.int64), _pair_score(probs, models, pair))


def replay_single(rows: Sequence[QualityRow], models: list[str], model: str, pair: tuple[str, str]) -> Replay:
    """Always ``model``."""
    j = models.index(model)
    probs = np.zeros((len(rows), len(models)))
    probs[:, j] = 1.0
    return Replay(f"single:{model}", models, probs, np.full(len(rows), j, np.int64), _pair_score(probs, models, pair))


def replay_oracle(rows: Sequence[QualityRow], models: list[str], y: Array, pair: tuple[str, str]) -> Replay:
    """Knows every outcome: picks the cheapest model with the best score."""
    choice = pick(y, "max_drop", 0.0)
    return Replay("oracle", models, y.copy(), choice, _pair_score(y, models, pair))


def replay_config(
    rows: Sequence[QualityRow], models: list[str], path: str | os.PathLike[str], pair: tuple[str, str]
) -> Replay:
    """Decide each prompt with a tierroute config (no model is called); tiers must be matrix models.

    Raises:
        ConfigError: The config is invalid, or decides a tier that is not a model of the matrix.
    """
    from tierroute.router import TierRouter
    from tierroute.types import RouteRequest

    router = TierRouter.from_yaml(path)
    probs = np.zeros((len(rows), len(models)))
    choice = np.zeros(len(rows), np.int64)
    layers: dict[str, int] = {}
    for i, r in enumerate(rows):
        meta = {"task_type": r.task_type} if r.task_type is not None else {}
        req = RouteRequest.from_messages(r.messages or r.text, metadata=meta)
        d = router.decide(req)
        if d.tier not in models:
            raise ConfigError(
                f"config {str(path)!r} routed {r.id!r} to tier {d.tier!r}, which is not a model of the matrix {models}",
                path="tiers",
                hint="name the tiers as the matrix's models, or rename models with --model-map MODEL=TIER",
            )
        choice[i] = models.index(d.tier)
        probs[i, choice[i]] = 1.0
        layers[d.layer] = layers.get(d.layer, 0) + 1
    return Replay(
        f"config:{os.path.basename(str(path))}",
        models,
        probs,
        choice,
        _pair_score(probs, models, pair),
        info={"decided_by": layers},
    )


def replay_classifier_cv(
    rows: Sequence[QualityRow],
    models: list[str],
    pair: tuple[str, str],
    *,
    folds: int = 5,
    opts: TrainOptions | None = None,
    target: dict[str, float] | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] | None = None,
) -> Replay:
    """k-fold cross-validation by prompt: each fold predicted by a classifier trained on the other folds."""
    opts = opts or TrainOptions()
    say = progress or (lambda _m: None)
    fold = fold_ids(rows, folds, opts.seed)
    probs = np.zeros((len(rows), len(models)))
    choice = np.zeros(len(rows), np.int64)
    per_fold: list[dict[str, Any]] = []
    costs = np.zeros(len(models))
    for k in range(folds):
        tr = [rows[int(i)] for i in np.flatnonzero(fold != k)]
        te_idx = np.flatnonzero(fold == k)
        te = [rows[int(i)] for i in te_idx]
        say(f"fold {k + 1}/{folds}: train {len(tr)}, test {len(te)}")
        clf = train_classifier(tr, models, opts, embedder=embedder, progress=say)
        p = clf.predict([r.text for r in te], [r.task_type for r in te])
        cols = [clf.models.index(m) for m in models]
        probs[te_idx] = p[:, cols]
        choice[te_idx] = np.asarray([cols.index(j) for j in clf.choose(p, target or {})])
        costs += np.asarray([clf.costs[c] for c in cols]) if clf.costs else 0.0
        per_fold.append({k2: clf.info[k2] for k2 in ("family", "params", "selection_score", "train_s")})
    return Replay(
        "classifier",
        models,
        probs,
        choice,
        _pair_score(probs, models, pair),
        costs=(costs / folds).tolist() if costs.any() else None,
        info={"folds": per_fold},
    )


def replay_classifier_split(
    train: Sequence[QualityRow],
    test: Sequence[QualityRow],
    models: list[str],
    pair: tuple[str, str],
    *,
    opts: TrainOptions | None = None,
    target: dict[str, float] | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] | None = None,
) -> Replay:
    """Train on ``train`` (other matrices), predict ``test``."""
    clf = train_classifier(train, models, opts or TrainOptions(), embedder=embedder, progress=progress)
    p = clf.predict([r.text for r in test], [r.task_type for r in test])
    cols = [clf.models.index(m) for m in models]
    choice = np.asarray([cols.index(j) for j in clf.choose(p, target or {})], dtype=np.int64)
    costs = [clf.costs[c] for c in cols] if clf.costs else None
    info = {k: clf.info[k] for k in ("family", "params", "selection_score", "train_s")}
    return Replay("classifier", models, p[:, cols], choice, _pair_score(p[:, cols], models, pair), costs, info)
