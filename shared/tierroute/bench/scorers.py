"""Scorers: an answer and its sample -> a score in [0, 1].

Built in (``scorer:`` in a sample; options in the mapping form ``{name: ..., <option>: ...}``):

- ``exact``: the answer equals the reference (surrounding whitespace ignored; ``case_sensitive: false`` option).
- ``contains``: the normalised reference (lower case, punctuation and extra spaces removed) occurs in the
  normalised answer; a list reference matches if any item does.
- ``regex``: ``pattern`` (or the reference) is found in the answer (``flags: i`` for case-insensitive).
- ``numeric``: the last number in the answer equals the reference within ``rel_tol`` / ``abs_tol``.
- ``json``: the answer (code fences stripped) is valid JSON; ``json_schema``: and validates against ``schema``
  (or the reference).
- ``rouge_l``: ROUGE-L F1 against the reference (Google's ``rouge-score`` package, stemming on).
- ``judge``: an LLM judge (``tierroute bench --judge TIER``). ``mode: rubric`` (default) grades 1-10 against
  ``rubric`` (and the reference when given) and maps it to [0, 1]; ``mode: pairwise`` compares the answer with
  the reference twice, A/B and B/A, and averages (win 1, tie 0.5, loss 0), so position bias cancels out.
- ``module:function``: ``function(answer, sample) -> float | bool`` (may be async).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
import string
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tierroute.bench.samples import Sample
from tierroute.errors import ConfigError

__all__ = ["BUILTIN", "JudgeFn", "parse_rating", "parse_verdict", "resolve_scorer", "score_answer"]

JudgeFn = Callable[[str], Awaitable[str]]
"""Sends a prompt to the judge model and returns its reply text."""

_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def _norm(text: str) -> str:
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _strip_fence(text: str) -> str:
    t = text.strip()
    m = re.match(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", t, re.S)
    return m.group(1) if m else t


def _exact(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    ref = str(sample.reference).strip()
    got = answer.strip()
    if not opts.get("case_sensitive", True):
        ref, got = ref.lower(), got.lower()
    return float(got == ref)


def _contains(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    refs = sample.reference if isinstance(sample.reference, list) else [sample.reference]
    got = f" {_norm(answer)} "
    return float(any(f" {_norm(str(r))} " in got for r in refs if _norm(str(r))))


def _regex(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    from tierroute._regex import compile_safe

    pattern = opts.get("pattern", sample.reference)
    if not isinstance(pattern, str):
        raise ConfigError(f"sample {sample.id!r}: the regex scorer needs a 'pattern' string", path="scorer.pattern")
    flags = re.IGNORECASE if "i" in str(opts.get("flags", "")) else 0
    try:
        rx = compile_safe(pattern, flags)
    except (re.error, ValueError) as exc:
        raise ConfigError(f"sample {sample.id!r}: bad pattern {pattern!r}: {exc}", path="scorer.pattern") from None
    return float(rx.search(answer) is not None)


def _to_number(token: str) -> float | None:
    t = token.replace("$", "").replace(",", "")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            return float(num) / float(den)
        return float(t)
    except (ValueError, ZeroDivisionError):
        return None


def _numeric(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    ref = _to_number(str(sample.reference)) if not isinstance(sample.reference, (int, float)) else sample.reference
    if ref is None:
        raise ConfigError(f"sample {sample.id!r}: numeric scorer needs a number reference", path="reference")
    found = [n for n in (_to_number(t) for t in _NUMBER.findall(answer)) if n is not None]
    if not found:
        return 0.0
    rel, abs_ = float(opts.get("rel_tol", 1e-6)), float(opts.get("abs_tol", 1e-9))
    return float(math.isclose(found[-1], float(ref), rel_tol=rel, abs_tol=abs_))


def _json(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    try:
        json.loads(_strip_fence(answer))
    except ValueError:
        return 0.0
    return 1.0


def _json_schema(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    import jsonschema

    schema = opts.get("schema", sample.reference)
    if not isinstance(schema, Mapping):
        raise ConfigError(f"sample {sample.id!r}: json_schema needs a 'schema' mapping", path="scorer.schema")
    try:
        jsonschema.validate(json.loads(_strip_fence(answer)), dict(schema))
    except (ValueError, jsonschema.ValidationError):
        return 0.0
    return 1.0


_ROUGE: Any = None


def _rouge_l(answer: str, sample: Sample, opts: Mapping[str, Any]) -> float:
    global _ROUGE
    if _ROUGE is None:
        try:
            from rouge_score import rouge_scorer  # type: ignore[import-untyped]
        except ImportError as exc:
            from tierroute.errors import MissingDependencyError

            raise MissingDependencyError("rouge_score", "bench", "the rouge_l scorer") from exc
        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    refs = sample.reference if isinstance(sample.reference, list) else [sample.reference]
    return max(float(_ROUGE.score(str(r), answer)["rougeL"].fmeasure) for r in refs)


BUILTIN: dict[str, Callable[[str, Sample, Mapping[str, Any]], float]] = {
    "exact": _exact,
    "contains": _contains,
    "regex": _regex,
    "numeric": _numeric,
    "json": _json,
    "json_schema": _json_schema,
    "rouge_l": _rouge_l,
}


def parse_rating(text: str, scale: int = 10) -> float | None:
    """A 1..``scale`` rating from a judge reply: ``[[7]]``, ``{"score": 7}``, ``Rating: 7/10``, ``7 out of 10``.

    Returns None when no rating in range is found (the caller decides what that means).
    """
    t = _strip_fence(text)
    try:
        data = json.loads(t)
        if isinstance(data, Mapping):
            for key in ("score", "rating", "grade"):
                v = data.get(key)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= scale:
                    return float(v)
    except ValueError:
        pass
    patterns = (
        r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]",
        r"(?:score|rating|grade)\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)",
        rf"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*{scale}\b",
    )
    for pat in patterns:
        for m in re.finditer(pat, t, re.IGNORECASE):
            v = float(m.group(1))
            if 1 <= v <= scale:
                return v
    lone = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*\.?\s*", t)
    if lone and 1 <= float(lone.group(1)) <= scale:
        return float(lone.group(1))
    return None


def parse_verdict(text: str) -> str | None:
    """``A``, ``B`` or ``tie`` from a pairwise judge reply (``[[A]]``, ``Verdict: B``, ``[[C]]`` = tie)."""
    m = re.search(r"\[\[\s*(A|B|C|tie)\s*\]\]", text, re.IGNORECASE) or re.search(
        r"(?:verdict|winner|better)\s*[:=]?\s*\**\s*(A|B|tie)\b", text, re.IGNORECASE
    )
    if not m:
        return None
    v = m.group(1).upper()
    return "tie" if v in ("C", "TIE") else v


_RUBRIC = (
    "You are grading an AI assistant's answer. Rate it from 1 (useless or wrong) to 10 (fully correct and "
    "helpful) by this rubric: {rubric}\n{reference}\n[Question]\n{question}\n\n[Answer]\n{answer}\n\n"
    "Reply with a one-sentence reason, then the rating in double brackets, e.g. [[7]]."
)
_PAIRWISE = (
    "Compare two answers to the question. Judge correctness and helpfulness only; the order of the answers "
    "and their length must not matter.\n[Question]\n{question}\n\n[Answer A]\n{a}\n\n[Answer B]\n{b}\n\n"
    "Reply with a one-sentence reason, then [[A]] if A is better, [[B]] if B is better, or [[C]] for a tie."
)


async def _judge(answer: str, sample: Sample, opts: Mapping[str, Any], judge: JudgeFn | None) -> float:
    if judge is None:
        raise ConfigError(
            f"sample {sample.id!r} uses the judge scorer but no judge model is set",
            path="scorer",
            hint="pass --judge TIER to tierroute bench",
        )
    question = sample.text[:6000]
    if opts.get("mode", "rubric") == "pairwise":
        if sample.reference is None:
            raise ConfigError(f"sample {sample.id!r}: pairwise judging needs a reference answer", path="reference")
        ref = str(sample.reference)[:6000]
        first = parse_verdict(await judge(_PAIRWISE.format(question=question, a=answer[:6000], b=ref)))
        second = parse_verdict(await judge(_PAIRWISE.format(question=question, a=ref, b=answer[:6000])))
        points = {"A": 1.0, "tie": 0.5, "B": 0.0, None: 0.5}
        return (points[first] + (1.0 - points[second])) / 2
    reference = f"[Reference answer]\n{str(sample.reference)[:6000]}\n" if sample.reference is not None else ""
    rubric = str(opts.get("rubric", "Is the answer correct, complete and helpful?"))
    reply = await judge(_RUBRIC.format(rubric=rubric, reference=reference, question=question, answer=answer[:6000]))
    rating = parse_rating(reply)
    return 0.0 if rating is None else (rating - 1.0) / 9.0


def resolve_scorer(name: str) -> Callable[..., Any]:
    """The function behind a scorer name (``module:function`` imported).

    Raises:
        ConfigError: Unknown name, or a ``module:function`` that cannot be imported.
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if name == "judge":
        return _judge
    if ":" in name:
        mod, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import scorer {name!r}: {exc}", path="scorer") from None
        if not callable(fn):
            raise ConfigError(f"scorer {name!r} is not callable", path="scorer")
        return fn  # type: ignore[no-any-return]
    raise ConfigError(
        f"unknown scorer {name!r}",
        path="scorer",
        hint=f"use one of {', '.join([*BUILTIN, 'judge'])} or module:function",
    )


async def score_answer(answer: str, sample: Sample, judge: JudgeFn | None = None) -> float:
    """Score one answer with its sample's scorer; the result is clipped to [0, 1].

    Raises:
        ConfigError: The scorer is unknown or misconfigured, or returns something that is not a number.
    """
    name, opts = sample.scorer_name, sample.scorer_options
    fn = resolve_scorer(name)
    if name == "judge":
        value: Any = await _judge(answer, sample, opts, judge)
    elif name in BUILTIN:
        value = fn(answer, sample, opts)
    else:
        value = fn(answer, sample)
        if inspect.isawaitable(value):
            value = await value
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"scorer {name!r} returned {value!r} for {sample.id!r}; it must return a number or a bool")
    return min(1.0, max(0.0, float(value)))
