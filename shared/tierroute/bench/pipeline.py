"""Step 0 end to end: run the samples on the config's models and write every output into one folder.

``out/matrix.jsonl`` (quality matrix), ``out/table.md`` and ``out/heatmap.png`` (per task type x model),
``out/routing.yaml`` (the config with the routing map; ``tierroute validate`` accepts it), ``out/summary.json``,
and ``out/calls.jsonl`` (the resumable call cache).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tierroute.bench.matrix import write_matrix
from tierroute.bench.report import Cell, heatmap_png, task_table, to_markdown
from tierroute.bench.routing_map import MapEntry, cheapest_first, routing_config, routing_map
from tierroute.bench.runner import BenchOptions, BenchRun, run_bench
from tierroute.bench.samples import load_samples
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError

__all__ = ["Step0Result", "run_step0"]


@dataclass
class Step0Result:
    """Outputs of a Step 0 run.

    Attributes:
        run: The raw run (rows, call counts, failures).
        cells: The task x model table.
        order: Models cheapest first.
        entries: The routing map.
        paths: Output name -> file path.
    """

    run: BenchRun
    cells: list[Cell]
    order: list[str]
    entries: dict[str, MapEntry]
    paths: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``summary.json`` and ``--json``)."""
        return {
            "rows": len(self.run.rows),
            "models": self.order,
            "calls_made": self.run.calls_made,
            "calls_cached": self.run.calls_cached,
            "failed": [{"id": i, "model": m, "error": e} for i, m, e in self.run.failed],
            "table": [c.to_dict() for c in self.cells],
            "routing_map": {t: e.to_dict() for t, e in self.entries.items()},
            "paths": self.paths,
        }


async def run_step0(
    config_path: str | os.PathLike[str],
    sample_paths: list[str],
    out_dir: str | os.PathLike[str],
    opts: BenchOptions | None = None,
    *,
    threshold: float = 0.8,
    seed: int = 0,
    backend: Any = None,
) -> Step0Result:
    """Benchmark, then write the matrix, table, heatmap, routing map config and summary into ``out_dir``.

    Raises:
        ConfigError: Invalid config or samples, or no call succeeded.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold {threshold} is not in [0, 1]", hint="scores are in [0, 1], e.g. 0.8")
    config = RouterConfig.from_yaml(config_path)
    raw = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    samples = load_samples(sample_paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = await run_bench(config, samples, out, opts, backend=backend)
    if not run.rows:
        first = run.failed[0][2] if run.failed else "no samples"
        raise ConfigError(f"no call succeeded ({len(run.failed)} failed; first: {first})", hint="check the config")
    cells = task_table(run.rows, run.models, seed=seed)
    order = cheapest_first(cells, run.models, config.tiers)
    routable = [m for m in order if m in config.tiers]  # the map can only send requests to tiers
    if not routable:
        raise ConfigError(
            f"none of the benchmarked models {order} is a tier of the config",
            path="tiers",
            hint="benchmark at least one tier, or add the model groups to tiers",
        )
    entries = routing_map([c for c in cells if c.model in routable], routable, threshold)
    paths = {
        "matrix": str(write_matrix(out / "matrix.jsonl", run.rows)),
        "table": str(out / "table.md"),
        "heatmap": heatmap_png(cells, order, out / "heatmap.png"),
        "routing": str(out / "routing.yaml"),
        "summary": str(out / "summary.json"),
        "calls": str(out / "calls.jsonl"),
    }
    choice = {t: e.model for t, e in entries.items()}
    (out / "table.md").write_text(
        f"# Step 0: {len(run.rows)} samples x {len(order)} models (threshold {threshold:g} on the lower bound)\n\n"
        + to_markdown(cells, routing=choice)
        + "\n## Routing map\n\n"
        + "\n".join(f"- `{t}` -> **{e.model}**: {e.reason}" for t, e in sorted(entries.items()))
        + "\n",
        encoding="utf-8",
    )
    data = routing_config(raw, entries, samples)
    header = (
        f"# Routing map from `tierroute bench` ({len(run.rows)} samples, models cheapest first: {', '.join(order)}).\n"
        f"# Each task type goes to the cheapest model whose bootstrap 90% lower bound is >= {threshold:g}.\n"
    )
    (out / "routing.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
    result = Step0Result(run, cells, order, entries, paths)
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    return result
