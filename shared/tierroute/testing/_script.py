"""Scripts for the fake provider: what a model answers (:class:`ModelScript`) and how it fails (:class:`Fault`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from tierroute.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "ModelScript", "ReplyFn"]

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "timeout",
    "connection_reset",
    "truncated_stream",
    "content_policy",
    "context_window",
    "auth",
    "bad_request",
]
"""The kinds of fault a :class:`Fault` can inject."""

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

ReplyFn = Callable[[dict[str, Any]], str]
"""A reply computed from the raw request body."""

_SERVER_ERROR_STATUSES = (500, 502, 503, 504, 529)


@dataclass
class Fault:
    """One injected failure and the schedule on which it fires.

    Schedules (``every``, ``first``, ``rate``, ``window``, ``calls``) count chat calls to one model from 1.
    Every schedule field that is set must match for the fault to fire; with none set it fires on every call.

    Attributes:
        kind: What goes wrong (see :data:`FaultKind`). ``rate_limit`` = HTTP 429 with ``Retry-After``;
            ``server_error`` = HTTP ``status``; ``timeout`` = no answer for ``hang_s`` seconds, then the
            connection closes; ``connection_reset`` = TCP RST, no response; ``truncated_stream`` = a stream
            that stops after ``after_chunks`` content chunks (no finish_reason, no ``[DONE]``, incomplete
            chunked body), or a non-stream body cut in half; ``content_policy`` / ``context_window`` /
            ``bad_request`` = HTTP 400 with the provider's body; ``auth`` = HTTP 401.
        every: Fire on calls ``every``, ``2*every``, ...
        first: Fire on the first ``first`` calls.
        rate: Fire on this fraction of calls, chosen deterministically from ``seed`` and the call number.
        seed: Seed for ``rate``.
        window: Fire while ``start_s <= seconds since start (or reset) < end_s``.
        calls: Fire on exactly these call numbers (stored as a frozenset).
        status: HTTP status for ``server_error`` (500, 502, 503, 504 or 529; default 500).
        retry_after: Seconds sent in ``Retry-After`` for ``rate_limit``.
        hang_s: How long ``timeout`` hangs before closing the connection.
        after_chunks: Content chunks sent before ``truncated_stream`` cuts a stream.
        message: Replaces the provider's error message (keep the provider's keywords if LiteLLM must map it).
    """

    kind: FaultKind
    every: int | None = None
    first: int | None = None
    rate: float | None = None
    seed: int = 0
    window: tuple[float, float] | None = None
    calls: AbstractSet[int] | None = None
    status: int | None = None
    retry_after: float = 1.0
    hang_s: float = 30.0
    after_chunks: int = 2
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}", path="kind", hint=f"one of {', '.join(FAULT_KINDS)}")
        if self.every is not None and self.every < 1:
            raise ConfigError("must be >= 1", path="every")
        if self.first is not None and self.first < 0:
            raise ConfigError("must be >= 0", path="first")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ConfigError("must be between 0 and 1", path="rate")
        if self.window is not None:
            start, end = self.window
            self.window = (float(start), float(end))
            if end < start:
                raise ConfigError("end must not be before start", path="window")
        if self.calls is not None:
            self.calls = frozenset(int(c) for c in self.calls)
        if self.status is not None and self.kind == "server_error" and self.status not in _SERVER_ERROR_STATUSES:
            raise ConfigError(
                f"unsupported status {self.status}", path="status", hint=f"one of {_SERVER_ERROR_STATUSES}"
            )
        if self.retry_after < 0 or self.hang_s < 0 or self.after_chunks < 0:
            raise ConfigError("retry_after, hang_s and after_chunks must be >= 0", path=self.kind)

    @property
    def has_schedule(self) -> bool:
        """Whether any schedule field is set (otherwise the fault fires on every call)."""
        return any(s is not None for s in (self.every, self.first, self.rate, self.window, self.calls))

    def fires(self, call_number: int, elapsed_s: float) -> bool:
        """Decide whether this fault fires on a call.

        Args:
            call_number: The 1-based number of this chat call to the model.
            elapsed_s: Seconds since the provider started (or was reset).

        Returns:
            True when every schedule field that is set matches.
        """
        if self.every is not None and call_number % self.every != 0:
            return False
        if self.first is not None and call_number > self.first:
            return False
        if self.calls is not None and call_number not in self.calls:
            return False
        if self.window is not None and not self.window[0] <= elapsed_s < self.window[1]:
            return False
        return self.rate is None or _unit_hash(self.seed, call_number) < self.rate

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "fault") -> Self:
        """Build a fault from the script-file shape, e.g. ``{"kind": "rate_limit", "every": 3}``.

        Args:
            data: The mapping; lists are accepted for ``window`` and ``calls``.
            path: Field path used in error messages.

        Returns:
            The fault.

        Raises:
            ConfigError: On unknown keys, a missing ``kind`` or invalid values (the message names the path).
        """
        from tierroute.testing._loader import fault_from_dict

        return fault_from_dict(cls, data, path=path)


def _unit_hash(seed: int, call_number: int) -> float:
    digest = hashlib.sha256(f"{seed}:{call_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class ModelScript:
    """How one fake model behaves.

    Attributes:
        reply: A fixed reply, ``"echo"`` (repeat the last user message) or a callable taking the request body.
        replies: Exact last-user-message text -> reply text; falls back to ``reply``.
        tool_calls: ``[{"name": str, "arguments": dict}]`` returned when the request offers ``tools``
            (unless ``tool_choice`` is ``"none"`` or the conversation ends with a tool result). Without
            them, a forced ``tool_choice`` still gets a call with arguments built from the tool's schema.
        json_reply: The reply used when the request asks for ``response_format`` json_object / json_schema.
            Without it a JSON reply text is used as is, else a value is built from the schema.
        usage: ``(prompt_tokens, completion_tokens)`` for every answer, overriding the estimate.
        prompt_usage: Exact last-user-message text -> ``(prompt_tokens, completion_tokens)``.
        latency_s: Seconds to wait before a successful answer.
        chunk_delay_s: Seconds between stream chunks.
        context_window: Estimated prompt tokens above this get the provider's context-length error.
        faults: Injected failures; the first whose schedule fires wins.
        served_model: The ``model`` name put in responses (default: the requested name).
        embedding_dim: Dimension of ``/v1/embeddings`` vectors for this model (default: the provider's).
    """

    reply: str | ReplyFn = "echo"
    replies: dict[str, str] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    json_reply: dict[str, Any] | list[Any] | str | None = None
    usage: tuple[int, int] | None = None
    prompt_usage: dict[str, tuple[int, int]] = field(default_factory=dict)
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    context_window: int | None = None
    faults: list[Fault] = field(default_factory=list)
    served_model: str | None = None
    embedding_dim: int | None = None

    def __post_init__(self) -> None:
        for index, call in enumerate(self.tool_calls):
            if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
                raise ConfigError("each tool call needs a string 'name'", path=f"tool_calls[{index}]")
            if not isinstance(call.get("arguments", {}), (Mapping, str)):
                raise ConfigError("'arguments' must be a dict or a JSON string", path=f"tool_calls[{index}]")
        if self.latency_s < 0 or self.chunk_delay_s < 0:
            raise ConfigError("latency_s and chunk_delay_s must be >= 0", path="latency_s")
        if self.embedding_dim is not None and self.embedding_dim < 1:
            raise ConfigError("must be >= 1", path="embedding_dim")

    def pick_fault(self, call_number: int, elapsed_s: float) -> Fault | None:
        """Return the first fault whose schedule fires on this call, if any.

        Args:
            call_number: The 1-based number of this chat call to the model.
            elapsed_s: Seconds since the provider started (or was reset).

        Returns:
            The fault, or None for a normal answer.
        """
        return next((f for f in self.faults if f.fires(call_number, elapsed_s)), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "model", base_dir: str | None = None) -> Self:
        """Build a script from the script-file shape (the value under ``models.<name>``).

        Keys are the field names above (``reply`` must be a string); ``faults`` is a list of
        :meth:`Fault.from_dict` mappings; ``quality_matrix: PATH`` (or ``{path, model}``) starts from
        :meth:`from_quality_matrix` and the other keys override it.

        Args:
            data: The mapping.
            path: Field path used in error messages, e.g. ``models.budget``.
            base_dir: Directory that relative ``quality_matrix`` paths are resolved against.

        Returns:
            The script.

        Raises:
            ConfigError: On unknown keys or invalid values (the message names the path and the allowed keys).
        """
        from tierroute.testing._loader import script_from_dict

        return script_from_dict(cls, data, path=path, base_dir=base_dir)

    @classmethod
    def from_quality_matrix(
        cls,
        path_or_rows: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        model: str,
        **overrides: Any,
    ) -> Self:
        """Answer each quality-matrix prompt as ``model`` did.

        The reply is the row's ``responses[model]`` when present, else ``"[model] answer to <id> (score S)"``;
        usage comes from ``tokens[model]`` when present. A prompt is the last user message of the row's
        ``messages``, or its ``prompt``.

        Args:
            path_or_rows: A JSONL file path or the parsed rows.
            model: The model column to replay.
            **overrides: Other :class:`ModelScript` fields, e.g. ``faults`` or ``served_model``.

        Returns:
            The script; prompts not in the matrix get a fixed "no row" reply.

        Raises:
            ConfigError: When the file is malformed or ``model`` appears in no row.
        """
        from tierroute.testing._loader import script_from_quality_matrix

        return script_from_quality_matrix(cls, path_or_rows, model, overrides)
