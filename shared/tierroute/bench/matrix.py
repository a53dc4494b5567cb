"""The quality matrix: one JSONL row per prompt with each model's score (and optionally cost, tokens, latency).

It is the one data shape of the evidence loop: ``tierroute bench`` writes it, ``tierroute train`` learns from it
and ``tierroute eval`` replays routers on it. A row::

    {"id": "mmlu-anatomy-12", "prompt": "...", "messages": null, "task_type": "anatomy",
     "scores": {"gpt-4-1106-preview": 1.0, "mixtral-8x7b-instruct-v0.1": 0.0},
     "costs": {"gpt-4-1106-preview": 0.0031}, "tokens": {"gpt-4-1106-preview": {"prompt": 310, "completion": 1}}}

``scores`` are in [0, 1] (higher is better). ``costs`` (USD per query), ``tokens``, ``latency_s`` and
``responses`` are optional.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierroute.errors import ConfigError

__all__ = [
    "QualityRow",
    "complete_models",
    "estimate_costs",
    "models_of",
    "read_matrix",
    "rename_models",
    "write_matrix",
]


@dataclass(slots=True)
class QualityRow:
    """One prompt of a quality matrix.

    Attributes:
        id: Unique id of the prompt.
        prompt: The prompt text (when the row has no ``messages``).
        messages: OpenAI-style messages, when the prompt is a conversation.
        task_type: Task tag (e.g. the MMLU subject); rules and the classifier use it.
        scores: Model -> score in [0, 1].
        costs: Model -> USD for this prompt.
        tokens: Model -> ``{"prompt": int, "completion": int}``.
        latency_s: Model -> seconds.
        responses: Model -> the answer text.
        metadata: Anything else (kept as it is).
    """

    id: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    task_type: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    responses: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text a router sees: the last user message of ``messages``, else ``prompt``."""
        if self.messages:
            for m in reversed(self.messages):
                if m.get("role") == "user":
                    content = m.get("content")
                    if isinstance(content, str):
                        return content
                    if isinstance(content, list):
                        return "\n".join(
                            str(p.get("text", ""))
                            for p in content
                            if isinstance(p, Mapping) and p.get("type") == "text"
                        )
        return self.prompt or ""

    def to_dict(self) -> dict[str, Any]:
        """The JSONL form (optional maps only when they hold something)."""
        out: dict[str, Any] = {
            "id": self.id,
            "prompt": self.prompt,
            "messages": self.messages,
            "task_type": self.task_type,
            "scores": self.scores,
        }
        for key in ("costs", "tokens", "latency_s", "responses", "metadata"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "row") -> QualityRow:
        """Validate one parsed JSON row.

        Raises:
            ConfigError: A field is missing or has the wrong type; ``where`` names the line.
        """

        def fail(msg: str, hint: str = "") -> ConfigError:
            return ConfigError(msg, path=where, hint=hint or "see the quality-matrix shape in tierroute.bench.matrix")

        if not isinstance(data, Mapping):
            raise fail(f"expected a JSON object, got {type(data).__name__}")
        rid = data.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
            raise fail("missing 'id' (a non-empty string)")
        prompt, messages = data.get("prompt"), data.get("messages")
        if prompt is not None and not isinstance(prompt, str):
            raise fail("'prompt' must be a string")
        if messages is not None and not (isinstance(messages, list) and all(isinstance(m, dict) for m in messages)):
            raise fail("'messages' must be a list of message objects")
        if prompt is None and not messages:
            raise fail("row has neither 'prompt' nor 'messages'", "give the prompt text or OpenAI-style messages")
        scores = data.get("scores")
        if not isinstance(scores, Mapping) or not scores:
            raise fail("'scores' must be a non-empty object of model -> score in [0, 1]")
        clean: dict[str, float] = {}
        for model, value in scores.items():
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise fail(f"scores[{model!r}] = {value!r} is not a number in [0, 1]", "rescale scores to [0, 1]")
            clean[str(model)] = float(value)
        task = data.get("task_type")
        return cls(
            id=str(rid),
            prompt=prompt,
            messages=messages,
            task_type=None if task is None else str(task),
            scores=clean,
            costs={str(k): float(v) for k, v in _mapping(data, "costs", where).items()},
            tokens={str(k): dict(v) for k, v in _mapping(data, "tokens", where).items()},
            latency_s={str(k): float(v) for k, v in _mapping(data, "latency_s", where).items()},
            responses={str(k): str(v) for k, v in _mapping(data, "responses", where).items()},
            metadata=dict(_mapping(data, "metadata", where)),
        )


def _mapping(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{key}' must be an object keyed by model", path=where)
    return value


def read_matrix(path: str | os.PathLike[str]) -> list[QualityRow]:
    """Read a quality-matrix JSONL file.

    Raises:
        ConfigError: The file is missing, a line is not JSON, a row is malformed, or ids repeat.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise ConfigError(
            f"quality matrix {str(p)!r} does not exist", hint="run `tierroute bench` or an importer first"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read quality matrix {str(p)!r}: {exc}") from None
    rows: list[QualityRow] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", path=where, hint="one JSON object per line") from None
        row = QualityRow.from_dict(data, where)
        if row.id in seen:
            raise ConfigError(f"id {row.id!r} appears twice", path=where, hint="give every row its own id")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise ConfigError(f"quality matrix {str(p)!r} has no rows", hint="run `tierroute bench` or an importer first")
    return rows


def write_matrix(path: str | os.PathLike[str], rows: Iterable[QualityRow]) -> Path:
    """Write rows as JSONL (atomically: a temporary file renamed into place). Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.to_dict()) + "\n")
    tmp.replace(p)
    return p


def models_of(rows: Sequence[QualityRow]) -> list[str]:
    """Every model scored in any row, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for m in row.scores:
            seen.setdefault(m, None)
    return list(seen)


def complete_models(rows: Sequence[QualityRow]) -> list[str]:
    """Models scored in every row (the ones a router can be replayed on), in first-seen order."""
    return [m for m in models_of(rows) if all(m in r.scores for r in rows)]


def rename_models(rows: Sequence[QualityRow], mapping: Mapping[str, str]) -> list[QualityRow]:
    """Copies of the rows with model names renamed by ``mapping`` (``{old: new}``) in every per-model map."""
    if not mapping:
        return list(rows)

    def ren(d: dict[str, Any]) -> dict[str, Any]:
        return {mapping.get(k, k): v for k, v in d.items()}

    return [
        QualityRow(
            id=r.id,
            prompt=r.prompt,
            messages=r.messages,
            task_type=r.task_type,
            scores=ren(r.scores),
            costs=ren(r.costs),
            tokens=ren(r.tokens),
            latency_s=ren(r.latency_s),
            responses=ren(r.responses),
            metadata=r.metadata,
        )
        for r in rows
    ]


def estimate_costs(
    rows: Sequence[QualityRow],
    models: Sequence[str],
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> list[list[float]]:
    """Cost of each model on each row (rows x models).

    The row's ``costs`` win; else ``tokens`` x ``prices`` (USD per token, input and output).

    Raises:
        ConfigError: A row has neither a cost nor tokens and a price for a model.
    """
    prices = prices or {}
    out: list[list[float]] = []
    for row in rows:
        line = []
        for m in models:
            if m in row.costs:
                line.append(row.costs[m])
                continue
            tok = row.tokens.get(m)
            if tok is not None and m in prices:
                pin, pout = prices[m]
                line.append(int(tok.get("prompt", 0)) * pin + int(tok.get("completion", 0)) * pout)
                continue
            raise ConfigError(
                f"row {row.id!r} has no cost for model {m!r}",
                path=f"costs.{m}",
                hint="add 'costs' to the rows, or 'tokens' plus a price for the model (--price MODEL=IN,OUT per 1M)",
            )
        out.append(line)
    return out
