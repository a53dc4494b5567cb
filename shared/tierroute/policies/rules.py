"""The rules layer: keywords, regex, task tags, metadata, token counts, tools and images. Fast and free.

Rules are tried in order; the first whose conditions all hold decides. An allow-listed override in request
metadata (``{"tier": "premium"}``) is honoured before any rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tierroute._regex import compile_safe, keyword_pattern
from tierroute.config import RoutingConfig, RuleConfig
from tierroute.tokens import count_tokens, token_bounds
from tierroute.types import LayerVerdict, RouteRequest, Scope

__all__ = ["CompiledRule", "RulesPolicy"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its patterns compiled once."""

    rule: RuleConfig
    scope: Scope
    keywords: re.Pattern[str] | None
    regex: re.Pattern[str] | None
    task_types: frozenset[str]
    tags: frozenset[str]
    metadata: tuple[tuple[str, frozenset[str]], ...]


def _as_set(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(str(v) for v in value)
    return frozenset({str(value)})


class _Texts:
    """Per-request lazy views: text per scope and its token count, each computed at most once."""

    __slots__ = ("_request", "_texts", "_tokens")

    def __init__(self, request: RouteRequest) -> None:
        self._request = request
        self._texts: dict[str, str] = {}
        self._tokens: dict[str, int] = {}

    def text(self, scope: Scope) -> str:
        t = self._texts.get(scope)
        if t is None:
            t = self._texts[scope] = self._request.text(scope)
        return t

    def tokens_at_least(self, scope: Scope, n: int) -> bool:
        text = self.text(scope)
        lo, hi = token_bounds(text)
        if lo >= n:
            return True
        if hi < n:
            return False
        return self.tokens(scope) >= n

    def tokens_at_most(self, scope: Scope, n: int) -> bool:
        text = self.text(scope)
        lo, hi = token_bounds(text)
        if hi <= n:
            return True
        if lo > n:
            return False
        return self.tokens(scope) <= n

    def tokens(self, scope: Scope) -> int:
        c = self._tokens.get(scope)
        if c is None:
            c = self._tokens[scope] = count_tokens(self.text(scope))
        return c


class RulesPolicy:
    """First-match rules plus the allow-listed override.

    Args:
        routing: The ``routing`` section of the config.
    """

    layer = "rules"

    def __init__(self, routing: RoutingConfig) -> None:
        self.routing = routing
        self.rules = [self._compile(r, routing.scope) for r in routing.rules]
        self.override = routing.override

    @staticmethod
    def _compile(rule: RuleConfig, default_scope: Scope) -> CompiledRule:
        return CompiledRule(
            rule=rule,
            scope=rule.scope or default_scope,
            keywords=keyword_pattern(rule.keywords) if rule.keywords else None,
            regex=compile_safe(rule.regex) if rule.regex else None,
            task_types=frozenset(rule.task_types),
            tags=frozenset(rule.tags),
            metadata=tuple((k, _as_set(v)) for k, v in rule.metadata.items()),
        )

    def check_override(self, request: RouteRequest) -> LayerVerdict | None:
        """The explicit tier in request metadata, if the config allows it; None when absent.

        A requested tier that is not allow-listed is reported (tier None) and ignored.
        """
        if self.override is None:
            return None
        wanted = request.metadata.get(self.override.key)
        if wanted is None:
            return None
        if isinstance(wanted, str) and wanted in self.override.allow:
            return LayerVerdict("override", str(wanted), 1.0, f"metadata {self.override.key}={wanted!r} (allow-listed)")
        return LayerVerdict(
            "override",
            None,
            None,
            f"metadata {self.override.key}={wanted!r} ignored: not in routing.override.allow {self.override.allow}",
        )

    def decide(self, request: RouteRequest) -> LayerVerdict:
        """The first matching rule's tier, or an abstaining verdict (tier None)."""
        texts = _Texts(request)
        meta: Mapping[str, Any] = request.metadata
        for compiled in self.rules:
            why = self._match(compiled, request, meta, texts)
            if why is not None:
                return LayerVerdict(self.layer, compiled.rule.tier, 1.0, f"rule {compiled.rule.name!r}: {why}")
        return LayerVerdict(self.layer, None, None, f"no rule matched ({len(self.rules)} rules)")

    @staticmethod
    def _match(c: CompiledRule, request: RouteRequest, meta: Mapping[str, Any], texts: _Texts) -> str | None:
        rule = c.rule
        reasons: list[str] = []
        if rule.tools is not None:
            if request.has_tools != rule.tools:
                return None
            reasons.append("tools present" if rule.tools else "no tools")
        if rule.images is not None:
            if request.has_images != rule.images:
                return None
            reasons.append("images present" if rule.images else "no images")
        if c.task_types:
            hit = c.task_types & _as_set(meta.get("task_type"))
            if not hit:
                return None
            reasons.append(f"task_type={sorted(hit)[0]!r}")
        if c.tags:
            hit = c.tags & _as_set(meta.get("tags"))
            if not hit:
                return None
            reasons.append(f"tag {sorted(hit)[0]!r}")
        for key, allowed in c.metadata:
            hit = allowed & _as_set(meta.get(key))
            if not hit:
                return None
            reasons.append(f"{key}={sorted(hit)[0]!r}")
        if c.keywords is not None:
            m = c.keywords.search(texts.text(c.scope))
            if m is None:
                return None
            reasons.append(f"keyword {m.group(0).lower()!r}")
        if c.regex is not None:
            m = c.regex.search(texts.text(c.scope))
            if m is None:
                return None
            reasons.append(f"regex matched {m.group(0)[:40]!r}")
        if rule.min_tokens is not None:
            if not texts.tokens_at_least(c.scope, rule.min_tokens):
                return None
            reasons.append(f"at least {rule.min_tokens} tokens")
        if rule.max_tokens is not None:
            if not texts.tokens_at_most(c.scope, rule.max_tokens):
                return None
            reasons.append(f"at most {rule.max_tokens} tokens")
        return ", ".join(reasons)
