"""tierroute: send each LLM request to the cheapest model tier that clears the quality bar.

``import tierroute`` is cheap: LiteLLM, semantic-router, torch and the frameworks load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tierroute.errors import (
    BudgetExceededError,
    CascadeExhaustedError,
    ConfigError,
    ContentPolicyError,
    EscalationBudgetError,
    InvalidRequestError,
    MissingDependencyError,
    RoutingError,
    TierRouteError,
)
from tierroute.types import Attempt, FailureKind, RouteDecision, RouteRequest, RouteTrace, Usage

if TYPE_CHECKING:
    from tierroute.config import RouterConfig
    from tierroute.router import TierRouter

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "BudgetExceededError",
    "CascadeExhaustedError",
    "ConfigError",
    "ContentPolicyError",
    "EscalationBudgetError",
    "FailureKind",
    "InvalidRequestError",
    "MissingDependencyError",
    "RouteDecision",
    "RouteRequest",
    "RouteTrace",
    "RouterConfig",
    "RoutingError",
    "TierRouteError",
    "TierRouter",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # pydantic and the router load on first use, keeping `import tierroute` fast.
    if name == "RouterConfig":
        from tierroute.config import RouterConfig

        return RouterConfig
    if name == "TierRouter":
        from tierroute.router import TierRouter

        return TierRouter
    raise AttributeError(f"module 'tierroute' has no attribute {name!r}")
