"""The routing map: for each task type, the cheapest model whose lower confidence bound clears the bar.

It is written as a config (the benchmarked config with its ``routing`` section filled in) that
``tierroute validate`` accepts: one rule per task type on ``task_types`` (requests tagged with a
``task_type``), and semantic utterances drawn from the samples of the task types mapped to each tier (for
untagged requests). Models are ranked cheapest first by measured cost per request, else by the config's tier
order. When no model clears the bar for a task type, the one with the highest lower bound is chosen and the
entry says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierroute.bench.report import Cell
from tierroute.bench.samples import Sample
from tierroute.config import RouterConfig

__all__ = ["MapEntry", "cheapest_first", "routing_config", "routing_map"]


@dataclass(frozen=True)
class MapEntry:
    """One task type's choice.

    Attributes:
        task: Task type.
        model: Chosen model (tier).
        lcb: Its lower confidence bound.
        mean: Its mean score.
        cleared: Whether it clears the threshold (False: best available).
        reason: Why it was chosen.
    """

    task: str
    model: str
    lcb: float
    mean: float
    cleared: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return dict(self.__dict__)


def cheapest_first(cells: Sequence[Cell], models: Sequence[str], tiers: Sequence[str]) -> list[str]:
    """Models ordered by mean measured cost per request (tier order breaks ties and stands in without costs)."""
    rank = {m: (tiers.index(m) if m in tiers else len(tiers)) for m in models}
    costs: dict[str, list[float]] = {m: [] for m in models}
    for c in cells:
        if c.model in costs and c.cost_per_1k is not None:
            costs[c.model].append(c.cost_per_1k)
    if all(costs[m] and sum(costs[m]) > 0 for m in models):
        return sorted(models, key=lambda m: (sum(costs[m]) / len(costs[m]), rank[m]))
    return sorted(models, key=lambda m: rank[m])


def routing_map(cells: Sequence[Cell], order: Sequence[str], threshold: float) -> dict[str, MapEntry]:
    """Task type -> :class:`MapEntry`, scanning ``order`` (cheapest first) for the first LCB >= ``threshold``."""
    out: dict[str, MapEntry] = {}
    for task in sorted({c.task for c in cells}):
        by_model = {c.model: c for c in cells if c.task == task}
        chosen = next((by_model[m] for m in order if m in by_model and by_model[m].lcb >= threshold), None)
        if chosen is not None:
            why = f"cheapest with LCB {chosen.lcb:.3f} >= {threshold:g} (mean {chosen.mean:.3f}, n={chosen.n})"
            out[task] = MapEntry(task, chosen.model, chosen.lcb, chosen.mean, True, why)
            continue
        best = max((by_model[m] for m in order if m in by_model), key=lambda c: (c.lcb, -order.index(c.model)))
        why = f"no model clears {threshold:g}; highest LCB {best.lcb:.3f} (mean {best.mean:.3f}, n={best.n})"
        out[task] = MapEntry(task, best.model, best.lcb, best.mean, False, why)
    return out


def _rule_name(task: str, taken: set[str]) -> str:
    base = "bench-" + (re.sub(r"[^a-zA-Z0-9_-]+", "-", task).strip("-").lower() or "task")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def routing_config(
    base: Mapping[str, Any],
    entries: Mapping[str, MapEntry],
    samples: Sequence[Sample],
    *,
    utterances_per_task: int = 8,
    max_chars: int = 300,
    semantic_threshold: float = 0.6,
) -> dict[str, Any]:
    """The base config (as parsed from YAML) with the routing map in its ``routing`` section.

    Generated task-type rules come first (measured evidence wins for tagged requests), then the base config's
    own rules; semantic routes are replaced by utterances from the samples (its encoder settings are kept).

    Raises:
        ConfigError: The result does not validate (it is checked with :meth:`RouterConfig.from_dict`).
    """
    data = {k: v for k, v in base.items()}
    routing = dict(data.get("routing") or {})
    own_rules = list(routing.get("rules") or [])
    taken = {str(r.get("name")) for r in own_rules if isinstance(r, Mapping)}
    rules = [
        {"name": _rule_name(task, taken), "tier": e.model, "task_types": [task]} for task, e in sorted(entries.items())
    ]
    routing["rules"] = rules + own_rules
    per_tier: dict[str, list[str]] = {}
    for task, e in sorted(entries.items()):
        texts = sorted(
            {" ".join(s.text.split())[:max_chars] for s in samples if s.task_type == task} - {""},
            key=lambda t: (len(t), t),
        )
        bucket = per_tier.setdefault(e.model, [])
        bucket.extend(t for t in texts[:utterances_per_task] if t not in bucket)
    per_tier = {tier: utts for tier, utts in per_tier.items() if utts}
    if len(per_tier) >= 2:
        semantic = dict(routing.get("semantic") or {})
        semantic["routes"] = per_tier
        semantic.setdefault("threshold", semantic_threshold)
        semantic.pop("thresholds", None)
        routing["semantic"] = semantic
    data["routing"] = routing
    RouterConfig.from_dict(data)
    return data
