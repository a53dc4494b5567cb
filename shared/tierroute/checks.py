"""Acceptance checks: is a successful answer good enough, or should the cascade escalate?

Built-in checks (config ``cascade.accept``): ``non_empty``, ``not_refusal``, ``valid_json``,
``{json_schema: {...}}``, ``{min_length: N}``, ``{callable: "module:function"}``, and
``{judge: {tier: budget, rubric: "...", min_score: 4}}`` (a cheap model grades the answer 1-5).
A user callable takes ``(request, response)`` and returns ``True``/``False`` or ``(ok, reason)``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierroute.backends.base import BackendResponse
from tierroute.errors import ConfigError
from tierroute.types import RouteRequest

__all__ = ["Check", "CheckResult", "build_checks"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check."""

    ok: bool
    check: str
    reason: str = ""


SyncCheck = Callable[[RouteRequest, BackendResponse], Any]
JudgeCall = Callable[[str, RouteRequest, BackendResponse, str], Awaitable[float]]

_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry,?\s+but\s+)?(?:i\s+(?:can(?:no|')t|cannot|am\s+unable\s+to|won'?t|am\s+not\s+able\s+to)"
    r"\s+(?:help|assist|comply|provide|do\s+that|fulfil+)|as\s+an\s+ai\b.{0,40}\b(?:can(?:no|')t|cannot|unable))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Check:
    """A named acceptance check."""

    name: str
    fn: SyncCheck | None = None
    judge: Mapping[str, Any] | None = None

    async def run(self, request: RouteRequest, response: BackendResponse, judge_call: JudgeCall | None) -> CheckResult:
        """Run the check."""
        if self.judge is not None:
            if judge_call is None:
                return CheckResult(True, self.name, "no judge available; skipped")
            rubric = str(self.judge.get("rubric", "Is the answer correct, complete and helpful?"))
            score = await judge_call(str(self.judge["tier"]), request, response, rubric)
            need = float(self.judge.get("min_score", 3))
            return CheckResult(score >= need, self.name, f"judge score {score:g} (needs {need:g})")
        assert self.fn is not None
        out = self.fn(request, response)
        if isinstance(out, tuple):
            return CheckResult(bool(out[0]), self.name, str(out[1]) if len(out) > 1 else "")
        return CheckResult(bool(out), self.name, "" if out else "check returned False")


def _non_empty(_: RouteRequest, r: BackendResponse) -> tuple[bool, str]:
    return (bool(r.text.strip()) or bool(r.tool_calls), "empty answer")


def _not_refusal(_: RouteRequest, r: BackendResponse) -> tuple[bool, str]:
    return (_REFUSAL.search(r.text[:300]) is None, "the answer is a refusal")


def _strip_fence(text: str) -> str:
    m = re.match(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", text, re.DOTALL)
    return m.group(1) if m else text


def _valid_json(_: RouteRequest, r: BackendResponse) -> tuple[bool, str]:
    try:
        json.loads(_strip_fence(r.text))
    except ValueError as exc:
        return False, f"not valid JSON: {exc}"
    return True, ""


def _json_schema(schema: Mapping[str, Any]) -> SyncCheck:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema ships with litellm
        raise ConfigError(
            "the json_schema check needs jsonschema", path="cascade.accept", hint="pip install jsonschema"
        ) from exc
    validator = jsonschema.Draft202012Validator(dict(schema))

    def check(_: RouteRequest, r: BackendResponse) -> tuple[bool, str]:
        try:
            data = json.loads(_strip_fence(r.text))
        except ValueError as exc:
            return False, f"not valid JSON: {exc}"
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        return (not errors, f"schema: {errors[0].message}" if errors else "")

    return check


def _min_length(n: int) -> SyncCheck:
    def check(_: RouteRequest, r: BackendResponse) -> tuple[bool, str]:
        return (len(r.text.strip()) >= n or bool(r.tool_calls), f"answer shorter than {n} characters")

    return check


def _import_callable(spec: str, path: str) -> SyncCheck:
    mod, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot import check {spec!r}: {exc}", path=path, hint="use 'package.module:function'"
        ) from None
    if not callable(fn):
        raise ConfigError(f"{spec!r} is not callable", path=path)
    return fn  # type: ignore[no-any-return]


_SIMPLE: dict[str, SyncCheck] = {"non_empty": _non_empty, "not_refusal": _not_refusal, "valid_json": _valid_json}


def build_checks(specs: Sequence[str | Mapping[str, Any]], extra: Sequence[SyncCheck] = ()) -> list[Check]:
    """Build the checks named in ``cascade.accept`` plus user callables passed in code.

    Raises:
        ConfigError: An unknown check name or a malformed check.
    """
    checks: list[Check] = []
    for i, spec in enumerate(specs):
        path = f"cascade.accept[{i}]"
        if isinstance(spec, str):
            if spec not in _SIMPLE:
                raise ConfigError(
                    f"unknown check {spec!r}", path=path, hint=f"use one of {sorted(_SIMPLE)} or a mapping"
                )
            checks.append(Check(spec, _SIMPLE[spec]))
            continue
        if len(spec) != 1:
            raise ConfigError("a check mapping has exactly one key", path=path, hint="e.g. {min_length: 20}")
        ((kind, arg),) = spec.items()
        if kind == "min_length" and isinstance(arg, int) and arg >= 0:
            checks.append(Check(f"min_length:{arg}", _min_length(arg)))
        elif kind == "json_schema" and isinstance(arg, Mapping):
            checks.append(Check("json_schema", _json_schema(arg)))
        elif kind == "callable" and isinstance(arg, str):
            checks.append(Check(arg, _import_callable(arg, path)))
        elif kind == "judge" and isinstance(arg, Mapping) and "tier" in arg:
            checks.append(Check(f"judge:{arg['tier']}", judge=dict(arg)))
        else:
            raise ConfigError(
                f"unknown or malformed check {kind!r}",
                path=path,
                hint="use min_length: N, json_schema: {...}, callable: 'mod:fn' or judge: {tier: ..., rubric: ...}",
            )
    for fn in extra:
        checks.append(Check(getattr(fn, "__name__", "custom"), fn))
    return checks


def parse_judge_score(text: str) -> float:
    """A 1-5 score from a judge's reply: ``{"score": 4}``, ``Score: 4/5`` or a lone digit; 0 when absent."""
    try:
        data = json.loads(_strip_fence(text))
        if isinstance(data, Mapping) and isinstance(data.get("score"), (int, float)):
            return float(data["score"])
    except ValueError:
        pass
    m = re.search(r"score\W{0,3}([1-5](?:\.\d+)?)", text, re.IGNORECASE) or re.search(r"\b([1-5])(?:\s*/\s*5)?\b", text)
    return float(m.group(1)) if m else 0.0
