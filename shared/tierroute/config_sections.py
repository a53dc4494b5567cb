"""The sections of the tierroute config below the top level: routing, cascade, state, ledger, budgets, metrics.

Every model here rejects unknown keys, so a typo is a :class:`~tierroute.errors.ConfigError` with its path.
:class:`~tierroute.config.RouterConfig` assembles them; import them from :mod:`tierroute.config`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from tierroute._regex import UnsafePatternError, compile_safe


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_pattern(pattern: str) -> str:
    try:
        compile_safe(pattern)
    except UnsafePatternError as exc:
        raise ValueError(f"{exc}; rewrite it without a quantifier inside a quantified group") from None
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from None
    return pattern


class RuleConfig(_Strict):
    """One rule of the rules layer. All conditions given must hold; the first matching rule wins."""

    name: str = Field(min_length=1)
    tier: str
    keywords: list[str] = Field(default_factory=list)
    regex: str | None = None
    task_types: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    tools: bool | None = None
    images: bool | None = None
    scope: Literal["last_user", "all"] | None = None

    @field_validator("regex")
    @classmethod
    def _regex_ok(cls, v: str | None) -> str | None:
        return None if v is None else _check_pattern(v)

    @field_validator("keywords")
    @classmethod
    def _keywords_ok(cls, v: list[str]) -> list[str]:
        if any(not k.strip() for k in v):
            raise ValueError("keywords must not be empty strings")
        return v

    @model_validator(mode="after")
    def _has_condition(self) -> RuleConfig:
        if not (
            self.keywords
            or self.regex
            or self.task_types
            or self.tags
            or self.metadata
            or self.min_tokens is not None
            or self.max_tokens is not None
            or self.tools is not None
            or self.images is not None
        ):
            raise ValueError(
                f"rule {self.name!r} has no condition; give at least one of keywords, regex, task_types, tags, "
                "metadata, min_tokens, max_tokens, tools, images"
            )
        if self.min_tokens is not None and self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is greater than max_tokens ({self.max_tokens})")
        return self


class OverrideConfig(_Strict):
    """Explicit tier override from request metadata, honoured only for allow-listed tiers."""

    key: str = "tier"
    allow: list[str] = Field(default_factory=list)


class EncoderConfig(_Strict):
    """Embedding backend of the semantic layer."""

    type: Literal["local", "litellm"] = "local"
    model: str = "all-MiniLM-L6-v2"
    api_key: SecretStr | None = None
    api_base: str | None = None
    cache_dir: str | None = None
    query_cache_size: int = Field(default=4096, ge=0)
    max_chars: int = Field(default=2000, ge=16)


class SemanticConfig(_Strict):
    """Utterance routes on semantic-router: each tier's example prompts, with thresholds."""

    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    thresholds: dict[str, float] = Field(default_factory=dict)
    routes: dict[str, list[str]] = Field(default_factory=dict)
    top_k: int = Field(default=5, ge=1, le=100)
    aggregation: Literal["mean", "max"] = "mean"
    truncate: Literal["head", "tail", "head_tail"] = "head_tail"

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: t for k, t in v.items() if not 0.0 <= t <= 1.0}
        if bad:
            raise ValueError(f"thresholds must be within [0, 1]; got {bad}")
        return v

    @field_validator("routes")
    @classmethod
    def _routes_nonempty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for tier, utterances in v.items():
            if not utterances or any(not isinstance(u, str) or not u.strip() for u in utterances):
                raise ValueError(f"route {tier!r} needs at least one non-empty utterance")
        return v


class ClassifierConfig(_Strict):
    """The trained complexity classifier (artifact path and decision target)."""

    path: str
    target: dict[str, float] = Field(default_factory=dict)
    enabled: bool = True


class RoutingConfig(_Strict):
    """The decision layers: override, rules, semantic, classifier."""

    scope: Literal["last_user", "all"] = "last_user"
    override: OverrideConfig | None = None
    rules: list[RuleConfig] = Field(default_factory=list)
    semantic: SemanticConfig | None = None
    classifier: ClassifierConfig | None = None


class RetryConfig(_Strict):
    """Retries on the same tier per failure kind."""

    rate_limit: int = Field(default=2, ge=0, le=20)
    timeout: int = Field(default=1, ge=0, le=20)
    server_error: int = Field(default=1, ge=0, le=20)
    connection: int = Field(default=1, ge=0, le=20)
    truncated_stream: int = Field(default=1, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0.0, le=60.0)
    max_backoff_s: float = Field(default=10.0, ge=0.0, le=600.0)


class CircuitBreakerConfig(_Strict):
    """``allowed_fails`` failures within ``window_s`` open a tier's circuit for ``cooldown_s``."""

    allowed_fails: int = Field(default=3, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=60.0, gt=0)


class EscalationBudgetConfig(_Strict):
    """Caps escalations (fallbacks to pricier tiers) per sliding window."""

    max_share: float | None = Field(default=None, ge=0.0, le=1.0)
    max_spend_usd: float | None = Field(default=None, ge=0.0)
    window_s: float = Field(default=3600.0, gt=0)
    min_requests: int = Field(default=20, ge=0)


class AlertsConfig(_Strict):
    """Alert when the fallback rate over ``window_s`` exceeds ``fallback_rate``."""

    fallback_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    escalation_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    window_s: float = Field(default=900.0, gt=0)
    min_requests: int = Field(default=20, ge=1)


class CascadeConfig(_Strict):
    """How a decision is executed: retries, fallbacks, escalation bounds, acceptance checks."""

    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    on_content_policy: str = "stop"
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    max_escalations: int = Field(default=1, ge=0, le=10)
    escalation_budget: EscalationBudgetConfig | None = None
    accept: list[str | dict[str, Any]] = Field(default_factory=lambda: list[str | dict[str, Any]](["non_empty"]))
    alerts: AlertsConfig | None = None
    timeout_s: float = Field(default=60.0, gt=0)


class StateConfig(_Strict):
    """Where shared state (circuit breakers, budgets, windows) lives."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = None
    prefix: str = "tierroute"

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("state.backend is redis but no url is given; add url: redis://host:6379/0")
        return self


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class LedgerConfig(_Strict):
    """Where spend records go (one row per request) and how they are written.

    The ledger is on when ``url`` is set: ``sqlite:///path/to/file.db`` (WAL journal) or a PostgreSQL URL
    (``postgresql://user@host/db``; SQLAlchemy with the psycopg 3 driver). Rows are written off the request
    path by a background thread, at least every ``flush_interval_ms`` or ``batch_size`` rows, and flushed
    when the router closes or the process exits (see :mod:`tierroute.ledger` for the loss window).
    """

    url: str | None = None
    store_prompt_text: bool = False
    enabled: bool = True
    table: str = "tierroute_requests"
    db_schema: str | None = None
    flush_interval_ms: int = Field(default=200, ge=1, le=60_000)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    max_queue: int = Field(default=100_000, ge=1)
    on_full: Literal["block", "drop"] = "block"
    retention_days: float | None = Field(default=None, gt=0)
    key_field: str = "key"
    user_field: str = "user"

    @field_validator("url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = v.split("://", 1)[0].lower() if "://" in v else ""
        if scheme not in ("sqlite", "postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(
                f"ledger url must start with sqlite:/// or postgresql://, got scheme {scheme or '(none)'!r}; "
                "e.g. sqlite:///tierroute.db or postgresql://user@127.0.0.1:5432/db"
            )
        if (scheme == "sqlite" and v.rstrip("/") in ("sqlite:", "sqlite:/")) or v.endswith(":memory:"):
            raise ValueError(
                "an in-memory SQLite ledger is lost with the process and not shared with the writer thread; "
                "give a file: sqlite:///tierroute.db"
            )
        return v

    @field_validator("table", "db_schema")
    @classmethod
    def _ident_ok(cls, v: str | None) -> str | None:
        if v is not None and not _IDENT.match(v):
            raise ValueError(f"{v!r} is not a plain SQL identifier; use letters, digits and _ (max 63)")
        return v


class BudgetLimitConfig(_Strict):
    """One spend limit: ``usd`` per calendar ``window`` (UTC) for everything, one key, each key, or one tier.

    ``scope: key`` with no ``key`` limits every key separately (requests without a key share the key ``-``).
    At ``downgrade_at`` of the limit (a fraction; 1.0 = only at the limit) requests are downgraded to the
    cheapest tier that fits; at the limit they are downgraded (only zero-cost tiers still fit a global or key
    limit; a cheaper tier fits a tier limit) or refused, as ``on_limit`` says.
    """

    scope: Literal["global", "key", "tier"]
    window: Literal["hour", "day", "month"]
    usd: float = Field(ge=0)
    key: str | None = None
    tier: str | None = None
    on_limit: Literal["downgrade", "refuse"] | None = None
    downgrade_at: float = Field(default=1.0, gt=0, le=1.0)

    @model_validator(mode="after")
    def _scope_fields(self) -> BudgetLimitConfig:
        if self.scope == "tier" and not self.tier:
            raise ValueError("a tier limit needs tier: <name>")
        if self.scope != "tier" and self.tier is not None:
            raise ValueError(f"tier is only for scope: tier (this limit has scope: {self.scope})")
        if self.scope != "key" and self.key is not None:
            raise ValueError(f"key is only for scope: key (this limit has scope: {self.scope})")
        return self

    @property
    def label(self) -> str:
        """``global``, ``key:<key>``, ``key:*`` or ``tier:<tier>``, then ``/window``."""
        what = {"global": "global", "key": f"key:{self.key or '*'}", "tier": f"tier:{self.tier}"}[self.scope]
        return f"{what}/{self.window}"


class SpendAlertConfig(_Strict):
    """Alert (callbacks + log) when spend over the last ``window_s`` runs faster than ``usd_per_hour``."""

    usd_per_hour: float = Field(gt=0)
    window_s: float = Field(default=900.0, gt=0)


class BudgetsConfig(_Strict):
    """Spend limits and the spend-rate alert (see :mod:`tierroute.budgets`).

    Each request reserves its maximum cost before the call (atomically, across processes when
    ``state.backend`` is redis) and settles with its actual cost after it.
    """

    limits: list[BudgetLimitConfig] = Field(default_factory=list)
    on_limit: Literal["downgrade", "refuse"] = "downgrade"
    key_field: str = "key"
    max_completion_tokens: int = Field(default=4096, ge=1)
    prompt_token_margin: float = Field(default=1.25, ge=1.0, le=10.0)
    store: Literal["state", "memory"] = "state"
    spend_alert: SpendAlertConfig | None = None


class MetricsConfig(_Strict):
    """Prometheus metrics and OpenTelemetry spans per request (each needs its optional package)."""

    prometheus: bool = True
    otel: bool = False
    namespace: str = "tierroute"

    @field_validator("namespace")
    @classmethod
    def _ns_ok(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"{v!r} is not a valid metric namespace; use letters, digits and _")
        return v
