"""The policy chain: override -> rules -> semantic -> classifier -> ``default_tier``. First confident layer wins."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tierroute.config import RouterConfig
from tierroute.errors import ConfigError
from tierroute.policies.rules import RulesPolicy
from tierroute.types import LayerVerdict, RouteDecision, RouteRequest

__all__ = ["DecisionLayer", "PolicyChain"]


@runtime_checkable
class DecisionLayer(Protocol):
    """A decision layer: returns a verdict whose ``tier`` is None when it abstains."""

    layer: str

    def decide(self, request: RouteRequest) -> LayerVerdict:
        """Verdict for a request."""
        ...

    async def adecide(self, request: RouteRequest) -> LayerVerdict:
        """Async verdict for a request."""
        ...


def _load_classifier(config: RouterConfig) -> DecisionLayer:
    """The classifier layer from ``routing.classifier`` (artifact folder written by ``tierroute train``).

    Raises:
        ConfigError: The artifact is missing, mismatched, or its models are not tiers; or numpy is missing.
    """
    cfg = config.routing.classifier
    assert cfg is not None
    try:
        from tierroute.policies.classifier import ClassifierPolicy, TrainedClassifier
    except ImportError as exc:
        raise ConfigError(
            f"routing.classifier needs numpy: {exc}",
            path="routing.classifier",
            hint="pip install 'tierroute[local]', or set routing.classifier.enabled: false",
        ) from None
    model = TrainedClassifier.load(cfg.path)
    return ClassifierPolicy(model, config.tiers, cfg.target, config.routing.scope)


class PolicyChain:
    """Runs the layers in order.

    Args:
        config: The validated config.
        encoder: A semantic-router ``DenseEncoder`` to use instead of the configured one.
        classifier: A trained classifier layer (fills the classifier slot); without it, ``routing.classifier``
            (when set and enabled) loads the artifact written by ``tierroute train``.
    """

    def __init__(
        self, config: RouterConfig, *, encoder: Any | None = None, classifier: DecisionLayer | None = None
    ) -> None:
        self.config = config
        self.default_tier = config.default_tier or config.tiers[-1]
        self.rules = RulesPolicy(config.routing)
        self.semantic: DecisionLayer | None = None
        if config.routing.semantic is not None and config.routing.semantic.routes:
            from tierroute.policies.semantic import SemanticPolicy

            self.semantic = SemanticPolicy(config.routing.semantic, config.routing.scope, encoder=encoder)
        if classifier is None and config.routing.classifier is not None and config.routing.classifier.enabled:
            classifier = _load_classifier(config)
        self.classifier = classifier

    def _layers(self) -> list[DecisionLayer]:
        return [layer for layer in (self.semantic, self.classifier) if layer is not None]

    def _finish(self, verdicts: list[LayerVerdict]) -> RouteDecision:
        for v in verdicts:
            if v.tier is not None:
                return RouteDecision(v.tier, v.layer, v.score, v.reason, dict(v.candidates), tuple(verdicts))
        verdicts.append(
            LayerVerdict(
                "default", self.default_tier, None, f"no layer was confident; default_tier {self.default_tier!r}"
            )
        )
        return RouteDecision(self.default_tier, "default", None, verdicts[-1].reason, {}, tuple(verdicts))

    def _start(self, request: RouteRequest) -> list[LayerVerdict]:
        verdicts: list[LayerVerdict] = []
        override = self.rules.check_override(request)
        if override is not None:
            verdicts.append(override)
        return verdicts

    def decide(self, request: RouteRequest, *, explain: bool = False) -> RouteDecision:
        """Route a request. With ``explain``, every layer is consulted even after one decided."""
        verdicts = self._start(request)
        decided = any(v.tier for v in verdicts)
        if not decided or explain:
            verdicts.append(self.rules.decide(request))
            decided = decided or verdicts[-1].tier is not None
        for layer in self._layers():
            if decided and not explain:
                break
            verdicts.append(layer.decide(request))
            decided = decided or verdicts[-1].tier is not None
        return self._finish(verdicts)

    async def adecide(self, request: RouteRequest, *, explain: bool = False) -> RouteDecision:
        """Async :meth:`decide`."""
        verdicts = self._start(request)
        decided = any(v.tier for v in verdicts)
        if not decided or explain:
            verdicts.append(self.rules.decide(request))
            decided = decided or verdicts[-1].tier is not None
        for layer in self._layers():
            if decided and not explain:
                break
            verdicts.append(await layer.adecide(request))
            decided = decided or verdicts[-1].tier is not None
        return self._finish(verdicts)
