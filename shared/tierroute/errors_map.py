"""Map any exception raised while calling a model to a :class:`~tierroute.types.FailureKind`.

The cascade asks one question of every failed attempt: *why did it fail?* The answer decides whether to
retry the same tier, fall back to another, or stop. Exceptions arrive from LiteLLM, from provider SDKs
(OpenAI, Anthropic and other Stainless-generated clients), from HTTP stacks (httpx, requests, urllib3,
aiohttp, botocore) and from the standard library; LangChain and LlamaIndex tier models re-raise the
provider's own exception, sometimes wrapped.

Classification looks at, most specific first:

0. a stream that ended before any ``finish_reason`` (this module's :class:`StreamTruncated`, or LiteLLM's
   "Stream ended before a finish_reason was received") is ``truncated_stream``, whatever wraps it;
1. the exception's class, matched by ``(top-level module, class name)`` along its MRO, so that
   ``litellm.ContentPolicyViolationError`` wins over its base ``BadRequestError`` and no SDK is imported;
2. the HTTP status and the provider's error body (:func:`classify_status`);
3. linked exceptions (``__cause__``, ``__context__``, LiteLLM's ``original_exception``, urllib3's
   ``reason``, tenacity's last attempt, exception-group members) when the outer one says nothing, and a
   transport error (connection, timeout) under a bare ``server_error``, since LiteLLM reports a refused
   connection as ``InternalServerError``;
4. message text (context-length, content-policy, quota, rate-limit phrases), as a last resort.

Nothing here imports litellm, openai, anthropic or httpx: ``import tierroute.errors_map`` stays cheap.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tierroute._error_bodies import (
    _TRUNCATED_RE,
    _decide,
    _is_status,
    _load,
    _parse_body,
    classify_status,
)
from tierroute._redact import redact, safe_message
from tierroute.types import FailureKind

__all__ = ["StreamTruncated", "classify", "classify_status", "redact", "retry_after", "safe_message", "status_of"]

_K = FailureKind
_MAX_NODES = 16
_MAX_DEPTH = 6


class StreamTruncated(Exception):
    """A streamed reply ended without a ``finish_reason``, so the answer may be cut short.

    The cascade raises it; :func:`classify` maps it to ``FailureKind.TRUNCATED_STREAM``.

    Attributes:
        model: The model that was streaming, when known.
        received_chars: How many characters of text arrived before the stream ended.
    """

    def __init__(
        self,
        message: str = "stream ended without a finish_reason",
        *,
        model: str | None = None,
        received_chars: int = 0,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.received_chars = received_chars


# --------------------------------------------------------------------------------------------------
# Provider error bodies: codes and phrases
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Reading exceptions without importing their libraries
# --------------------------------------------------------------------------------------------------


def _attr(obj: object, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # properties that raise (e.g. a response that was never read)
        return None


def _raw_message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    message = _attr(exc, "message")
    if isinstance(message, str) and message not in text:
        text = f"{text} {message}"
    return text


def _body_of(exc: BaseException) -> object:
    for name in ("body", "details", "response_json"):
        value = _attr(exc, name)
        if isinstance(value, (Mapping, list, str, bytes)) and value:
            return value
    response = _attr(exc, "response")
    if isinstance(response, Mapping):  # botocore ClientError
        return response
    if response is not None:
        content = _attr(response, "content")
        if isinstance(content, (bytes, str)) and content:
            return content
    return None


def _root(cls: type) -> str:
    return str(getattr(cls, "__module__", "") or "").partition(".")[0]


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, or ``None``.

    Reads ``provider_status_code`` (LiteLLM keeps Anthropic's 529 there), ``status_code``, ``status``,
    ``http_status``, an integer ``code`` (Google clients), ``response.status_code`` and botocore's
    ``response["ResponseMetadata"]["HTTPStatusCode"]``. LiteLLM's ``APIConnectionError`` claims 500 although
    no response arrived; it reports ``None``.

    Args:
        exc: Any exception.

    Returns:
        A status in 100..599, or ``None``.
    """
    if any(_root(c) == "litellm" and c.__name__ == "APIConnectionError" for c in type(exc).__mro__):
        return None
    for name in ("provider_status_code", "status_code", "status", "http_status", "code"):
        value = _attr(exc, name)
        if _is_status(value):
            return int(value)
    response = _attr(exc, "response")
    if isinstance(response, Mapping):
        meta = response.get("ResponseMetadata")
        value = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
    else:
        value = _attr(response, "status_code") if response is not None else None
        if value is None and response is not None:
            value = _attr(response, "status")
    return int(value) if _is_status(value) else None


def _by_status(exc: BaseException) -> FailureKind:
    codes, text, body_status = _parse_body(_body_of(exc))
    status = status_of(exc)
    if (status is None or status < 400) and body_status is not None:
        status = body_status
    return _decide(status, codes, f"{text} {_raw_message(exc)}")


def _mid_stream(exc: BaseException) -> FailureKind:
    """LiteLLM's ``MidStreamFallbackError``: the wrapped cause, else a truncated stream once text arrived."""
    original = _attr(exc, "original_exception")
    if isinstance(original, BaseException) and original is not exc:
        kind = _structured(original)
        if kind is not _K.UNKNOWN:
            return kind
    if _attr(exc, "generated_content") or _attr(exc, "is_pre_first_chunk") is False:
        return _K.TRUNCATED_STREAM
    return _by_status(exc)


def _guardrail(exc: BaseException) -> FailureKind:
    return _K.CONTENT_POLICY if _attr(exc, "blocked_content") else _K.UNKNOWN


def _max_retry(exc: BaseException) -> FailureKind:
    reason = _attr(exc, "reason")
    kind = _structured(reason) if isinstance(reason, BaseException) else _K.UNKNOWN
    return _K.CONNECTION if kind is _K.UNKNOWN else kind


_Rule = FailureKind | Callable[[BaseException], FailureKind]


def _table(status: str = "", **kinds: str) -> dict[str, _Rule]:
    """Class names per failure kind (keywords are ``FailureKind`` values); ``status`` classes go by status/body."""
    table: dict[str, _Rule] = {name: FailureKind(kind) for kind, names in kinds.items() for name in names.split()}
    table.update(dict.fromkeys(status.split(), _by_status))
    return table


# Stainless-generated SDKs (openai, anthropic, groq, cerebras) share one exception tree; their status
# subclasses (RateLimitError, BadRequestError, InternalServerError, ...) resolve through APIStatusError.
_STAINLESS = _table(
    status="APIStatusError APIError",
    auth="AuthenticationError PermissionDeniedError PaymentRequiredError CredentialsError",
    rate_limit="OverloadedError",
    timeout="APITimeoutError",
    connection="APIConnectionError",
    server_error="APIResponseValidationError",
    content_policy="ContentFilterFinishReasonError",
    truncated_stream="LengthFinishReasonError",
)
# LiteLLM's exceptions subclass openai's, so only those that mean more than their status are listed.
_LITELLM = _table(
    content_policy="ContentPolicyViolationError RejectedRequestError BlockedPiiEntityError",
    context_window="ContextWindowExceededError",
    auth="PaymentRequiredError",
    rate_limit="BudgetExceededError RouterRateLimitError RouterRateLimitErrorBasic",
    bad_request="UnsupportedParamsError ImageFetchError LiteLLMUnknownProvider",
) | {"MidStreamFallbackError": _mid_stream, "GuardrailRaisedException": _guardrail}
_HTTPX = _table(
    status="HTTPStatusError",
    timeout="TimeoutException",
    connection="NetworkError ProtocolError ProxyError",
    server_error="DecodingError",
    bad_request="UnsupportedProtocol InvalidURL TooManyRedirects",
)
_TABLES: dict[str, dict[str, _Rule]] = {
    **dict.fromkeys(("openai", "anthropic", "groq", "cerebras"), _STAINLESS),
    "litellm": _LITELLM,
    **dict.fromkeys(("httpx", "httpx2", "httpcore", "httpcore2"), _HTTPX),
    "requests": _table(
        status="HTTPError",
        timeout="ConnectTimeout Timeout",
        connection="ConnectionError ChunkedEncodingError",
        server_error="ContentDecodingError",
        bad_request="InvalidURL MissingSchema",
    ),
    "urllib3": _table(timeout="TimeoutError", connection="NewConnectionError ProtocolError SSLError ProxyError")
    | {"MaxRetryError": _max_retry},
    "aiohttp": _table(
        status="ClientResponseError",
        timeout="ServerTimeoutError ConnectionTimeoutError SocketTimeoutError",
        connection="ClientConnectionError ClientPayloadError",
    ),
    "botocore": _table(
        status="ClientError",
        timeout="ReadTimeoutError ConnectTimeoutError",
        connection="ConnectionError HTTPClientError",
        auth="NoCredentialsError PartialCredentialsError CredentialRetrievalError TokenRetrievalError"
        " UnauthorizedSSOTokenError",
        bad_request="NoRegionError ParamValidationError",
    ),
    # google.api_core and google.genai errors carry an integer HTTP ``code``: they go by status.
    "google": _table(timeout="RetryError", connection="TransportError", auth="DefaultCredentialsError RefreshError"),
    "tierroute": _table(truncated_stream="StreamTruncated", content_policy="ContentPolicyError"),
    "builtins": _table(timeout="TimeoutError", connection="ConnectionError"),
    "asyncio": _table(timeout="TimeoutError"),  # Python 3.10, where it is not yet the builtin
    "concurrent": _table(timeout="TimeoutError"),
    "socket": _table(connection="gaierror herror"),
    "ssl": _table(connection="SSLError"),
}
_RULES: dict[tuple[str, str], _Rule] = {
    (root, name): rule for root, table in _TABLES.items() for name, rule in table.items()
}


_RULE_CACHE: dict[type, _Rule | None] = {}


def _rule_for(cls: type) -> _Rule | None:
    if cls in _RULE_CACHE:
        return _RULE_CACHE[cls]
    found: _Rule | None = None
    for klass in cls.__mro__:
        found = _RULES.get((_root(klass), klass.__name__))
        if found is not None:
            break
    if len(_RULE_CACHE) > 1024:  # classes made on the fly must not grow the cache forever
        _RULE_CACHE.clear()
    _RULE_CACHE[cls] = found
    return found


def _structured(exc: BaseException) -> FailureKind:
    """Classify by class (MRO names), then by HTTP status and body; ``unknown`` when neither applies."""
    rule = _rule_for(type(exc))
    if rule is None:
        return _by_status(exc) if status_of(exc) is not None else _K.UNKNOWN
    return rule if isinstance(rule, FailureKind) else rule(exc)


def _links(exc: BaseException) -> Iterable[BaseException]:
    for name in ("original_exception", "__cause__", "__context__", "reason"):
        value = _attr(exc, name)
        if isinstance(value, BaseException):
            yield value
    last = _attr(exc, "last_attempt")  # tenacity.RetryError
    if last is not None and callable(_attr(last, "done")) and callable(_attr(last, "exception")):
        try:
            inner = last.exception() if last.done() else None
        except Exception:
            inner = None
        if isinstance(inner, BaseException):
            yield inner
    members = _attr(exc, "exceptions")  # ExceptionGroup
    if isinstance(members, (tuple, list)):
        yield from (m for m in members[:4] if isinstance(m, BaseException))


def _walk(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions linked to it, breadth first, bounded in depth and count."""
    seen = {id(exc)}
    out = [exc]
    frontier = [exc]
    for _ in range(_MAX_DEPTH):
        following: list[BaseException] = []
        for node in frontier:
            for link in _links(node):
                if id(link) not in seen and len(out) < _MAX_NODES:
                    seen.add(id(link))
                    out.append(link)
                    following.append(link)
        frontier = following
    return out


def classify(exc: BaseException) -> FailureKind:
    """Classify an exception raised while calling a model.

    Args:
        exc: Any exception: LiteLLM's, a provider SDK's, an HTTP client's, a builtin, or a wrapper whose
            ``__cause__``/``__context__`` holds one of those.

    Returns:
        The most specific failure kind found; ``FailureKind.UNKNOWN`` when nothing identifies it.
    """
    nodes = _walk(exc)
    if any(_TRUNCATED_RE.search(_raw_message(node).lower()) for node in nodes):
        return _K.TRUNCATED_STREAM  # LiteLLM raises RemoteProtocolError("Stream ended before a finish_reason ...")
    kinds = [_structured(node) for node in nodes]
    kind = next((k for k in kinds if k is not _K.UNKNOWN), _K.UNKNOWN)
    if kind is _K.SERVER_ERROR:
        # LiteLLM reports a refused connection or a dropped stream as InternalServerError (500); the
        # transport error underneath says what really happened.
        return next((k for k in kinds if k in (_K.CONNECTION, _K.TIMEOUT)), kind)
    if kind is not _K.UNKNOWN:
        return kind
    for node in nodes:
        codes, text, status = _parse_body(_body_of(node))
        kind = _decide(status, codes, f"{text} {_raw_message(node)}")
        if kind is not _K.UNKNOWN:
            return kind
    return _K.UNKNOWN


# --------------------------------------------------------------------------------------------------
# Retry-After
# --------------------------------------------------------------------------------------------------


def _seconds(value: object, *, millis: bool = False) -> float | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    secs: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            secs = float(text)
        except ValueError:
            if millis:
                return None
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:  # "-0000": UTC, origin unknown
                when = when.replace(tzinfo=datetime.timezone.utc)
            return max(0.0, when.timestamp() - time.time())
    if secs is None or not math.isfinite(secs) or secs < 0:
        return None
    return secs / 1000.0 if millis else secs


def _header_maps(exc: BaseException) -> Iterable[object]:
    yield _attr(exc, "litellm_response_headers")
    yield _attr(exc, "headers")
    response = _attr(exc, "response")
    if isinstance(response, Mapping):
        meta = response.get("ResponseMetadata")
        yield meta.get("HTTPHeaders") if isinstance(meta, Mapping) else None
    elif response is not None:
        yield _attr(response, "headers")


def _from_headers(headers: object) -> float | None:
    items = _attr(headers, "items")
    if not callable(items):
        return None
    try:
        lowered = {str(k).lower(): v for k, v in items()}
    except Exception:
        return None
    if "retry-after-ms" in lowered:
        secs = _seconds(lowered["retry-after-ms"], millis=True)
        if secs is not None:
            return secs
    return _seconds(lowered["retry-after"]) if "retry-after" in lowered else None


_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _from_body_delay(node: object, depth: int = 0) -> float | None:
    """Google's ``RetryInfo.retryDelay`` (``"37s"``) inside an error body."""
    if depth > 8:
        return None
    if isinstance(node, Mapping):
        for key, value in node.items():
            if str(key).lower() in ("retrydelay", "retry_delay"):
                if isinstance(value, str) and (m := _DELAY_RE.match(value)):
                    return float(m.group(1))
                if isinstance(value, Mapping):
                    return float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9
            found = _from_body_delay(value, depth + 1)
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)):
        for item in node[:20]:
            found = _from_body_delay(item, depth + 1)
            if found is not None:
                return found
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked the caller to wait, or ``None`` when it did not say.

    Reads ``retry-after-ms`` (milliseconds) and ``Retry-After`` (seconds or an HTTP-date) from
    ``exc.litellm_response_headers``, ``exc.headers``, ``exc.response.headers`` and botocore's response
    metadata, then ``cooldown_time`` (``litellm.Router`` when every deployment is cooling down), then
    Google's ``RetryInfo.retryDelay`` in the error body; linked exceptions are searched too. A date in the
    past gives ``0.0``.

    Args:
        exc: Any exception.

    Returns:
        Non-negative seconds, or ``None``.
    """
    for node in _walk(exc):
        for headers in _header_maps(node):
            secs = _from_headers(headers) if headers is not None else None
            if secs is not None:
                return secs
        cooldown = _attr(node, "cooldown_time")  # litellm.Router: every deployment is cooling down
        secs = _seconds(cooldown) if isinstance(cooldown, (int, float)) else None
        if secs is not None:
            return secs
        try:
            secs = _from_body_delay(_load(_body_of(node)))
        except (TypeError, ValueError):
            secs = None
        if secs is not None:
            return secs
    return None


# --------------------------------------------------------------------------------------------------
