"""Offline evaluation of routers on recorded outcomes of real models.

- :mod:`~tierroute.evaluate.data`: where the public datasets live (``$TIERROUTE_DATA_DIR``) or a verified download.
- :mod:`~tierroute.evaluate.importers`: RouteLLM MMLU / GSM8K and LLMRouter -> quality-matrix rows.
- :mod:`~tierroute.evaluate.metrics`: PGR, APGR, CPT (RouteLLM), quality-cost curves for N models.
- :mod:`~tierroute.evaluate.training`: fitting the trained router (logistic / MLP / MF / kNN, selected by measurement).
- :mod:`~tierroute.evaluate.replay`: replaying random, single-model, oracle, config and classifier routers.
- :mod:`~tierroute.evaluate.report`: ``tierroute eval`` in code, and its curve image.

Names load on first use, so ``import tierroute.evaluate`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "EvalResult",
    "TrainOptions",
    "load_dataset",
    "load_llmrouter",
    "load_routellm_gsm8k",
    "load_routellm_mmlu",
    "pair_metrics",
    "plot_eval",
    "run_eval",
    "train_classifier",
]

_WHERE = {
    "EvalResult": "report",
    "run_eval": "report",
    "plot_eval": "report",
    "TrainOptions": "training",
    "train_classifier": "training",
    "load_dataset": "importers",
    "load_llmrouter": "importers",
    "load_routellm_gsm8k": "importers",
    "load_routellm_mmlu": "importers",
    "pair_metrics": "metrics",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"tierroute.evaluate.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tierroute.evaluate' has no attribute {name!r}")
