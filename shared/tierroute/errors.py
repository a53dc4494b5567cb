"""tierroute's error tree.

Every error tierroute raises on purpose derives from :class:`TierRouteError`::

    TierRouteError
    ├── ConfigError (also ValueError)              field path + hint
    ├── InvalidRequestError (also ValueError)      a request tierroute cannot route (no messages, bad roles)
    ├── MissingDependencyError (also ImportError)  names the extra to install
    ├── RoutingError                               no eligible tier, policy failure
    ├── BudgetExceededError                        .spent, .limit, .scope
    ├── ContentPolicyError                         the provider refused; not escalated
    └── CascadeExhaustedError                      .trace; __cause__ = last provider error
        ├── EscalationBudgetError                  the window's escalation budget is spent
        └── StreamInterruptedError                 a stream failed after tokens; .partial_text

Backend errors are mapped to the most specific of these with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierroute.types import RouteTrace

__all__ = [
    "BudgetExceededError",
    "CascadeExhaustedError",
    "ConfigError",
    "ConfigProblem",
    "ContentPolicyError",
    "EscalationBudgetError",
    "InvalidRequestError",
    "MissingDependencyError",
    "RoutingError",
    "StreamInterruptedError",
    "TierRouteError",
]


class TierRouteError(Exception):
    """Base class of every error tierroute raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration.

    Attributes:
        path: Dotted field path, e.g. ``routing.rules[2].regex``.
        message: What is wrong.
        hint: How to fix it.
    """

    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(TierRouteError, ValueError):
    """The configuration is invalid.

    Carries every problem found, not only the first, so ``tierroute validate`` can print them all.

    Attributes:
        problems: The problems, each with a field path and a hint.
    """

    def __init__(self, problems: list[ConfigProblem] | str, *, path: str = "", hint: str = "") -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(path=path, message=problems, hint=hint)]
        self.problems: list[ConfigProblem] = problems
        if len(problems) == 1:
            text = f"invalid tierroute config: {problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            text = f"invalid tierroute config ({len(problems)} problems):\n{lines}"
        super().__init__(text)

    @property
    def path(self) -> str:
        """Field path of the first problem."""
        return self.problems[0].path if self.problems else ""

    @property
    def hint(self) -> str:
        """Hint of the first problem."""
        return self.problems[0].hint if self.problems else ""


class InvalidRequestError(TierRouteError, ValueError):
    """A request cannot be routed: no messages, an unknown role, malformed content."""


class MissingDependencyError(TierRouteError, ImportError):
    """An optional dependency is not installed.

    Attributes:
        package: The missing import name.
        extra: The ``tierroute`` extra that installs it.
    """

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        why = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"{package} is not installed{why}; install it with: pip install 'tierroute[{extra}]'",
            name=package,
        )


class RoutingError(TierRouteError):
    """No tier could be chosen: no eligible tier, or a routing policy failed."""


class BudgetExceededError(TierRouteError):
    """A spend limit was reached and the configured action is to refuse.

    Attributes:
        spent: Spend in the window so far, in USD.
        limit: The limit, in USD.
        scope: What the limit applies to, e.g. ``key:team-a`` or ``tier:premium``.
    """

    def __init__(self, spent: float, limit: float, scope: str) -> None:
        self.spent = spent
        self.limit = limit
        self.scope = scope
        super().__init__(f"budget exceeded for {scope}: spent ${spent:.6f} of ${limit:.6f}")


class ContentPolicyError(TierRouteError):
    """The provider refused the request on content-policy grounds; it is not escalated to a pricier tier.

    Attributes:
        trace: The trace of the request up to the refusal, when known.
    """

    def __init__(self, message: str, trace: RouteTrace | None = None) -> None:
        self.trace = trace
        super().__init__(message)


class CascadeExhaustedError(TierRouteError):
    """Every attempt the cascade was allowed to make failed.

    Attributes:
        trace: Every attempt made, with its failure kind. ``__cause__`` is the last provider error.
    """

    def __init__(self, message: str, trace: RouteTrace | None = None, **extra: Any) -> None:
        self.trace = trace
        self.extra = extra
        super().__init__(message)


class EscalationBudgetError(CascadeExhaustedError):
    """Escalation was needed but the escalation budget for the window is spent."""


class StreamInterruptedError(CascadeExhaustedError):
    """A stream failed after tokens were sent; nothing is retried (that would duplicate tokens).

    Attributes:
        partial_text: Everything streamed before the failure.
    """

    def __init__(self, message: str, *, partial_text: str, trace: RouteTrace | None = None) -> None:
        super().__init__(message, trace)
        self.partial_text = partial_text
