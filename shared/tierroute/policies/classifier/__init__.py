"""The trained router: per-tier success probability from prompt features, and a cost-aware pick.

Features are a prompt embedding (the local all-MiniLM-L6-v2 by default, cached on disk) plus cheap ones:
length, sentences, numbers, ratio words, math and code markers, negations, answer options, and the request's
``task_type`` tag. A model (logistic, MLP, matrix factorisation: all stored as dense layers; kNN over the
embeddings; or a blend of a dense model and kNN) maps them to the probability that each tier's model clears the
bar. ``tierroute train`` fits it and picks the family by measurement (see :mod:`tierroute.evaluate.training`).

Decision (``routing.classifier.target``), tiers cheapest first, ``p`` the predicted success per tier:

- ``min_success: t``: the cheapest tier with ``p >= t`` (else the most likely to succeed);
- ``max_drop: d``: the cheapest tier with ``p >= max(p) - d``;
- ``premium_share: s``: ``max_drop`` with ``d`` calibrated so a share ``s`` of traffic goes to the top tier
  (RouteLLM's calibrate), on held-out predictions saved at training or on traffic given to
  :meth:`TrainedClassifier.calibrate`;
- ``cost_weight: w``: the tier maximising ``p - w * cost / max_cost`` (needs training costs).

Artifacts are a folder holding ``classifier.json`` (format version, encoder, models, feature spec) and
``weights.npz`` (arrays only, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

from tierroute.policies.classifier.features import CHEAP, Embedder, cheap_features, feature_matrix
from tierroute.policies.classifier.model import (
    ARTIFACT_VERSION,
    RULES,
    ClassifierPolicy,
    TrainedClassifier,
    pick,
    top_gap,
)

__all__ = [
    "ARTIFACT_VERSION",
    "CHEAP",
    "RULES",
    "ClassifierPolicy",
    "Embedder",
    "TrainedClassifier",
    "cheap_features",
    "feature_matrix",
    "pick",
    "top_gap",
]
