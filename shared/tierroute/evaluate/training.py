"""Fitting the trained router (:class:`~tierroute.policies.classifier.TrainedClassifier`) on a quality matrix.

Model families, each predicting every model's success probability from the same features:

- ``logistic``: one L2-regularised logistic regression per model (scikit-learn; fractional scores become
  sample weights on a positive and a negative copy);
- ``mlp``: one hidden ReLU layer, sigmoid outputs, soft-label cross-entropy, Adam (numpy);
- ``mf``: matrix factorisation as in RouteLLM: a prompt projection times a model embedding (a rank-``r``
  bilinear score), Adam (numpy); stored as its dense product;
- ``knn``: mean outcome of the ``k`` nearest training prompts (cosine on embeddings).

- ``blend``: a weighted mean of the best dense candidate and the best kNN candidate.

``family="auto"`` (the default) compares every candidate on prompts held out *inside the training rows*
(3-fold cross-validation by prompt below :data:`SMALL` rows, else one held-out 20% share), by APGR for two
models and by Brier score for more, then refits the winner on all training rows. The held-out predictions are
also the calibration data for ``premium_share``. Nothing of an evaluation fold is ever seen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierroute.bench.matrix import QualityRow, estimate_costs
from tierroute.errors import ConfigError, MissingDependencyError
from tierroute.evaluate.metrics import area, pgr_curve
from tierroute.policies.classifier import CHEAP, Embedder, TrainedClassifier, cheap_features, feature_matrix, top_gap

__all__ = [
    "CANDIDATES",
    "FAMILIES",
    "TrainOptions",
    "fold_ids",
    "group_keys",
    "model_order",
    "train_classifier",
]

Array = NDArray[np.float64]
Index = NDArray[np.intp]
FAMILIES = ("logistic", "mlp", "mf", "knn")
#: Below this many rows, candidates are compared by 3-fold cross-validation inside the training rows.
SMALL = 4000
#: Candidate hyperparameters per family, tried in ``auto`` selection (or for one family).
CANDIDATES: dict[str, list[dict[str, float]]] = {
    "logistic": [{"C": 0.1}, {"C": 0.3}, {"C": 1.0}],
    "mlp": [{"hidden": 64, "l2": 1e-3}, {"hidden": 64, "l2": 1e-2}],
    "mf": [{"rank": 16, "l2": 1e-3}, {"rank": 16, "l2": 1e-2}],
    "knn": [{"k": 50}, {"k": 150}],
}


@dataclass
class TrainOptions:
    """How to train.

    Attributes:
        family: ``auto`` or one of :data:`FAMILIES`.
        seed: Seed for splits and initialisation (training is deterministic for a seed).
        holdout: Share of training prompts held out to select the candidate and calibrate.
        encoder: Sentence-transformers model for the embeddings.
        max_chars: Prompt characters kept (head and tail) before embedding.
        max_seq_length: Encoder token limit.
        order: Models cheapest first; default by mean cost, else by mean score (weakest first).
        prices: Model -> (USD per input token, per output token) for rows without costs.
        default_target: Decision target saved in the artifact, used when the config gives none.
    """

    family: str = "auto"
    seed: int = 0
    holdout: float = 0.2
    encoder: str = "all-MiniLM-L6-v2"
    max_chars: int = 2000
    max_seq_length: int = 256
    order: Sequence[str] | None = None
    prices: Mapping[str, tuple[float, float]] | None = None
    default_target: dict[str, float] = field(default_factory=lambda: {"max_drop": 0.0})


def group_keys(rows: Sequence[QualityRow]) -> list[str]:
    """Group of each row: its normalised prompt text, so repeated prompts never straddle a split."""
    return [hashlib.sha256(" ".join(r.text.split()).lower().encode()).hexdigest() for r in rows]


def fold_ids(rows: Sequence[QualityRow], folds: int, seed: int) -> NDArray[np.int64]:
    """Fold number of each row for k-fold cross-validation by prompt (groups shuffled with ``seed``)."""
    if folds < 2:
        raise ConfigError(f"--folds {folds} is too small", hint="use at least 2 folds")
    keys = group_keys(rows)
    uniq = list(dict.fromkeys(keys))
    if len(uniq) < folds:
        raise ConfigError(f"{len(uniq)} distinct prompts cannot make {folds} folds", hint="use fewer folds")
    perm = np.random.default_rng(seed).permutation(len(uniq))
    of_group = {g: int(perm[i]) % folds for i, g in enumerate(uniq)}
    return np.asarray([of_group[k] for k in keys], dtype=np.int64)


def model_order(rows: Sequence[QualityRow], models: Sequence[str], opts: TrainOptions) -> list[str]:
    """Models cheapest first: ``opts.order``, else by mean cost, else by mean score (weakest first)."""
    if opts.order:
        missing = [m for m in opts.order if m not in models]
        if missing or len(opts.order) != len(models):
            raise ConfigError(f"--order {list(opts.order)} must list exactly the models {list(models)}")
        return list(opts.order)
    try:
        costs = np.asarray(estimate_costs(rows, models, opts.prices)).mean(axis=0)
        return [m for _, m in sorted(zip(costs, models), key=lambda t: t[0])]
    except ConfigError:
        scores = [np.mean([r.scores[m] for r in rows]) for m in models]
        return [m for _, m in sorted(zip(scores, models), key=lambda t: t[0])]


# ---- features ---------------------------------------------------------------------------------------------


def _spec(rows: Sequence[QualityRow], embedder: Embedder, opts: TrainOptions) -> dict[str, Any]:
    cheap = np.asarray([cheap_features(r.text) for r in rows], dtype=np.float64).reshape(len(rows), len(CHEAP))
    std = cheap.std(axis=0)
    return {
        "encoder": embedder.name,
        "model": opts.encoder,
        "max_chars": opts.max_chars,
        "max_seq_length": opts.max_seq_length,
        "task_types": sorted({r.task_type for r in rows if r.task_type is not None}),
        "mean": cheap.mean(axis=0).tolist(),
        "std": np.where(std > 1e-9, std, 1.0).tolist(),
    }


# ---- families ---------------------------------------------------------------------------------------------


def _fit_logistic(x: Array, y: Array, p: Mapping[str, float], seed: int) -> dict[str, Array]:
    try:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("sklearn", "bench", "training the classifier") from exc

    w = np.zeros((x.shape[1], y.shape[1]))
    b = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        t = y[:, j]
        if np.all((t == 0) | (t == 1)):
            xs, ys, sw = x, t, None
        else:  # fractional scores: a positive copy weighted t and a negative copy weighted 1 - t
            xs, ys, sw = np.vstack([x, x]), np.r_[np.ones(len(t)), np.zeros(len(t))], np.r_[t, 1 - t]
        if t.min() == t.max():
            b[j] = float(np.log(np.clip(t.mean(), 1e-4, 1 - 1e-4) / np.clip(1 - t.mean(), 1e-4, 1)))
            continue
        clf = LogisticRegression(C=float(p["C"]), max_iter=3000, random_state=seed)
        clf.fit(xs, ys, sample_weight=sw)
        w[:, j], b[j] = clf.coef_[0], clf.intercept_[0]
    return {"W0": w, "b0": b}


def _fit_adam(x: Array, y: Array, p: Mapping[str, float], seed: int, kind: str) -> dict[str, Array]:
    """Soft-label BCE with Adam: ``mlp`` (ReLU hidden layer) or ``mf`` (linear rank-r factorisation)."""
    rng = np.random.default_rng(seed)
    d, m = x.shape[1], y.shape[1]
    h = int(p.get("hidden", p.get("rank", 16)))
    prior = np.log(np.clip(y.mean(0), 1e-3, 1 - 1e-3) / np.clip(1 - y.mean(0), 1e-3, 1))
    params = {
        "W0": rng.normal(0, 1 / np.sqrt(d), (d, h)),
        "b0": np.zeros(h),
        "W1": rng.normal(0, 1 / np.sqrt(h), (h, m)),
        "b1": prior.astype(np.float64),
    }
    mom = {k: np.zeros_like(v) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    l2, lr, step, batch = float(p["l2"]), 3e-3, 0, 256
    epochs = int(min(60, max(15, 200_000 // max(1, len(x)))))
    relu = kind == "mlp"
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            xb, yb = x[idx], y[idx]
            pre = xb @ params["W0"] + params["b0"]
            hid = np.maximum(pre, 0) if relu else pre
            out = 1 / (1 + np.exp(-np.clip(hid @ params["W1"] + params["b1"], -40, 40)))
            g_out = (out - yb) / len(idx)
            grads = {"W1": hid.T @ g_out + l2 * params["W1"], "b1": g_out.sum(0)}
            g_hid = g_out @ params["W1"].T
            if relu:
                g_hid = g_hid * (pre > 0)
            grads["W0"] = xb.T @ g_hid + l2 * params["W0"]
            grads["b0"] = g_hid.sum(0)
            step += 1
            for k, g in grads.items():
                mom[k] = 0.9 * mom[k] + 0.1 * g
                vel[k] = 0.999 * vel[k] + 0.001 * g * g
                params[k] -= lr * (mom[k] / (1 - 0.9**step)) / (np.sqrt(vel[k] / (1 - 0.999**step)) + 1e-8)
    if relu:
        return params
    return {"W0": params["W0"] @ params["W1"], "b0": params["b0"] @ params["W1"] + params["b1"]}


def _fit(family: str, p: Mapping[str, float], emb: Array, x: Array, y: Array, seed: int) -> dict[str, Array]:
    if family == "logistic":
        return _fit_logistic(x, y, p, seed)
    if family in ("mlp", "mf"):
        return _fit_adam(x, y, p, seed, family)
    if family == "knn":
        return {"X": emb.astype(np.float32), "Y": y.astype(np.float32)}
    raise ConfigError(f"unknown model family {family!r}", hint=f"use auto or one of {', '.join(FAMILIES)}")


def _make(
    family: str,
    p: Mapping[str, float],
    arrays: dict[str, Array],
    spec: dict[str, Any],
    models: list[str],
    emb: Embedder,
) -> TrainedClassifier:
    kind = "knn" if family == "knn" else "dense"
    extra = {"k": int(p["k"])} if family == "knn" else {}
    return TrainedClassifier(models, kind, arrays, {**spec, **extra}, embedder=emb)


def _selection_score(p: Array, y: Array) -> float:
    if y.shape[1] == 2 and abs(y[:, 1].mean() - y[:, 0].mean()) > 1e-9:
        c, pgr = pgr_curve(top_gap(p), y[:, 1], y[:, 0])
        return area(pgr, c)
    return -float(np.mean((p - y) ** 2))


def _inner_splits(rows: Sequence[QualityRow], opts: TrainOptions) -> list[tuple[Index, Index]]:
    """Selection splits inside the training rows: 3-fold by prompt when small, else one held-out share."""
    if len(rows) < SMALL:
        fold = fold_ids(rows, 3, opts.seed + 1)
        return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(3)]
    keys = group_keys(rows)
    uniq = list(dict.fromkeys(keys))
    n_hold = max(1, round(opts.holdout * len(uniq)))
    held = {uniq[i] for i in np.random.default_rng(opts.seed + 1).permutation(len(uniq))[:n_hold]}
    hold = np.asarray([k in held for k in keys])
    return [(np.flatnonzero(~hold), np.flatnonzero(hold))]


def _blends(
    tried: list[dict[str, Any]], oof: Mapping[tuple[str, int], Array], y: Array, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Blend the best dense candidate with the best kNN candidate (weights 0.3 / 0.5 / 0.7) on the same splits."""
    dense = [t for t in tried if t["family"] != "knn"]
    knn = [t for t in tried if t["family"] == "knn"]
    if not dense or not knn:
        return []
    d, k = max(dense, key=lambda t: t["score"]), max(knn, key=lambda t: t["score"])
    d_key = (str(d["family"]), CANDIDATES[str(d["family"])].index(d["params"]))
    k_key = ("knn", CANDIDATES["knn"].index(k["params"]))
    out = []
    for w in (0.3, 0.5, 0.7):
        score = _selection_score(w * oof[d_key] + (1 - w) * oof[k_key], y)
        params = {"dense": d_key[0], "dense_i": d_key[1], "knn_i": k_key[1], "w": w}
        out.append({"family": "blend", "params": params, "score": round(score, 5), "fit_s": 0.0})
        say(f"  blend {d_key[0]}+knn w={w}: {score:.4f}")
    return out


def train_classifier(
    rows: Sequence[QualityRow],
    models: Sequence[str],
    opts: TrainOptions | None = None,
    *,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainedClassifier:
    """Fit a classifier predicting each model's success on ``rows``.

    Args:
        rows: Training rows; each must score every model.
        models: The models to predict (the artifact stores them cheapest first).
        opts: Training options.
        embedder: Embedder to use (default: a cached local one for ``opts.encoder``).
        progress: Called with a line of text as training advances.

    Raises:
        ConfigError: Too few rows, a model missing from a row, or an unknown family.
    """
    opts = opts or TrainOptions()
    say = progress or (lambda _msg: None)
    if len(rows) < 20:
        raise ConfigError(f"{len(rows)} rows are too few to train on", hint="give at least 20 prompts (ideally 500+)")
    for r in rows:
        missing = [m for m in models if m not in r.scores]
        if missing:
            raise ConfigError(f"row {r.id!r} has no score for {missing}", hint="train only on models scored everywhere")
    families = list(FAMILIES) if opts.family == "auto" else [opts.family]
    if any(f not in FAMILIES for f in families):
        raise ConfigError(f"unknown model family {opts.family!r}", hint=f"use auto or one of {', '.join(FAMILIES)}")
    ordered = model_order(rows, models, opts)
    emb_model = embedder or Embedder(opts.encoder, max_chars=opts.max_chars, max_seq_length=opts.max_seq_length)
    t0 = time.perf_counter()
    spec = _spec(rows, emb_model, opts)
    y = np.asarray([[r.scores[m] for m in ordered] for r in rows], dtype=np.float64)
    emb = emb_model.embed([r.text for r in rows]).astype(np.float64)
    spec["embedding_dim"] = int(emb.shape[1])
    x = feature_matrix(spec, emb, [r.text for r in rows], [r.task_type for r in rows])
    say(f"features: {x.shape[0]} prompts x {x.shape[1]} ({time.perf_counter() - t0:.1f}s)")
    splits = _inner_splits(rows, opts)
    sel = np.concatenate([h for _, h in splits])
    tried: list[dict[str, Any]] = []
    oof: dict[tuple[str, int], Array] = {}
    for family in families:
        for i, params in enumerate(CANDIDATES[family]):
            t1 = time.perf_counter()
            p_sel = np.zeros((len(rows), len(ordered)))
            for fit_idx, hold_idx in splits:
                arrays = _fit(family, params, emb[fit_idx], x[fit_idx], y[fit_idx], opts.seed)
                clf = _make(family, params, arrays, spec, ordered, emb_model)
                p_sel[hold_idx] = clf.predict_features(emb[hold_idx], x[hold_idx])
            oof[(family, i)] = p_sel[sel]
            score = _selection_score(p_sel[sel], y[sel])
            tried.append(
                {
                    "family": family,
                    "params": dict(params),
                    "score": round(score, 5),
                    "fit_s": round(time.perf_counter() - t1, 2),
                }
            )
            say(f"  {family} {dict(params)}: {score:.4f}")
    tried.extend(_blends(tried, oof, y[sel], say))
    best = max(tried, key=lambda t: t["score"])
    family, params = str(best["family"]), dict(best["params"])
    if family == "blend":
        d_fam, d_par = str(params["dense"]), CANDIDATES[str(params["dense"])][int(params["dense_i"])]
        k_par = CANDIDATES["knn"][int(params["knn_i"])]
        arrays = {**_fit(d_fam, d_par, emb, x, y, opts.seed), **_fit("knn", k_par, emb, x, y, opts.seed)}
        final = TrainedClassifier(
            ordered, "blend", arrays, {**spec, "k": int(k_par["k"]), "blend": float(params["w"])}, embedder=emb_model
        )
        p_cal = (
            float(params["w"]) * oof[(d_fam, int(params["dense_i"]))]
            + (1 - float(params["w"])) * oof[("knn", int(params["knn_i"]))]
        )
    else:
        final = _make(family, params, _fit(family, params, emb, x, y, opts.seed), spec, ordered, emb_model)
        p_cal = oof[(family, CANDIDATES[family].index(params))]
    score = float(best["score"])
    final.calibration = np.sort(top_gap(p_cal))
    try:
        final.costs = np.asarray(estimate_costs(rows, ordered, opts.prices)).mean(axis=0).tolist()
    except ConfigError:
        final.costs = None
    final.info = {
        "family": family,
        "params": dict(params),
        "selection": "APGR" if len(ordered) == 2 else "Brier",
        "selection_score": score,
        "selection_rows": len(sel),
        "inner_splits": len(splits),
        "tried": tried,
        "rows": len(rows),
        "mean_scores": dict(zip(ordered, y.mean(axis=0).round(5).tolist())),
        "seed": opts.seed,
        "train_s": round(time.perf_counter() - t0, 2),
        "default_target": dict(opts.default_target),
    }
    return final
