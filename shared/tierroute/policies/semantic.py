"""The semantic layer: example utterances per tier on semantic-router 1.x (``IndexedRouter``, ``Route``).

A prompt is embedded and compared with each tier's utterances; the best tier wins if its score clears the
tier's threshold (``routing.semantic.thresholds[tier]``, else ``routing.semantic.threshold``); otherwise the
layer abstains and the chain goes on. :meth:`SemanticPolicy.fit` tunes thresholds from labelled examples.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tierroute.config import SemanticConfig
from tierroute.encoders import build_encoder, cache_dir, truncate_text, utterance_cache_key
from tierroute.errors import RoutingError
from tierroute.types import LayerVerdict, RouteRequest, Scope

__all__ = ["FitResult", "SemanticPolicy", "TierStats"]


@dataclass(frozen=True)
class TierStats:
    """Precision and recall of one tier on a labelled set."""

    tier: str
    support: int
    predicted: int
    precision: float
    recall: float


@dataclass(frozen=True)
class FitResult:
    """Outcome of :meth:`SemanticPolicy.fit` / :meth:`SemanticPolicy.evaluate`."""

    threshold: float
    thresholds: dict[str, float]
    accuracy: float
    per_tier: dict[str, TierStats] = field(default_factory=dict)
    abstain_rate: float = 0.0


class SemanticPolicy:
    """Utterance routing on semantic-router; abstains below threshold.

    Args:
        cfg: The ``routing.semantic`` section.
        scope: Which part of the conversation is embedded.
        encoder: A semantic-router ``DenseEncoder`` to use instead of the configured one.
    """

    layer = "semantic"

    def __init__(self, cfg: SemanticConfig, scope: Scope = "last_user", encoder: Any | None = None) -> None:
        self.cfg = cfg
        self.scope = scope
        self.threshold = cfg.threshold
        self.thresholds = dict(cfg.thresholds)
        self._encoder_override = encoder
        self._router: Any = None
        self._encoder: Any = None
        self._lock = threading.Lock()

    # ---- building -----------------------------------------------------------------------------------

    @property
    def encoder(self) -> Any:
        """The cached encoder (built on first use)."""
        self._ensure()
        return self._encoder

    def _ensure(self) -> Any:
        if self._router is not None:
            return self._router
        with self._lock:
            if self._router is None:
                self._router = self._build()
        return self._router

    def _build(self) -> Any:
        from semantic_router import IndexedRouter, Route

        encoder = build_encoder(self.cfg.encoder, self._encoder_override)
        self._load_utterances(encoder)
        routes = [Route(name=tier, utterances=list(utts)) for tier, utts in self.cfg.routes.items()]
        router = IndexedRouter(encoder=encoder, routes=routes, top_k=self.cfg.top_k, aggregation=self.cfg.aggregation)
        self._encoder = encoder
        return router

    def _load_utterances(self, encoder: Any) -> None:
        """Pin utterance vectors, from the disk cache when it holds this model's vectors for these utterances."""
        texts = [u for utts in self.cfg.routes.values() for u in utts]
        if not texts:
            return
        folder = cache_dir(self.cfg.encoder.cache_dir)
        path = folder / f"{utterance_cache_key(encoder.name, texts)}.npy"
        vectors: list[list[float]] | None = None
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape[0] == len(texts):
                    vectors = arr.tolist()
            except (OSError, ValueError):
                vectors = None
        if vectors is None:
            vectors = [list(map(float, v)) for v in encoder.inner(texts)]
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
                tmp.replace(path)
            except OSError:
                pass  # a read-only home only costs a re-embed next start
        encoder.pin(texts, vectors)

    # ---- deciding -----------------------------------------------------------------------------------

    def prepare(self, text: str) -> str:
        """The text the encoder sees: truncated on purpose to ``encoder.max_chars``."""
        return truncate_text(text, self.cfg.encoder.max_chars, self.cfg.truncate)

    def bar(self, tier: str) -> float:
        """The score a tier needs."""
        return self.thresholds.get(tier, self.threshold)

    def _verdict(self, choices: Any, truncated: bool) -> LayerVerdict:
        scores = {c.name: float(c.confidence) for c in choices if c.name is not None}
        note = " (prompt truncated for the encoder)" if truncated else ""
        if not scores:
            return LayerVerdict(self.layer, None, None, "no route scored" + note)
        best = max(scores, key=scores.__getitem__)
        s = scores[best]
        if s >= self.bar(best):
            reason = f"closest to {best!r} utterances (score {s:.3f} >= {self.bar(best):.2f}){note}"
            return LayerVerdict(self.layer, best, s, reason, scores)
        reason = f"best {best!r} at {s:.3f} is below its threshold {self.bar(best):.2f}{note}"
        return LayerVerdict(self.layer, None, s, reason, scores)

    def scores(self, text: str) -> dict[str, float]:
        """Similarity of a text to each tier's utterances."""
        router = self._ensure()
        return {c.name: float(c.confidence) for c in router(self.prepare(text), limit=None, threshold=-1.0)}

    def decide(self, request: RouteRequest) -> LayerVerdict:
        """The closest tier if it clears its threshold, else an abstaining verdict."""
        text = request.text(self.scope)
        if not text.strip():
            return LayerVerdict(self.layer, None, None, "no text to embed")
        router = self._ensure()
        prepared = self.prepare(text)
        try:
            choices = router(prepared, limit=None, threshold=-1.0)
        except Exception as exc:  # the encoder is a dependency: surface as a routing failure
            raise RoutingError(f"semantic layer failed: {type(exc).__name__}: {exc}") from exc
        return self._verdict(choices, len(prepared) < len(text))

    async def adecide(self, request: RouteRequest) -> LayerVerdict:
        """Async :meth:`decide`."""
        text = request.text(self.scope)
        if not text.strip():
            return LayerVerdict(self.layer, None, None, "no text to embed")
        router = self._ensure()
        prepared = self.prepare(text)
        try:
            choices = await router.acall(prepared, limit=None, threshold=-1.0)
        except Exception as exc:
            raise RoutingError(f"semantic layer failed: {type(exc).__name__}: {exc}") from exc
        return self._verdict(choices, len(prepared) < len(text))

    # ---- tuning -------------------------------------------------------------------------------------

    def score_matrix(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Scores of every text against every tier (batch-embedded once)."""
        router = self._ensure()
        prepared = [self.prepare(t) for t in texts]
        self._encoder(prepared)  # one batched encode warms the cache
        tiers = list(self.cfg.routes)
        mat = np.zeros((len(texts), len(tiers)))
        for i, p in enumerate(prepared):
            got = {c.name: float(c.confidence) for c in router(p, limit=None, threshold=-1.0)}
            mat[i] = [got.get(t, 0.0) for t in tiers]
        return tiers, mat

    @staticmethod
    def _predict(tiers: list[str], mat: np.ndarray, bars: np.ndarray, fallback: str) -> list[str]:
        best = mat.argmax(axis=1)
        top = mat[np.arange(len(mat)), best]
        return [tiers[b] if s >= bars[b] else fallback for b, s in zip(best, top)]

    @staticmethod
    def _stats(pred: list[str], labels: Sequence[str], all_tiers: Sequence[str]) -> dict[str, TierStats]:
        out = {}
        for t in all_tiers:
            tp = sum(p == t and y == t for p, y in zip(pred, labels))
            npred = sum(p == t for p in pred)
            sup = sum(y == t for y in labels)
            out[t] = TierStats(t, sup, npred, tp / npred if npred else 0.0, tp / sup if sup else 0.0)
        return out

    def evaluate(self, texts: Sequence[str], labels: Sequence[str], fallback: str) -> FitResult:
        """Accuracy and per-tier precision/recall with the current thresholds; abstentions count as ``fallback``."""
        tiers, mat = self.score_matrix(texts)
        bars = np.array([self.bar(t) for t in tiers])
        pred = self._predict(tiers, mat, bars, fallback)
        acc = float(np.mean([p == y for p, y in zip(pred, labels)]))
        every = sorted(set(labels) | set(tiers) | {fallback})
        abstain = float(np.mean(mat[np.arange(len(mat)), mat.argmax(axis=1)] < bars[mat.argmax(axis=1)]))
        return FitResult(self.threshold, dict(self.thresholds), acc, self._stats(pred, labels, every), abstain)

    def fit(self, texts: Sequence[str], labels: Sequence[str], fallback: str, *, per_tier: bool = True) -> FitResult:
        """Tune the global threshold (then each tier's) to maximise accuracy on labelled examples, and apply them.

        Args:
            texts: Example prompts (held out from the utterances).
            labels: The tier each prompt should go to.
            fallback: The tier an abstention ends on (the chain's default tier).
            per_tier: Also tune one threshold per tier by coordinate ascent.
        """
        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs as many labels as texts, and at least one")
        tiers, mat = self.score_matrix(texts)
        grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)
        y = list(labels)

        def acc(bars: np.ndarray) -> float:
            return float(np.mean([p == t for p, t in zip(self._predict(tiers, mat, bars, fallback), y)]))

        best_g = max(grid, key=lambda g: (acc(np.full(len(tiers), g)), -abs(g - self.cfg.threshold)))
        bars = np.full(len(tiers), float(best_g))
        if per_tier:
            for _ in range(2):
                for j in range(len(tiers)):
                    cand = []
                    for g in grid:
                        trial = bars.copy()
                        trial[j] = g
                        cand.append((acc(trial), -abs(g - best_g), float(g)))
                    bars[j] = max(cand)[2]
        self.threshold = float(best_g)
        self.thresholds = {t: float(b) for t, b in zip(tiers, bars) if per_tier}
        pred = self._predict(tiers, mat, bars, fallback)
        every = sorted(set(labels) | set(tiers) | {fallback})
        top = mat[np.arange(len(mat)), mat.argmax(axis=1)]
        return FitResult(
            self.threshold,
            dict(self.thresholds),
            acc(bars),
            self._stats(pred, labels, every),
            float(np.mean(top < bars[mat.argmax(axis=1)])),
        )
