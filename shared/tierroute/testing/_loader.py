"""Parsing of fake-provider script files and quality-matrix JSONL into :class:`ModelScript` objects."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tierroute.errors import ConfigError
from tierroute.testing._text import content_text

if TYPE_CHECKING:
    from tierroute.testing._script import Fault, ModelScript

__all__ = ["fault_from_dict", "load_script_file", "script_from_dict", "script_from_quality_matrix"]

FaultT = TypeVar("FaultT", bound="Fault")
ScriptT = TypeVar("ScriptT", bound="ModelScript")

_FAULT_KEYS = (
    "kind",
    "every",
    "first",
    "rate",
    "seed",
    "window",
    "calls",
    "status",
    "retry_after",
    "hang_s",
    "after_chunks",
    "message",
)
_SCRIPT_KEYS = (
    "reply",
    "replies",
    "tool_calls",
    "json_reply",
    "usage",
    "prompt_usage",
    "latency_s",
    "chunk_delay_s",
    "context_window",
    "faults",
    "served_model",
    "embedding_dim",
    "quality_matrix",
)
_FILE_KEYS = ("models", "embedding_dim")


def _check_keys(data: Any, allowed: tuple[str, ...], path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", path=path)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            path=path,
            hint=f"allowed keys: {', '.join(allowed)}",
        )
    return data


def _pair(value: Any, path: str, kind: type[int] | type[float]) -> tuple[Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError("expected a list of two numbers", path=path)
    try:
        return kind(value[0]), kind(value[1])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected numbers: {exc}", path=path) from exc


def fault_from_dict(cls: type[FaultT], data: Any, *, path: str) -> FaultT:
    """Build a fault from a mapping; see :meth:`Fault.from_dict`."""
    data = _check_keys(data, _FAULT_KEYS, path)
    if "kind" not in data:
        raise ConfigError("missing required key 'kind'", path=path)
    kwargs = dict(data)
    if "window" in kwargs and kwargs["window"] is not None:
        kwargs["window"] = _pair(kwargs["window"], f"{path}.window", float)
    if "calls" in kwargs and kwargs["calls"] is not None:
        if not isinstance(kwargs["calls"], (list, tuple, set, frozenset)):
            raise ConfigError("expected a list of call numbers", path=f"{path}.calls")
        kwargs["calls"] = frozenset(kwargs["calls"])
    fault: FaultT = _construct(cls, kwargs, path)
    return fault


def _construct(cls: type[Any], kwargs: Mapping[str, Any], path: str) -> Any:
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        problem = exc.problems[0]
        sub = f"{path}.{problem.path}" if problem.path else path
        raise ConfigError(problem.message, path=sub, hint=problem.hint) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), path=path) from exc


def script_from_dict(cls: type[ScriptT], data: Any, *, path: str, base_dir: str | None) -> ScriptT:
    """Build a model script from a mapping; see :meth:`ModelScript.from_dict`."""
    from tierroute.testing._script import Fault

    data = _check_keys(data, _SCRIPT_KEYS, path)
    kwargs = {k: v for k, v in data.items() if k != "quality_matrix"}
    if "reply" in kwargs and not isinstance(kwargs["reply"], str):
        raise ConfigError("expected a string (or 'echo')", path=f"{path}.reply")
    if kwargs.get("usage") is not None:
        kwargs["usage"] = _pair(kwargs["usage"], f"{path}.usage", int)
    if "prompt_usage" in kwargs:
        raw = kwargs["prompt_usage"]
        if not isinstance(raw, Mapping):
            raise ConfigError("expected a mapping of prompt -> [prompt_tokens, completion_tokens]", path=path)
        kwargs["prompt_usage"] = {str(k): _pair(v, f"{path}.prompt_usage", int) for k, v in raw.items()}
    if "faults" in kwargs:
        faults = kwargs["faults"]
        if not isinstance(faults, list):
            raise ConfigError("expected a list of faults", path=f"{path}.faults")
        kwargs["faults"] = [Fault.from_dict(f, path=f"{path}.faults[{i}]") for i, f in enumerate(faults)]
    matrix = data.get("quality_matrix")
    if matrix is None:
        return _construct(cls, kwargs, path)  # type: ignore[no-any-return]
    if isinstance(matrix, str):
        matrix_path, matrix_model = matrix, path.rsplit(".", 1)[-1]
    else:
        matrix = _check_keys(matrix, ("path", "model"), f"{path}.quality_matrix")
        matrix_path, matrix_model = str(matrix.get("path", "")), str(matrix.get("model", path.rsplit(".", 1)[-1]))
    if base_dir is not None and not os.path.isabs(matrix_path):
        matrix_path = os.path.join(base_dir, matrix_path)
    try:
        base = script_from_quality_matrix(cls, matrix_path, matrix_model, {})
    except ConfigError as exc:
        raise ConfigError(exc.problems[0].message, path=f"{path}.quality_matrix", hint=exc.problems[0].hint) from exc
    try:
        return dataclasses.replace(base, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), path=path) from exc


def _rows(path_or_rows: str | os.PathLike[str] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if not isinstance(path_or_rows, (str, os.PathLike)):
        return list(path_or_rows)
    rows: list[Mapping[str, Any]] = []
    file = Path(path_or_rows)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read quality matrix {str(file)!r}: {exc.strerror}", path=str(file)) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", path=f"{file}:{number}") from exc
        if not isinstance(row, Mapping):
            raise ConfigError("each line must be a JSON object", path=f"{file}:{number}")
        rows.append(row)
    return rows


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _row_prompt(row: Mapping[str, Any]) -> str:
    messages = row.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return content_text(message.get("content"))
    return str(row.get("prompt") or "")


def script_from_quality_matrix(
    cls: type[ScriptT],
    path_or_rows: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    model: str,
    overrides: Mapping[str, Any],
) -> ScriptT:
    """Build a script replaying one model column of a quality matrix; see :meth:`ModelScript.from_quality_matrix`."""
    replies: dict[str, str] = {}
    usage: dict[str, tuple[int, int]] = {}
    seen_models: set[str] = set()
    found = False
    for index, row in enumerate(_rows(path_or_rows)):
        scores, responses, tokens = (_mapping(row.get(key)) for key in ("scores", "responses", "tokens"))
        seen_models.update(str(m) for m in scores)
        if model not in scores and model not in responses and model not in tokens:
            continue
        found = True
        prompt = _row_prompt(row)
        row_id = row.get("id", index)
        if isinstance(responses.get(model), str):
            replies[prompt] = responses[model]
        else:
            score = scores.get(model)
            replies[prompt] = f"[{model}] answer to {row_id} (score {score if score is not None else 'n/a'})"
        counts = tokens.get(model)
        if isinstance(counts, Mapping) and "prompt" in counts and "completion" in counts:
            usage[prompt] = (int(counts["prompt"]), int(counts["completion"]))
    if not found:
        known = ", ".join(sorted(seen_models)) or "none"
        raise ConfigError(f"model {model!r} is in no quality-matrix row", path="model", hint=f"models seen: {known}")
    kwargs: dict[str, Any] = {
        "reply": f"[{model}] no quality-matrix row for this prompt",
        "replies": replies,
        "prompt_usage": usage,
    }
    kwargs.update(overrides)
    return cls(**kwargs)


def load_script_file(path: str | os.PathLike[str]) -> tuple[dict[str, ModelScript], int | None]:
    """Read a YAML or JSON script file: ``{"models": {name: {...}}, "embedding_dim": 16}``.

    Args:
        path: The file; ``.json`` is parsed as JSON, anything else as YAML (a superset of JSON).

    Returns:
        The scripts by model name and the optional default embedding dimension.

    Raises:
        ConfigError: When the file cannot be read or parsed, or holds unknown keys (the message names the path).
    """
    from tierroute.testing._script import ModelScript

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read script file: {exc.strerror}", path=str(file)) from exc
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"cannot parse script file: {exc}", path=str(file)) from exc
    data = _check_keys(data, _FILE_KEYS, "<root>")
    models = data.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("expected a non-empty mapping of model name -> script", path="models")
    scripts = {
        str(name): ModelScript.from_dict(spec or {}, path=f"models.{name}", base_dir=str(file.parent))
        for name, spec in models.items()
    }
    dim = data.get("embedding_dim")
    if dim is not None and (not isinstance(dim, int) or dim < 1):
        raise ConfigError("expected a positive integer", path="embedding_dim")
    return scripts, dim
