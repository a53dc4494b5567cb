"""The trained router's model (prediction, decision rules, artifacts) and its policy-chain layer."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierroute.errors import ConfigError
from tierroute.policies.classifier.features import CHEAP, Embedder, feature_matrix
from tierroute.types import LayerVerdict, RouteRequest, Scope

__all__ = ["ARTIFACT_VERSION", "RULES", "ClassifierPolicy", "TrainedClassifier", "pick", "top_gap"]

Array = NDArray[np.float64]
ARTIFACT_FORMAT = "tierroute-classifier"
ARTIFACT_VERSION = 1
RULES = ("min_success", "max_drop", "premium_share", "cost_weight")


def _sigmoid(z: Array) -> Array:
    out: Array = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
    return out


def pick(p: Array, rule: str, value: float, costs: Sequence[float] | None = None) -> NDArray[np.int64]:
    """Index of the chosen model per row; columns of ``p`` are ordered cheapest first.

    Raises:
        ConfigError: An unknown rule, or ``cost_weight`` without costs.
    """
    n = p.shape[0]
    if rule == "cost_weight":
        if costs is None:
            raise ConfigError("cost_weight needs model costs", hint="train on a matrix with costs, or use max_drop")
        c = np.asarray(costs, dtype=np.float64)
        util = p - value * c / max(float(c.max()), 1e-18)
        return np.asarray(np.argmax(util, axis=1), dtype=np.int64)
    if rule == "min_success":
        bar = np.full(n, value)
    elif rule == "max_drop":
        bar = p.max(axis=1) - value
    else:
        raise ConfigError(f"unknown decision rule {rule!r}", hint=f"use one of {', '.join(RULES)}")
    ok = p >= bar[:, None] - 1e-12
    first = np.argmax(ok, axis=1)
    return np.asarray(np.where(ok.any(axis=1), first, np.argmax(p, axis=1)), dtype=np.int64)


def top_gap(p: Array) -> Array:
    """Top model's predicted success minus the best cheaper model's: the strong/weak route score."""
    gap: Array = p[:, -1] - p[:, :-1].max(axis=1) if p.shape[1] > 1 else np.zeros(p.shape[0])
    return gap


class TrainedClassifier:
    """A fitted router model: features -> per-model success probability.

    Args:
        models: Model (tier) names, cheapest first.
        family: ``dense`` (logistic, MLP, MF), ``knn``, or ``blend`` (a weighted mean of the two).
        arrays: The weights: ``W0, b0, W1, b1, ...`` (dense) and/or ``X, Y`` (knn).
        spec: Feature spec: ``encoder``, ``max_chars``, ``max_seq_length``, ``task_types``, ``mean``, ``std``,
            for knn ``k``, for blend ``blend`` (the dense part's weight).
        info: Training facts (family tried, scores, sizes); saved as they are.
        calibration: Held-out top-gap values (sorted) for ``premium_share``.
        costs: Mean cost per model on the training data, for ``cost_weight``.
        embedder: The embedder (default: built from ``spec``).
    """

    def __init__(
        self,
        models: Sequence[str],
        family: str,
        arrays: Mapping[str, Array],
        spec: Mapping[str, Any],
        *,
        info: Mapping[str, Any] | None = None,
        calibration: Sequence[float] | None = None,
        costs: Sequence[float] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.models, self.family = list(models), family
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.spec, self.info = dict(spec), dict(info or {})
        self.calibration = np.sort(np.asarray(calibration, dtype=np.float64)) if calibration is not None else None
        self.costs = list(costs) if costs is not None else None
        self.embedder = embedder or Embedder(
            str(spec.get("model", "all-MiniLM-L6-v2")),
            max_chars=int(spec.get("max_chars", 2000)),
            max_seq_length=int(spec.get("max_seq_length", 256)),
        )
        if self.embedder.name != spec["encoder"]:
            raise ConfigError(
                f"classifier artifact was trained with encoder {spec['encoder']!r}, not {self.embedder.name!r}",
                path="routing.classifier.path",
                hint="retrain with `tierroute train` for this encoder, or use the encoder it was trained with",
            )

    # ---- features and prediction ----------------------------------------------------------------------

    def features(self, texts: Sequence[str], task_types: Sequence[str | None]) -> tuple[Array, Array]:
        """``(embeddings, full feature matrix)`` for prompts."""
        emb = self.embedder.embed(texts).astype(np.float64)
        if emb.shape[1] != int(self.spec["embedding_dim"]):
            raise ConfigError(
                f"encoder gives {emb.shape[1]}-d vectors; the artifact expects {self.spec['embedding_dim']}",
                path="routing.classifier.path",
                hint="retrain the classifier with this encoder",
            )
        return emb, feature_matrix(self.spec, emb, texts, task_types)

    def predict_features(self, emb: Array, feats: Array) -> Array:
        """Success probability per model (rows x models) from precomputed features."""
        if self.family == "knn":
            return self._knn(emb)
        dense = self._dense(feats)
        if self.family == "blend":
            w = float(self.spec["blend"])
            mixed: Array = w * dense + (1.0 - w) * self._knn(emb)
            return mixed
        return dense

    def _knn(self, emb: Array) -> Array:
        x, y = self.arrays["X"], self.arrays["Y"]
        k = min(int(self.spec["k"]), x.shape[0])
        sims = emb @ x.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        probs: Array = y[idx].mean(axis=1)
        return probs

    def _dense(self, feats: Array) -> Array:
        h = feats
        n_layers = sum(1 for k in self.arrays if k.startswith("W"))
        for i in range(n_layers):
            h = h @ self.arrays[f"W{i}"] + self.arrays[f"b{i}"]
            if i < n_layers - 1:
                h = np.maximum(h, 0.0)
        return _sigmoid(h)

    def predict(self, texts: Sequence[str], task_types: Sequence[str | None] | None = None) -> Array:
        """Success probability per model for each prompt (rows x models)."""
        emb, feats = self.features(texts, list(task_types) if task_types is not None else [None] * len(texts))
        return self.predict_features(emb, feats)

    # ---- deciding -----------------------------------------------------------------------------------------

    def calibrate(self, texts: Sequence[str], task_types: Sequence[str | None] | None = None) -> None:
        """Use a sample of real traffic for ``premium_share`` calibration."""
        self.calibration = np.sort(top_gap(self.predict(texts, task_types)))

    def threshold_for_share(self, share: float) -> float:
        """The ``max_drop`` that sends ``share`` of the calibration traffic to the top model."""
        if self.calibration is None or self.calibration.size == 0:
            raise ConfigError(
                "premium_share needs calibration data and this artifact has none",
                path="routing.classifier.target",
                hint="retrain with `tierroute train`, call calibrate(prompts), or use min_success / max_drop",
            )
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"premium_share {share} is not in [0, 1]", path="routing.classifier.target")
        return float(np.quantile(self.calibration, 1.0 - share))

    def rule(self, target: Mapping[str, float]) -> tuple[str, float]:
        """The decision rule and its value for a target (``premium_share`` resolved to ``max_drop``)."""
        target = dict(target or self.info.get("default_target") or {"max_drop": 0.0})
        unknown = sorted(set(target) - set(RULES))
        if unknown or len(target) != 1:
            raise ConfigError(
                f"routing.classifier.target must hold exactly one of {', '.join(RULES)}; got {sorted(target)}",
                path="routing.classifier.target",
                hint="e.g. target: {premium_share: 0.15}",
            )
        ((name, value),) = target.items()
        if name == "premium_share":
            return "top_gap", self.threshold_for_share(float(value))
        return name, float(value)

    def choose(self, p: Array, target: Mapping[str, float]) -> NDArray[np.int64]:
        """Chosen model index per row for a target."""
        name, value = self.rule(target)
        if name == "top_gap":
            gap = top_gap(p)
            rest = pick(p[:, :-1], "max_drop", max(value, 0.0)) if p.shape[1] > 1 else np.zeros(len(p), np.int64)
            return np.asarray(np.where(gap > value, p.shape[1] - 1, rest), dtype=np.int64)
        return pick(p, name, value, self.costs)

    # ---- artifacts ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``classifier.json`` and ``weights.npz`` into the folder ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "encoder": self.spec["encoder"],
            "models": self.models,
            "family": self.family,
            "spec": self.spec,
            "costs": self.costs,
            "calibration": None if self.calibration is None else self.calibration.tolist(),
            "info": self.info,
        }
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in self.arrays.items()}
        np.savez(folder / "weights.npz", **arrays)
        (folder / "classifier.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> TrainedClassifier:
        """Read an artifact folder.

        Raises:
            ConfigError: Missing files, another format or version, or arrays that do not fit the metadata.
        """
        folder = Path(path)
        where = "routing.classifier.path"
        try:
            meta = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
            with np.load(folder / "weights.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError as exc:
            raise ConfigError(
                f"no classifier artifact at {str(folder)!r} ({Path(str(exc.filename)).name} missing)",
                path=where,
                hint="train one with `tierroute train --matrix M.jsonl --out DIR`",
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read classifier artifact {str(folder)!r}: {exc}", path=where) from None
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
            raise ConfigError(
                f"{folder}/classifier.json is format {meta.get('format')!r} version {meta.get('version')!r}; "
                f"this tierroute reads {ARTIFACT_FORMAT!r} version {ARTIFACT_VERSION}",
                path=where,
                hint="retrain it with this version's `tierroute train`",
            )
        spec, models = meta["spec"], meta["models"]
        width = 1 + len(spec["task_types"]) + len(CHEAP) + int(spec["embedding_dim"])
        family = meta.get("family")
        problems = []
        if family not in ("dense", "knn", "blend"):
            problems.append(f"unknown family {family!r}")
        if family in ("dense", "blend"):
            n_layers = sum(1 for k in arrays if k.startswith("W"))
            if n_layers == 0 or arrays["W0"].shape[0] != width or arrays[f"W{n_layers - 1}"].shape[1] != len(models):
                problems.append(f"dense weights do not map {width} features to {len(models)} models")
        if family in ("knn", "blend"):
            x, y = arrays.get("X"), arrays.get("Y")
            if x is None or y is None or x.shape[1] != int(spec["embedding_dim"]) or y.shape[1] != len(models):
                problems.append("kNN arrays do not match the embedding size and models")
        if problems:
            raise ConfigError(
                f"{folder}/weights.npz does not match classifier.json: {'; '.join(problems)}",
                path=where,
                hint="the artifact is damaged or mixed up; retrain it with `tierroute train`",
            )
        return cls(
            models,
            meta["family"],
            arrays,
            spec,
            info=meta.get("info"),
            calibration=meta.get("calibration"),
            costs=meta.get("costs"),
            embedder=embedder,
        )


class ClassifierPolicy:
    """The classifier layer of the policy chain.

    Args:
        model: The trained classifier; its models must be tiers of the config.
        tiers: The config's tiers, cheapest first.
        target: The decision target (see the module docstring).
        scope: Which part of the conversation is embedded.
    """

    layer = "classifier"

    def __init__(
        self, model: TrainedClassifier, tiers: Sequence[str], target: Mapping[str, float], scope: Scope = "last_user"
    ) -> None:
        strangers = [m for m in model.models if m not in tiers]
        if strangers:
            raise ConfigError(
                f"classifier models {strangers} are not tiers {list(tiers)}",
                path="routing.classifier.path",
                hint="retrain with --model-map MODEL=TIER so the artifact speaks in tier names",
            )
        ranks = [list(tiers).index(m) for m in model.models]
        if ranks != sorted(ranks):
            raise ConfigError(
                f"classifier orders its models {model.models} (cheapest first) unlike tiers {list(tiers)}",
                path="routing.classifier.path",
                hint="retrain with the tiers' order (tierroute train --order TIER,TIER,...)",
            )
        self.model, self.scope, self.tiers = model, scope, list(model.models)
        self.target = dict(target)
        self.rule = model.rule(self.target)  # validates the target now, not on the first request

    def decide(self, request: RouteRequest) -> LayerVerdict:
        """The chosen tier with the predicted success of every tier."""
        text = request.text(self.scope)
        if not text.strip():
            return LayerVerdict(self.layer, None, None, "no text to classify")
        task = request.metadata.get("task_type")
        p = self.model.predict([text], [str(task) if task is not None else None])
        j = int(self.model.choose(p, self.target)[0])
        probs = {t: round(float(v), 4) for t, v in zip(self.tiers, p[0])}
        name, value = self.rule
        why = f"predicted success {probs}; {name} {value:.3f}" + (f" ({self.target})" if name == "top_gap" else "")
        return LayerVerdict(self.layer, self.tiers[j], float(p[0, j]), why, probs)

    async def adecide(self, request: RouteRequest) -> LayerVerdict:
        """Async :meth:`decide` (the encoder runs in a worker thread)."""
        return await asyncio.to_thread(self.decide, request)
