"""``TierRouter``: the entry point of the core."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from tierroute.config import RouterConfig
from tierroute.policies.chain import DecisionLayer, PolicyChain
from tierroute.types import RouteDecision, RouteRequest

__all__ = ["TierRouter"]

RequestLike = RouteRequest | str | Iterable[Mapping[str, Any]]


class TierRouter:
    """Decides which tier serves each request.

    Args:
        config: A validated :class:`~tierroute.config.RouterConfig`.
        encoder: A semantic-router ``DenseEncoder`` to use instead of the configured encoder.
        classifier: A trained classifier layer for the chain's classifier slot.

    Example:
        >>> router = TierRouter.from_yaml("examples/tierroute.yaml")  # doctest: +SKIP
        >>> router.decide("tl;dr of this thread please").tier  # doctest: +SKIP
        'budget'
    """

    def __init__(
        self, config: RouterConfig, *, encoder: Any | None = None, classifier: DecisionLayer | None = None
    ) -> None:
        self.config = config
        self.chain = PolicyChain(config, encoder=encoder, classifier=classifier)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **kwargs: Any) -> TierRouter:
        """Build a router from a YAML config file.

        Raises:
            ConfigError: The file is missing or invalid.
        """
        return cls(RouterConfig.from_yaml(path), **kwargs)

    @staticmethod
    def _request(
        request: RequestLike, tools: Iterable[Mapping[str, Any]] | None, metadata: Mapping[str, Any] | None
    ) -> RouteRequest:
        if isinstance(request, RouteRequest):
            if tools is None and metadata is None:
                return request
            return RouteRequest.from_messages(
                request.messages,
                tools=tools if tools is not None else request.tools,
                metadata={**request.metadata, **(metadata or {})},
            )
        return RouteRequest.from_messages(request, tools=tools, metadata=metadata)

    def decide(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> RouteDecision:
        """Choose a tier for a prompt, a message list or a :class:`RouteRequest`.

        Raises:
            InvalidRequestError: The messages cannot be routed (empty, bad roles, malformed content).
            RoutingError: A decision layer failed.
        """
        return self.chain.decide(self._request(request, tools, metadata), explain=explain)

    async def adecide(
        self,
        request: RequestLike,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> RouteDecision:
        """Async :meth:`decide`."""
        return await self.chain.adecide(self._request(request, tools, metadata), explain=explain)
