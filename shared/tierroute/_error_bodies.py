"""Provider error bodies and messages: the codes and phrases that say why a call failed (used by errors_map)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tierroute.types import FailureKind

__all__ = ["classify_status"]

_K = FailureKind


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Lower-cased values of "code", "type", "status", "__type", "reason", "blockReason", "finishReason" fields.
_QUOTA_CODES = _words(
    "insufficient_quota billing_error billing_hard_limit_reached billing_not_active contract_spend_limit_reached"
    " enforced_spend_limit_reached linked_organization_spend_limit_reached"
)
_CONTEXT_CODES = _words(
    "context_length_exceeded context_window_exceeded model_context_window_exceeded request_too_large"
)
_POLICY_CODES = _words(
    "content_policy_violation content_filter responsibleaipolicyviolation moderation_blocked safety image_safety"
    " prohibited_content blocklist spii recitation guardrail_intervened"
)
_RATE_CODES = _words(
    "rate_limit_exceeded rate_limit_error rate_limited ratelimitexceeded throttlingexception throttling"
    " toomanyrequestsexception too_many_requests resource_exhausted servicequotaexceededexception overloaded_error"
)
_TIMEOUT_CODES = _words("timeout_error deadline_exceeded modeltimeoutexception request_timeout requesttimeoutexception")
_AUTH_CODES = _words(
    "invalid_api_key incorrect_api_key api_key_invalid invalid_authentication authentication_error permission_error"
    " unauthenticated permission_denied account_deactivated accessdeniedexception unrecognizedclientexception"
    " expiredtokenexception invalidsignatureexception"
)
_SERVER_CODES = _words(
    "api_error server_error internal internal_error internal_server_error unavailable service_unavailable"
    " engine_overloaded internalserverexception serviceunavailableexception modelerrorexception"
    " modelstreamerrorexception modelnotreadyexception"
)
_BAD_REQUEST_CODES = _words(
    "invalid_request_error invalid_argument failed_precondition validationexception not_found_error not_found"
    " model_not_found resourcenotfoundexception"
)


def _phrases(*items: str) -> re.Pattern[str]:
    return re.compile("|".join(items))


_QUOTA_RE = _phrases(
    r"insufficient_quota", r"exceeded your current quota", r"credit balance is too low", r"api usage limits"
)
_CONTEXT_RE = _phrases(
    r"maximum context length",
    r"context[ _]length",
    r"context window",
    r"context_window",
    r"exceed(?:s|ed)? (?:the )?(?:available )?context",
    r"maximum context limit",
    r"prompt is too long",
    r"prompt too long",
    r"input is too long",
    r"input too long",
    r"too many (?:input )?tokens",
    r"exceeds the maximum number of tokens",
    r"input tokens exceed",
    r"maximum input length",
    r"reduce the length of the messages",
    r"current length is \d+ while limit is",
)
_POLICY_RE = _phrases(
    r"content[_ ]policy",
    r"content management policy",
    r"safety system",
    r"content[_ ]filter",
    r"responsible ?ai",
    r"usage polic(?:y|ies)",
)
_RATE_RE = _phrases(
    r"rate[\s_-]*limit", r"too many requests", r"throttl", r"resource[_ ]exhausted", r"overloaded_error"
)
_TRUNCATED_RE = _phrases(r"ended before a finish_reason", r"ended without a finish_reason")
_TIMEOUT_RE = _phrases(r"timed out", r"deadline exceeded", r"request timeout")

_TEXT_KEYS = _words("message error detail msg error_message errormessage")
_CODE_KEYS = _words("code type status __type reason error_code errortype blockreason finishreason finish_reason")
_STATUS_KEYS = _words("code status status_code httpstatuscode")


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _norm_code(value: str) -> str:
    """``com.amazon.coral.service#ThrottlingException`` -> ``throttlingexception``."""
    return value.rsplit("#", 1)[-1].split(":", 1)[0].strip().lower()


def _scan(node: object, codes: set[str], texts: list[str], statuses: list[int], depth: int = 0) -> None:
    if depth > 8:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            k = str(key).lower()
            if isinstance(value, str):
                if k in _CODE_KEYS:
                    codes.add(_norm_code(value))
                elif k in _TEXT_KEYS:
                    texts.append(value)
            elif k in _STATUS_KEYS and _is_status(value):
                statuses.append(value)
            else:
                _scan(value, codes, texts, statuses, depth + 1)
    elif isinstance(node, (list, tuple)):
        for item in node[:20]:
            _scan(item, codes, texts, statuses, depth + 1)


def _load(body: object) -> object:
    """Decode a JSON body given as text or bytes; other values come back unchanged."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str) and body.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _parse_body(body: object) -> tuple[set[str], str, int | None]:
    """Codes, message text and any HTTP status found in a provider error body."""
    body = _load(body)
    if body is None:
        return set(), "", None
    if isinstance(body, str):
        return set(), body, None
    codes: set[str] = set()
    texts: list[str] = []
    statuses: list[int] = []
    _scan(body, codes, texts, statuses)
    return codes, " ".join(texts), statuses[0] if statuses else None


def _from_body(codes: set[str], text: str, default: FailureKind) -> FailureKind:
    """Decide from codes and phrases alone; ``default`` when nothing matches."""
    if codes & _QUOTA_CODES or _QUOTA_RE.search(text):
        return _K.AUTH
    if codes & _CONTEXT_CODES or _CONTEXT_RE.search(text):
        return _K.CONTEXT_WINDOW
    if codes & _POLICY_CODES or _POLICY_RE.search(text):
        return _K.CONTENT_POLICY
    if codes & _RATE_CODES:
        return _K.RATE_LIMIT
    if codes & _TIMEOUT_CODES:
        return _K.TIMEOUT
    if codes & _AUTH_CODES:
        return _K.AUTH
    if default is _K.UNKNOWN:  # no HTTP status: the body is all we have
        if codes & _SERVER_CODES:
            return _K.SERVER_ERROR
        if codes & _BAD_REQUEST_CODES:
            return _K.BAD_REQUEST
        if _RATE_RE.search(text):
            return _K.RATE_LIMIT
        if _TIMEOUT_RE.search(text):
            return _K.TIMEOUT
    return default


def _decide(status: int | None, codes: set[str], text: str) -> FailureKind:
    text = text.lower()
    if status is None or status < 400:  # no status, or an error event inside a 200 stream
        return _from_body(codes, text, _K.UNKNOWN)
    if status in (401, 402, 403, 407):
        return _K.AUTH
    if status in (408, 504, 524, 598):
        return _K.TIMEOUT
    if status == 429:
        return _K.AUTH if codes & _QUOTA_CODES or _QUOTA_RE.search(text) else _K.RATE_LIMIT
    if status == 529:
        return _K.RATE_LIMIT
    if status >= 500:
        return _K.RATE_LIMIT if "overloaded_error" in codes or "overloaded_error" in text else _K.SERVER_ERROR
    if status == 413:
        return _K.CONTEXT_WINDOW
    if status == 499:
        return _K.CONNECTION
    return _from_body(codes, text, _K.BAD_REQUEST)


def classify_status(status: int | None, body: str | bytes | Mapping[str, Any] | list[Any] | None = None) -> FailureKind:
    """Classify an HTTP status plus the provider's error body.

    Args:
        status: The HTTP status, or ``None`` when only a body is known (e.g. an error event in a stream).
        body: The error body: JSON text, bytes or a decoded dict, in any provider's shape (OpenAI and Azure
            ``{"error": {"code": ...}}``, Anthropic ``{"type": "error", "error": {"type": ...}}``, Gemini
            ``{"error": {"status": "RESOURCE_EXHAUSTED"}}`` or ``promptFeedback.blockReason``, Bedrock
            ``{"__type": "...#ThrottlingException"}``) or plain text.

    Returns:
        The failure kind. 408/504 are ``timeout``; 429 ``rate_limit`` (``auth`` when the body says the quota
        or credit is exhausted, since waiting will not help); 529 and Anthropic's ``overloaded_error``
        ``rate_limit``; other 5xx ``server_error``; 401/402/403 ``auth``; 413 ``context_window``; other 4xx
        ``bad_request`` unless the body names a context-length, content-policy, throttling or key problem.
        ``unknown`` when a 2xx or missing status comes with a body that names no error.
    """
    codes, text, body_status = _parse_body(body)
    if (status is None or status < 400) and body_status is not None:
        status = body_status
    return _decide(status, codes, text)
