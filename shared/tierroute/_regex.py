"""Regex helpers: compile user patterns and reject the ones that can backtrack catastrophically."""

from __future__ import annotations

import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
else:  # pragma: no cover - Python 3.10
    import sre_constants as _c
    import sre_parse as _p

__all__ = ["UnsafePatternError", "compile_safe", "keyword_pattern"]

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, *([_c.POSSESSIVE_REPEAT] if hasattr(_c, "POSSESSIVE_REPEAT") else [])}


class UnsafePatternError(ValueError):
    """A pattern nests unbounded quantifiers, e.g. ``(a+)+``, and can take exponential time on some inputs."""


def _children(op: Any, av: Any) -> list[Any]:
    if op in _REPEATS:
        return [av[2]]
    if op is _c.SUBPATTERN:
        return [av[-1]]
    if op is _c.BRANCH:
        return list(av[1])
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if hasattr(_c, "ATOMIC_GROUP") and op is _c.ATOMIC_GROUP:
        return [av]
    if op is _c.GROUPREF_EXISTS:
        return [x for x in av[1:] if x is not None]
    return []


def _has_repeat(sub: Any, unbounded_only: bool) -> bool:
    for op, av in sub:
        if op in _REPEATS and (not unbounded_only or av[1] is _c.MAXREPEAT or av[1] > 16):
            return True
        if any(_has_repeat(child, unbounded_only) for child in _children(op, av)):
            return True
    return False


def _nested_unbounded(sub: Any) -> bool:
    for op, av in sub:
        if op in _REPEATS and (av[1] is _c.MAXREPEAT or av[1] > 16) and _has_repeat(av[2], unbounded_only=True):
            return True
        if any(_nested_unbounded(child) for child in _children(op, av)):
            return True
    return False


def compile_safe(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """Compile a user pattern, rejecting nested unbounded quantifiers.

    Raises:
        re.error: The pattern does not compile.
        UnsafePatternError: The pattern nests unbounded quantifiers (catastrophic backtracking).
    """
    compiled = re.compile(pattern, flags)
    if _nested_unbounded(_p.parse(pattern, flags)):
        raise UnsafePatternError(
            f"pattern {pattern!r} nests unbounded quantifiers (like (a+)+), which can backtrack catastrophically"
        )
    return compiled


def keyword_pattern(keywords: list[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any keyword as whole words (multi-word keywords allowed)."""
    alts = sorted({re.escape(k.strip()).replace(r"\ ", r"\s+") for k in keywords if k.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)
