"""Framework-neutral request, decision and trace types.

Adapters build a :class:`RouteRequest` from their own message types; the core returns a
:class:`RouteDecision` (which tier, which layer decided, why) and, once executed, a :class:`RouteTrace`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tierroute.errors import InvalidRequestError

__all__ = [
    "Attempt",
    "FailureKind",
    "LayerVerdict",
    "Message",
    "RouteDecision",
    "RouteRequest",
    "RouteTrace",
    "Usage",
]

Message = dict[str, Any]
Scope = Literal["last_user", "all"]
VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})


def _clean(text: str) -> str:
    """Replace lone surrogates (invalid in UTF-8) with U+FFFD so every later step sees valid text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _content_text(content: Any, path: str) -> tuple[str, bool]:
    """Text of a message's content and whether it holds an image.

    Strings are taken as they are; a list of parts contributes its text parts; image, audio, file and
    tool-result parts contribute no text.
    """
    if content is None:
        return "", False
    if isinstance(content, str):
        return _clean(content), False
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts: list[str] = []
        has_image = False
        for j, part in enumerate(content):
            if isinstance(part, str):
                texts.append(_clean(part))
                continue
            if not isinstance(part, Mapping):
                raise InvalidRequestError(
                    f"{path}.content[{j}] is a {type(part).__name__}; content parts must be dicts "
                    "like {'type': 'text', 'text': '...'} or strings"
                )
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(_clean(part["text"]))
            elif kind in _IMAGE_PART_TYPES:
                has_image = True
        return "\n".join(texts), has_image
    raise InvalidRequestError(
        f"{path}.content is a {type(content).__name__}; expected a string or a list of content parts"
    )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A chat request as the router sees it.

    Build it with :meth:`from_messages` from OpenAI-style message dicts.

    Attributes:
        messages: The messages, as given (OpenAI chat format).
        tools: Tool definitions (OpenAI format), if any.
        metadata: Caller metadata; the rules layer reads keys such as ``task_type`` and ``tier``.
        texts: The plain text of each message, in order (images and tool results contribute none).
        roles: The role of each message.
        has_images: Whether any message holds an image part.
    """

    messages: tuple[Message, ...]
    tools: tuple[dict[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    texts: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    has_images: bool = False

    @classmethod
    def from_messages(
        cls,
        messages: Iterable[Mapping[str, Any]] | str,
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RouteRequest:
        """Build a request from OpenAI-style messages (or a single prompt string).

        Raises:
            InvalidRequestError: No messages, a message that is not a dict, an unknown role or malformed content.
        """
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        msgs: list[Message] = []
        texts: list[str] = []
        roles: list[str] = []
        any_image = False
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping):
                raise InvalidRequestError(
                    f"messages[{i}] is a {type(m).__name__}; each message must be a dict with 'role' and 'content'"
                )
            role = m.get("role")
            if role not in VALID_ROLES:
                raise InvalidRequestError(f"messages[{i}].role is {role!r}; expected one of {sorted(VALID_ROLES)}")
            text, has_image = _content_text(m.get("content"), f"messages[{i}]")
            msgs.append(dict(m))
            texts.append(text)
            roles.append(str(role))
            any_image = any_image or has_image
        if not msgs:
            raise InvalidRequestError(
                "messages is empty; pass at least one message, e.g. {'role': 'user', 'content': '...'}"
            )
        return cls(
            messages=tuple(msgs),
            tools=tuple(dict(t) for t in tools or ()),
            metadata=dict(metadata or {}),
            texts=tuple(texts),
            roles=tuple(roles),
            has_images=any_image,
        )

    @property
    def has_tools(self) -> bool:
        """Whether the request carries tool definitions."""
        return bool(self.tools)

    @property
    def last_user_text(self) -> str:
        """Text of the last user message; empty when there is no user turn."""
        for role, text in zip(reversed(self.roles), reversed(self.texts)):
            if role == "user":
                return text
        return ""

    def text(self, scope: Scope = "last_user") -> str:
        """The text routing looks at: the last user message, or every message joined.

        A conversation with no user turn falls back to all messages, so it still gets a defined decision.
        """
        if scope == "last_user":
            last = self.last_user_text
            if last or "user" in self.roles:
                return last
        return "\n".join(t for t in self.texts if t)


@dataclass(frozen=True, slots=True)
class LayerVerdict:
    """What one decision layer said about a request (for ``--explain`` and traces)."""

    layer: str
    tier: str | None
    score: float | None
    reason: str
    candidates: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The router's choice for one request.

    Attributes:
        tier: The chosen tier.
        layer: The layer that decided: ``override``, ``rules``, ``semantic``, ``classifier`` or ``default``.
        score: The deciding layer's confidence or similarity, when it has one.
        reason: Human-readable reason, naming the rule or route that matched.
        candidates: Per-tier scores the deciding layer saw (empty for rules).
        verdicts: Every layer consulted, in order, with its verdict.
    """

    tier: str
    layer: str
    score: float | None
    reason: str
    candidates: Mapping[str, float] = field(default_factory=dict)
    verdicts: tuple[LayerVerdict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tier": self.tier,
            "layer": self.layer,
            "score": self.score,
            "reason": self.reason,
            "candidates": dict(self.candidates),
            "verdicts": [
                {
                    "layer": v.layer,
                    "tier": v.tier,
                    "score": v.score,
                    "reason": v.reason,
                    "candidates": dict(v.candidates),
                }
                for v in self.verdicts
            ],
        }


class FailureKind(str, enum.Enum):
    """Why an attempt failed; decides retry, fallback or stop."""

    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    CONTENT_POLICY = "content_policy"
    CONTEXT_WINDOW = "context_window"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    TRUNCATED_STREAM = "truncated_stream"
    REJECTED = "rejected"  # an acceptance check failed
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Usage:
    """Token usage of one attempt."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Attempt:
    """One call the cascade made (or skipped)."""

    tier: str
    model_group: str
    served_model: str | None = None
    deployment: str | None = None
    failure: FailureKind | None = None
    error: str | None = None
    latency_s: float = 0.0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    skipped: bool = False
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the attempt produced an accepted answer."""
        return self.failure is None and not self.skipped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tier": self.tier,
            "model_group": self.model_group,
            "served_model": self.served_model,
            "deployment": self.deployment,
            "failure": self.failure.value if self.failure else None,
            "error": self.error,
            "latency_s": self.latency_s,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": self.cost_usd,
            "skipped": self.skipped,
        }


@dataclass(slots=True)
class RouteTrace:
    """Everything that happened to one request: the decision and every attempt."""

    decision: RouteDecision
    attempts: list[Attempt] = field(default_factory=list)
    counterfactual_cost_usd: float = 0.0
    escalations: int = 0

    @property
    def cost_usd(self) -> float:
        """Total cost of every attempt."""
        return sum(a.cost_usd for a in self.attempts)

    @property
    def served(self) -> Attempt | None:
        """The attempt that produced the answer, if any."""
        for a in reversed(self.attempts):
            if a.ok:
                return a
        return None

    @property
    def fell_back(self) -> bool:
        """Whether the answer came from a tier other than the decided one."""
        s = self.served
        return s is not None and s.tier != self.decision.tier

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the shape of the ``tierroute`` metadata key."""
        s = self.served
        return {
            "tier": s.tier if s else self.decision.tier,
            "decided_tier": self.decision.tier,
            "layer": self.decision.layer,
            "reason": self.decision.reason,
            "score": self.decision.score,
            "served_model": s.served_model if s else None,
            "attempts": [a.to_dict() for a in self.attempts],
            "cost_usd": self.cost_usd,
            "counterfactual_cost_usd": self.counterfactual_cost_usd,
        }
