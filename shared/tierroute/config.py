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
from typing import Any

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

from tierroute.config_sections import (
    AlertsConfig,
    BudgetLimitConfig,
    BudgetsConfig,
    CascadeConfig,
    CircuitBreakerConfig,
    ClassifierConfig,
    EncoderConfig,
    EscalationBudgetConfig,
    LedgerConfig,
    MetricsConfig,
    OverrideConfig,
    RetryConfig,
    RoutingConfig,
    RuleConfig,
    SemanticConfig,
    SpendAlertConfig,
    StateConfig,
)
from tierroute.errors import ConfigError, ConfigProblem

__all__ = [
    "AlertsConfig",
    "BudgetLimitConfig",
    "BudgetsConfig",
    "CascadeConfig",
    "CircuitBreakerConfig",
    "ClassifierConfig",
    "Deployment",
    "EncoderConfig",
    "EscalationBudgetConfig",
    "LedgerConfig",
    "LiteLLMParams",
    "MetricsConfig",
    "OverrideConfig",
    "RetryConfig",
    "RouterConfig",
    "RoutingConfig",
    "RuleConfig",
    "SemanticConfig",
    "SpendAlertConfig",
    "StateConfig",
    "resolve_secret",
]

ENV_PREFIX = "os.environ/"
_SECRET_KEY = re.compile(r"(api_key|secret|token|password|credentials)", re.IGNORECASE)
LITELLM_SECTIONS = ("router_settings", "litellm_settings", "general_settings", "environment_variables")


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
