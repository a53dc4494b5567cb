"""Task samples for the Step 0 benchmark: what to ask each model and how to score the answer.

A sample file is YAML or JSONL. YAML holds a list of samples, or ``{defaults: {...}, samples: [...]}`` where
``defaults`` fills keys a sample leaves out (e.g. one ``task_type`` and ``scorer`` for the whole file)::

    defaults: {task_type: arithmetic, scorer: numeric}
    samples:
      - {prompt: "What is 17 * 23? Answer with the number only.", reference: 391}
      - id: sum-2
        messages: [{role: user, content: "Add 2 and 40."}]
        reference: 42

Keys: ``id`` (default ``<task_type>-<n>``), ``task_type`` (required), ``prompt`` or ``messages``, ``reference``,
``scorer`` (a name, ``module:function``, or ``{name: ..., <options>}``), ``params`` (chat parameters such as
``max_tokens``) and ``metadata``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierroute.errors import ConfigError, ConfigProblem

__all__ = ["Sample", "load_samples"]


class Sample(BaseModel):
    """One benchmark sample.

    Attributes:
        id: Unique id.
        task_type: The task tag the routing map is keyed by.
        prompt: The prompt (when no ``messages``).
        messages: OpenAI-style messages.
        reference: The expected answer, for the scorer.
        scorer: Scorer name, ``module:function``, or a mapping ``{name: ..., <options>}``.
        params: Chat parameters for this sample (``max_tokens``, ``temperature``...).
        metadata: Free-form extras (passed to custom scorers).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    task_type: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    reference: Any = None
    scorer: str | dict[str, Any] = "exact"
    params: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_prompt(self) -> Sample:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' is empty")
        if isinstance(self.scorer, dict) and not isinstance(self.scorer.get("name"), str):
            raise ValueError("a scorer mapping needs 'name', e.g. {name: regex, pattern: '...'}")
        return self

    @property
    def chat(self) -> list[dict[str, Any]]:
        """The messages sent to the model."""
        return list(self.messages) if self.messages is not None else [{"role": "user", "content": self.prompt or ""}]

    @property
    def text(self) -> str:
        """The last user message (what routing sees)."""
        for m in reversed(self.chat):
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                return str(m["content"])
        return self.prompt or ""

    @property
    def scorer_name(self) -> str:
        """The scorer's name."""
        return self.scorer if isinstance(self.scorer, str) else str(self.scorer["name"])

    @property
    def scorer_options(self) -> dict[str, Any]:
        """The scorer's options (empty for a bare name)."""
        return {} if isinstance(self.scorer, str) else {k: v for k, v in self.scorer.items() if k != "name"}


def _raw_items(path: Path) -> tuple[list[Any], dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"sample file {str(path)!r} does not exist", hint="check the --samples path") from None
    if path.suffix.lower() == ".jsonl":
        items = []
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"invalid JSON: {exc.msg}", path=f"{path}:{n}") from None
        return items, {}
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="check indentation and quoting") from None
    if isinstance(data, list):
        return data, {}
    if isinstance(data, Mapping) and isinstance(data.get("samples"), list):
        extra = sorted(set(data) - {"samples", "defaults"})
        if extra:
            raise ConfigError(f"unknown top-level keys {extra}", path=str(path), hint="use 'defaults' and 'samples'")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise ConfigError("'defaults' must be a mapping", path=f"{path}.defaults")
        return list(data["samples"]), dict(defaults)
    raise ConfigError(
        f"{path} must hold a list of samples or {{defaults: ..., samples: [...]}}", hint="see tierroute.bench.samples"
    )


def load_samples(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Sample]:
    """Read and validate sample files (YAML or JSONL).

    Raises:
        ConfigError: Listing every invalid sample with its file and index, and repeated ids.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    samples: list[Sample] = []
    problems: list[ConfigProblem] = []
    counters: dict[str, int] = {}
    for p in paths:
        path = Path(p)
        items, defaults = _raw_items(path)
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                problems.append(ConfigProblem(where, f"expected a mapping, got {type(item).__name__}"))
                continue
            try:
                s = Sample.model_validate({**defaults, **item})
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    loc = ".".join(str(x) for x in err["loc"])
                    msg = err["msg"].removeprefix("Value error, ")
                    problems.append(ConfigProblem(f"{where}.{loc}" if loc else where, msg))
                continue
            if not s.id:
                counters[s.task_type] = counters.get(s.task_type, 0) + 1
                s.id = f"{s.task_type}-{counters[s.task_type]}"
            samples.append(s)
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            problems.append(
                ConfigProblem(f"samples.{s.id}", f"id {s.id!r} appears twice", "give each sample its own id")
            )
        seen.add(s.id)
    if problems:
        raise ConfigError(problems)
    if not samples:
        raise ConfigError("no samples found", hint="add samples to the --samples file(s)")
    return samples
