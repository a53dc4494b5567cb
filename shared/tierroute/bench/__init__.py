"""Step 0: measure each model per task type, and derive the routing map from the evidence.

- :mod:`~tierroute.bench.samples`: task samples (YAML/JSONL) with references and scorers.
- :mod:`~tierroute.bench.scorers`: exact, contains, regex, numeric, JSON / JSON schema, ROUGE-L, LLM judge, custom.
- :mod:`~tierroute.bench.runner`: async runner within rpm/tpm, resumable on-disk cache, token and cost accounting.
- :mod:`~tierroute.bench.matrix`: the quality matrix (JSONL), the data shape shared with training and evaluation.
- :mod:`~tierroute.bench.report`: per task type x model table (Markdown) and heatmap (PNG).
- :mod:`~tierroute.bench.routing_map`: cheapest model whose lower confidence bound clears the bar, as config.
- :mod:`~tierroute.bench.pipeline`: all of it (``tierroute bench``).

Names load on first use, so ``import tierroute.bench`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "BenchOptions",
    "Cell",
    "MapEntry",
    "QualityRow",
    "Sample",
    "Step0Result",
    "load_samples",
    "read_matrix",
    "routing_map",
    "run_bench",
    "run_step0",
    "score_answer",
    "task_table",
    "write_matrix",
]

_WHERE = {
    "BenchOptions": "runner",
    "run_bench": "runner",
    "Cell": "report",
    "task_table": "report",
    "MapEntry": "routing_map",
    "routing_map": "routing_map",
    "QualityRow": "matrix",
    "read_matrix": "matrix",
    "write_matrix": "matrix",
    "Sample": "samples",
    "load_samples": "samples",
    "Step0Result": "pipeline",
    "run_step0": "pipeline",
    "score_answer": "scorers",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"tierroute.bench.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tierroute.bench' has no attribute {name!r}")
