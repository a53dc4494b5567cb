"""The YAML configuration: a superset of LiteLLM's ``model_list`` config.

``RouterConfig.from_yaml(path)`` / ``RouterConfig.from_dict(data)`` validate everything and raise
:class:`~tierroute.errors.ConfigError` listing every problem with its field path
(``routing.rules[2].regex``) and a hint. tierroute's own sections reject unknown keys; ``litellm_params``,
``model_info`` and LiteLLM's own sections (``router_settings``, ``litellm_settings``, ``general_settings``)
pass through to LiteLLM as they are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tierroute._regex import UnsafePatternError, compile_safe
from tierroute.errors import ConfigError, ConfigProblem

__all__ = [
    "BudgetLimitConfig",
    "BudgetsConfig",
    "CascadeConfig",
    "ClassifierConfig",
    "Deployment",
    "EncoderConfig",
    "LedgerConfig",
    "MetricsConfig",
    "OverrideConfig",
    "RouterConfig",
    "RoutingConfig",
    "RuleConfig",
    "SemanticConfig",
    "SpendAlertConfig",
    "StateConfig",
]

ENV_PREFIX = "os.environ/"
_SECRET_KEY = re.compile(r"(api_key|secret|token|password|credentials)", re.IGNORECASE)
LITELLM_SECTIONS = ("router_settings", "litellm_settings", "general_settings", "environment_variables")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def resolve_secret(value: SecretStr | str | None) -> str | None:
    """The plain value of a secret, reading ``os.environ/NAME`` references from the environment.

    Raises:
        ConfigError: The referenced environment variable is not set.
    """
    if value is None:
        return None
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw.startswith(ENV_PREFIX):
        name = raw[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise ConfigError(
                f"environment variable {name} is not set",
                path="model_list[].litellm_params",
                hint=f"export {name}=... or replace '{raw}' with the value",
            )
        return os.environ[name]
    return raw


class LiteLLMParams(BaseModel):
    """``litellm_params`` of a deployment: passed to LiteLLM as is; secret-looking keys are ``SecretStr``."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_base: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _wrap_secrets(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {
                k: SecretStr(v) if isinstance(v, str) and _SECRET_KEY.search(k) and k != "api_key" else v
                for k, v in data.items()
            }
        return data

    def to_litellm(self) -> dict[str, Any]:
        """Plain dict for ``litellm.Router``, secrets revealed (never log it)."""
        out: dict[str, Any] = {}
        for key, value in {**self.__dict__, **(self.__pydantic_extra__ or {})}.items():
            if value is None:
                continue
            out[key] = resolve_secret(value) if isinstance(value, SecretStr) else value
        return out

    def missing_env(self) -> list[str]:
        """Names of ``os.environ/NAME`` references whose variable is not set."""
        names = []
        for value in {**self.__dict__, **(self.__pydantic_extra__ or {})}.values():
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if isinstance(raw, str) and raw.startswith(ENV_PREFIX) and raw[len(ENV_PREFIX) :] not in os.environ:
                names.append(raw[len(ENV_PREFIX) :])
        return names


class Deployment(BaseModel):
    """One entry of LiteLLM's ``model_list``; ``model_name`` is the tier (model group) it serves."""

    model_config = ConfigDict(extra="allow")

    model_name: str = Field(min_length=1)
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] | None = None


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


class RouterConfig(BaseModel):
    """The whole configuration. Build it with :meth:`from_yaml` or :meth:`from_dict`.

    Attributes:
        model_list: LiteLLM deployments; each ``model_name`` is a tier (model group).
        tiers: Tier names, cheapest first.
        default_tier: Tier used when no layer decides (defaults to the most capable tier, so an
            undecided request never loses quality).
    """

    model_config = ConfigDict(extra="forbid")

    model_list: list[Deployment] = Field(default_factory=list)
    tiers: list[str] = Field(min_length=1)
    default_tier: str | None = None
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    budgets: BudgetsConfig | None = None
    metrics: MetricsConfig | None = None
    router_settings: dict[str, Any] = Field(default_factory=dict)
    litellm_settings: dict[str, Any] = Field(default_factory=dict)
    general_settings: dict[str, Any] = Field(default_factory=dict)
    environment_variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, v: list[str]) -> list[str]:
        dupes = sorted({t for t in v if v.count(t) > 1})
        if dupes:
            raise ValueError(f"tiers must be unique; repeated: {dupes}")
        return v

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> RouterConfig:
        external = set((info.context or {}).get("external_tiers", ()))
        problems = cross_check(self, external)
        if problems:
            raise _CrossCheckFailed(problems)
        if self.default_tier is None:
            self.default_tier = self.tiers[-1]
        return self

    # ---- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, external_tiers: set[str] | frozenset[str] = frozenset()) -> RouterConfig:
        """Validate a config mapping.

        Args:
            data: The parsed YAML.
            external_tiers: Tiers served by objects passed in code (adapters), which need no deployment.

        Raises:
            ConfigError: Listing every problem found, each with its field path and a hint.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"the config must be a mapping of sections, got {type(data).__name__}",
                hint="start from examples/tierroute.yaml",
            )
        try:
            return cls.model_validate(dict(data), context={"external_tiers": set(external_tiers)})
        except ValidationError as exc:
            raise ConfigError(_problems_from(exc)) from None

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], *, external_tiers: set[str] | frozenset[str] = frozenset()
    ) -> RouterConfig:
        """Read and validate a YAML file.

        Raises:
            ConfigError: The file is missing, is not YAML, or is invalid.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {str(p)!r} does not exist", hint="check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {str(p)!r}: {exc}") from None
        return cls.from_yaml_text(text, source=str(p), external_tiers=external_tiers)

    @classmethod
    def from_yaml_text(
        cls, text: str, *, source: str = "<string>", external_tiers: set[str] | frozenset[str] = frozenset()
    ) -> RouterConfig:
        """Parse and validate YAML text.

        Raises:
            ConfigError: The text is not YAML, or is invalid.
        """
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"{source} is not valid YAML{where}: {problem}", hint="check indentation and quoting"
            ) from None
        if data is None:
            raise ConfigError(f"{source} is empty", hint="start from examples/tierroute.yaml")
        return cls.from_dict(data, external_tiers=external_tiers)

    # ---- helpers --------------------------------------------------------------------------------

    def deployments(self, tier: str) -> list[Deployment]:
        """The deployments serving a tier."""
        return [d for d in self.model_list if d.model_name == tier]

    def litellm_model_list(self) -> list[dict[str, Any]]:
        """``model_list`` for ``litellm.Router`` with secrets resolved (never log it)."""
        out = []
        for d in self.model_list:
            entry: dict[str, Any] = {
                **(d.__pydantic_extra__ or {}),
                "model_name": d.model_name,
                "litellm_params": d.litellm_params.to_litellm(),
            }
            if d.model_info is not None:
                entry["model_info"] = dict(d.model_info)
            out.append(entry)
        return out

    def warnings(self) -> list[str]:
        """Problems that do not stop loading (e.g. unset ``os.environ/`` variables)."""
        notes = []
        for i, d in enumerate(self.model_list):
            for name in d.litellm_params.missing_env():
                notes.append(f"model_list[{i}].litellm_params: environment variable {name} is not set")
        return notes


class _CrossCheckFailed(ValueError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in graph:
        if state.get(start) is None and (found := visit(start)):
            return found
    return None


def cross_check(cfg: RouterConfig, external_tiers: set[str]) -> list[ConfigProblem]:
    """Checks that span sections: every tier referenced exists and has a deployment, no fallback cycles."""
    problems: list[ConfigProblem] = []
    tiers = set(cfg.tiers)

    def need_tier(path: str, tier: str) -> None:
        if tier not in tiers:
            problems.append(ConfigProblem(path, f"unknown tier {tier!r}", f"use one of {cfg.tiers} or add it to tiers"))

    groups = {d.model_name for d in cfg.model_list}
    for i, tier in enumerate(cfg.tiers):
        if tier not in groups and tier not in external_tiers:
            problems.append(
                ConfigProblem(
                    f"tiers[{i}]",
                    f"tier {tier!r} has no deployment",
                    f"add a model_list entry with model_name: {tier}, or pass a model object for it in code",
                )
            )
    if cfg.default_tier is not None:
        need_tier("default_tier", cfg.default_tier)
    routing = cfg.routing
    for i, rule in enumerate(routing.rules):
        need_tier(f"routing.rules[{i}].tier", rule.tier)
    names = [r.name for r in routing.rules]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append(
                ConfigProblem(
                    f"routing.rules[{i}].name", f"rule name {name!r} is repeated", "give each rule its own name"
                )
            )
    if routing.override is not None:
        for i, tier in enumerate(routing.override.allow):
            need_tier(f"routing.override.allow[{i}]", tier)
    if routing.semantic is not None:
        for tier in routing.semantic.routes:
            need_tier(f"routing.semantic.routes.{tier}", tier)
        for tier in routing.semantic.thresholds:
            need_tier(f"routing.semantic.thresholds.{tier}", tier)
    cascade = cfg.cascade
    for src, targets in cascade.fallbacks.items():
        need_tier(f"cascade.fallbacks.{src}", src)
        for j, dst in enumerate(targets):
            need_tier(f"cascade.fallbacks.{src}[{j}]", dst)
    cycle = _find_cycle(cascade.fallbacks)
    if cycle:
        problems.append(
            ConfigProblem(
                "cascade.fallbacks",
                f"fallback cycle: {' -> '.join(cycle)}",
                "fallbacks must lead to other tiers without coming back",
            )
        )
    if cascade.on_content_policy != "stop" and cascade.on_content_policy not in tiers:
        problems.append(
            ConfigProblem(
                "cascade.on_content_policy",
                f"{cascade.on_content_policy!r} is neither 'stop' nor a tier",
                f"use 'stop' or one of {cfg.tiers}",
            )
        )
    if cfg.budgets is not None:
        seen: dict[tuple[str, str | None, str | None, str], int] = {}
        for i, lim in enumerate(cfg.budgets.limits):
            if lim.tier is not None:
                need_tier(f"budgets.limits[{i}].tier", lim.tier)
            ident = (lim.scope, lim.key, lim.tier, lim.window)
            if ident in seen:
                problems.append(
                    ConfigProblem(
                        f"budgets.limits[{i}]",
                        f"limit {lim.label} repeats budgets.limits[{seen[ident]}]",
                        "keep one limit per scope and window",
                    )
                )
            seen.setdefault(ident, i)
    return problems


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[_has_condition()]",) or part.startswith(("function-", "tagged-union")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


_HINTS = {
    "extra_forbidden": "unknown key (a typo?); remove it or check the spelling against examples/tierroute.yaml",
    "missing": "this field is required",
    "less_than_equal": "lower the value",
    "greater_than_equal": "raise the value",
    "greater_than": "raise the value",
    "too_short": "give at least one entry",
}


def _problems_from(exc: ValidationError) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, _CrossCheckFailed):
            problems.extend(inner.problems)
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {err['loc'][-1]!r}"
        problems.append(ConfigProblem(_loc_path(err["loc"]), msg, _HINTS.get(err["type"], "")))
    return problems
