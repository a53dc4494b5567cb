"""The trained router on a small matrix, with the real local MiniLM encoder: it must beat random on held-out
prompts by a wide margin, pick tiers per target, and save/load its artifact without pickle."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from tierroute import RouterConfig, TierRouter
from tierroute.bench.matrix import QualityRow
from tierroute.errors import ConfigError
from tierroute.evaluate.metrics import pair_metrics
from tierroute.evaluate.training import TrainOptions, fold_ids, train_classifier
from tierroute.policies.classifier import TrainedClassifier, pick, top_gap

TIERS = ["budget", "mid", "premium"]
# Chance that each tier's model answers a prompt of each difficulty well.
SUCCESS = {
    "easy": {"budget": 0.92, "mid": 0.95, "premium": 0.97},
    "medium": {"budget": 0.35, "mid": 0.9, "premium": 0.93},
    "hard": {"budget": 0.05, "mid": 0.3, "premium": 0.9},
}
WORDS = [
    "cat",
    "house",
    "river",
    "window",
    "garden",
    "bread",
    "mountain",
    "teacher",
    "music",
    "winter",
    "friend",
    "road",
]
COUNTRIES = [
    "France",
    "Peru",
    "Kenya",
    "Japan",
    "Norway",
    "Chile",
    "Egypt",
    "Canada",
    "India",
    "Spain",
    "Ghana",
    "Italy",
]
SYSTEMS = ["message queue", "key-value store", "payment ledger", "search index", "chat service", "file system"]
TOPICS = ["photosynthesis", "inflation", "plate tectonics", "the French revolution", "vaccines", "black holes"]


def prompt(kind: str, rng: random.Random) -> str:
    if kind == "easy":
        return rng.choice(
            [
                f"What is the capital of {rng.choice(COUNTRIES)}?",
                f"Translate the word '{rng.choice(WORDS)}' into Spanish.",
                f"Fix the spelling of '{rng.choice(WORDS)[::-1]}'.",
                f"Give a synonym for {rng.choice(WORDS)}.",
            ]
        )
    if kind == "medium":
        return rng.choice(
            [
                f"Explain {rng.choice(TOPICS)} to a high-school student in three paragraphs with an example.",
                f"Write a short persuasive essay about {rng.choice(TOPICS)} and {rng.choice(TOPICS)}.",
                f"Summarize the main causes and consequences of {rng.choice(TOPICS)} as a bulleted list.",
            ]
        )
    n, k = rng.randint(3, 9), rng.randint(2, 5)
    return rng.choice(
        [
            f"Prove that the sum of the first {n} odd numbers is {n}^2, then generalise it and prove it by induction.",
            f"Design a {rng.choice(SYSTEMS)} that tolerates {k} node failures; derive its consistency guarantees.",
            f"Solve the recurrence T(n) = {k}T(n/{k}) + n^{n} exactly and prove the bound is tight.",
            f"Derive the closed-form solution of the integral of x^{n} e^(-{k}x) from 0 to infinity, step by step.",
        ]
    )


def make_rows(n: int, seed: int) -> list[QualityRow]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = ("easy", "medium", "hard")[i % 3]
        text = f"{prompt(kind, rng)} (case {i})"
        scores = {t: float(rng.random() < SUCCESS[kind][t]) for t in TIERS}
        costs = {"budget": 0.0001, "mid": 0.001, "premium": 0.01}
        rows.append(QualityRow(id=f"{kind}-{i}", prompt=text, scores=scores, costs=costs, metadata={"kind": kind}))
    return rows


@pytest.fixture(scope="module")
def data() -> tuple[list[QualityRow], list[QualityRow]]:
    rows = make_rows(360, seed=7)
    fold = fold_ids(rows, 3, seed=0)
    return [r for r, f in zip(rows, fold) if f != 0], [r for r, f in zip(rows, fold) if f == 0]


@pytest.fixture(scope="module")
def clf(data: tuple[list[QualityRow], list[QualityRow]]) -> TrainedClassifier:
    train, _ = data
    return train_classifier(train, TIERS, TrainOptions(seed=0, default_target={"min_success": 0.8}))


def truth(rows: list[QualityRow], models: list[str]) -> np.ndarray:
    return np.asarray([[r.scores[m] for m in models] for r in rows])


def test_beats_random_on_held_out_rows_by_a_margin(
    clf: TrainedClassifier, data: tuple[list[QualityRow], list[QualityRow]]
) -> None:
    _, test = data
    assert clf.models == TIERS  # cheapest first, from the costs
    p = clf.predict([r.text for r in test])
    y = truth(test, TIERS)
    learned = pair_metrics(top_gap(p[:, [0, 2]]), y[:, 2], y[:, 0]).apgr
    rng = np.random.default_rng(0)
    random_apgr = np.mean([pair_metrics(rng.random(len(test)), y[:, 2], y[:, 0]).apgr for _ in range(20)])
    # The best any router can do from the prompt alone is to know each prompt's difficulty group (outcomes
    # within a group are coin flips): the classifier must get close to that, far above random.
    level = {"easy": 0, "medium": 1, "hard": 2}
    knows_group = pair_metrics([level[r.metadata["kind"]] for r in test], y[:, 2], y[:, 0]).apgr
    assert learned >= random_apgr + 0.1, (learned, random_apgr)
    assert learned >= knows_group - 0.03, (learned, knows_group)
    # and its per-tier probabilities are informative: Brier score well below a constant predictor's
    assert np.mean((p - y) ** 2) < 0.8 * np.mean((y.mean(0) - y) ** 2)


def test_cheapest_tier_that_clears_the_target(
    clf: TrainedClassifier, data: tuple[list[QualityRow], list[QualityRow]]
) -> None:
    _, test = data
    p = clf.predict([r.text for r in test])
    choice = clf.choose(p, {"min_success": 0.8})
    by_kind: dict[str, list[str]] = {}
    for r, j in zip(test, choice):
        by_kind.setdefault(r.metadata["kind"], []).append(TIERS[j])
    share = {k: {t: v.count(t) / len(v) for t in TIERS} for k, v in by_kind.items()}
    assert share["easy"]["budget"] > 0.7
    assert share["medium"]["mid"] > 0.6
    assert share["hard"]["premium"] > 0.7
    # quality of the routed answers is close to all-premium at a fraction of its cost
    y = truth(test, TIERS)
    routed = y[np.arange(len(test)), choice].mean()
    assert routed > y[:, 2].mean() - 0.08
    assert np.mean(choice == 2) < 0.5


def test_premium_share_is_calibrated(clf: TrainedClassifier, data: tuple[list[QualityRow], list[QualityRow]]) -> None:
    _, test = data
    texts = [r.text for r in test]
    clf.calibrate(texts)
    for share in (0.2, 0.5):
        got = np.mean(clf.choose(clf.predict(texts), {"premium_share": share}) == 2)
        assert got == pytest.approx(share, abs=0.03)


def test_pick_rules() -> None:
    p = np.array([[0.9, 0.95, 0.97], [0.3, 0.85, 0.9], [0.1, 0.2, 0.3]])
    assert pick(p, "min_success", 0.8).tolist() == [0, 1, 2]
    assert pick(p, "max_drop", 0.1).tolist() == [0, 1, 1]
    assert pick(p, "cost_weight", 0.0, [1, 10, 100]).tolist() == [2, 2, 2]
    assert pick(p, "cost_weight", 1.0, [1, 10, 100]).tolist() == [0, 1, 1]
    assert pick(p, "cost_weight", 10.0, [1, 10, 100]).tolist() == [0, 0, 0]
    with pytest.raises(ConfigError, match="unknown decision rule"):
        pick(p, "cheapest", 0.1)


def test_artifact_round_trip_without_pickle(clf: TrainedClassifier, tmp_path: Path) -> None:
    folder = clf.save(tmp_path / "router")
    assert sorted(f.name for f in folder.iterdir()) == ["classifier.json", "weights.npz"]
    with np.load(folder / "weights.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    meta = json.loads((folder / "classifier.json").read_text())
    assert meta["encoder"] == "local:all-MiniLM-L6-v2" and meta["version"] == 1 and meta["models"] == TIERS
    loaded = TrainedClassifier.load(folder)
    texts = ["What is the capital of Peru?", "Prove that there are infinitely many primes, then generalise it."]
    assert np.allclose(loaded.predict(texts), clf.predict(texts))


def _tamper(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "classifier.json").read_text())
    for key, value in changes.items():
        if key == "spec_encoder":
            meta["encoder"] = meta["spec"]["encoder"] = value
        else:
            meta[key] = value
    (folder / "classifier.json").write_text(json.dumps(meta))


def test_mismatched_artifacts_are_clear_config_errors(clf: TrainedClassifier, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tierroute train"):
        TrainedClassifier.load(tmp_path / "missing")
    other = clf.save(tmp_path / "other-encoder")
    _tamper(other, spec_encoder="local:bge-small-en-v1.5")
    with pytest.raises(ConfigError, match=r"trained with encoder 'local:bge-small-en-v1\.5'"):
        TrainedClassifier.load(other)
    old = clf.save(tmp_path / "old")
    _tamper(old, version=0)
    with pytest.raises(ConfigError, match="version 0"):
        TrainedClassifier.load(old)
    broken = clf.save(tmp_path / "broken")
    arrays = dict(np.load(broken / "weights.npz", allow_pickle=False))
    arrays = {k: (v[:-1] if k in ("W0", "X") else v) for k, v in arrays.items()}
    np.savez(broken / "weights.npz", **arrays)
    with pytest.raises(ConfigError, match=r"does not match classifier\.json"):
        TrainedClassifier.load(broken)


def _config(path: Path, target: dict[str, float], tiers: list[str] = TIERS) -> RouterConfig:
    return RouterConfig.from_dict(
        {
            "model_list": [{"model_name": t, "litellm_params": {"model": f"openai/{t}"}} for t in tiers],
            "tiers": tiers,
            "routing": {"classifier": {"path": str(path), "target": target}},
        }
    )


def test_router_loads_the_classifier_layer_from_config(clf: TrainedClassifier, tmp_path: Path) -> None:
    folder = clf.save(tmp_path / "router")
    router = TierRouter(_config(folder, {"min_success": 0.8}))
    easy = router.decide("What is the capital of Norway?")
    hard = router.decide("Solve the recurrence T(n) = 4T(n/4) + n^7 exactly and prove the bound is tight.")
    assert easy.layer == hard.layer == "classifier"
    assert (easy.tier, hard.tier) == ("budget", "premium")
    assert set(hard.candidates) == set(TIERS) and "predicted success" in hard.reason
    with pytest.raises(ConfigError, match="not tiers"):
        TierRouter(_config(folder, {}, tiers=["budget", "premium"]))
    with pytest.raises(ConfigError, match="exactly one of"):
        TierRouter(_config(folder, {"min_success": 0.8, "max_drop": 0.1}))


def test_embeddings_are_cached_on_disk_across_instances(tmp_path: Path) -> None:
    from tierroute.policies.classifier import Embedder

    seen: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return np.asarray([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)

    first = Embedder(encode=encode, name="test:counts", cache_dir=tmp_path)
    a = first.embed(["alpha", "beta", "alpha"])
    assert seen == ["alpha", "beta"] and a.shape == (3, 3) and np.array_equal(a[0], a[2])
    second = Embedder(encode=encode, name="test:counts", cache_dir=tmp_path)
    b = second.embed(["beta", "gamma", "alpha"])
    assert seen == ["alpha", "beta", "gamma"]  # only the new text was encoded
    assert np.array_equal(b[0], a[1]) and np.array_equal(b[2], a[0])
    other = Embedder(encode=encode, name="test:other-model", cache_dir=tmp_path)
    other.embed(["alpha"])
    assert seen[-1] == "alpha"  # vectors are keyed by encoder: another model re-encodes
