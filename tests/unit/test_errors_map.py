"""Tests for tierroute.errors_map: real exception objects from LiteLLM, the provider SDKs and HTTP stacks.

The Anthropic cases need the ``anthropic`` SDK (not a tierroute dependency); they are skipped without it.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from tierroute.errors_map import (
    StreamTruncated,
    classify,
    classify_status,
    redact,
    retry_after,
    safe_message,
    status_of,
)
from tierroute.types import FailureKind as K

litellm = pytest.importorskip("litellm")
litellm_exc = pytest.importorskip("litellm.exceptions")

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


def _response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("POST", OPENAI_URL))


# ------------------------------------------------------------------------------------------------
# Provider bodies (real shapes, as the APIs send them)
# ------------------------------------------------------------------------------------------------

OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9012 "
        "tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
OPENAI_POLICY = {
    "error": {
        "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that "
        "is not allowed by our safety system.",
        "type": "invalid_request_error",
        "param": None,
        "code": "content_policy_violation",
    }
}
OPENAI_RATE = {
    "error": {
        "message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, "
        "Used 29000, Requested 2000. Please try again in 2s.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
OPENAI_BAD_KEY = {
    "error": {
        "message": "Incorrect API key provided: sk-abc***xyz. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
OPENAI_NOT_FOUND = {
    "error": {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}
OPENAI_SERVER = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
AZURE_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
        "policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
        },
    }
}
ANTHROPIC_CONTEXT = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
}
ANTHROPIC_RATE = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
    },
}
ANTHROPIC_OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
ANTHROPIC_API_ERROR = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
ANTHROPIC_AUTH = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
ANTHROPIC_PERMISSION = {
    "type": "error",
    "error": {"type": "permission_error", "message": "Your API key does not have permission to use this resource."},
}
ANTHROPIC_CREDIT = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
        "upgrade or purchase credits.",
    },
}
ANTHROPIC_TOO_LARGE = {
    "type": "error",
    "error": {"type": "request_too_large", "message": "Request exceeds the maximum allowed number of bytes."},
}
ANTHROPIC_BAD = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "messages.0.content: Field required"},
}
ANTHROPIC_NOT_FOUND = {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-9"}}
GEMINI_RATE = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
    }
}
GEMINI_BAD_KEY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ],
    }
}
GEMINI_CONTEXT = {
    "error": {
        "code": 400,
        "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        "status": "INVALID_ARGUMENT",
    }
}
GEMINI_UNAVAILABLE = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
GEMINI_SAFETY_PROMPT = {
    "promptFeedback": {
        "blockReason": "SAFETY",
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}],
    }
}
GEMINI_SAFETY_CANDIDATE = {
    "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}],
    "usageMetadata": {"promptTokenCount": 12},
}
BEDROCK_THROTTLE = {"__type": "com.amazon.coral.availability#ThrottlingException", "message": "Rate exceeded"}
BEDROCK_INPUT_TOO_LONG = {"message": "Input is too long for requested model."}
BEDROCK_VALIDATION = {"__type": "ValidationException", "message": "Malformed input request: #: extraneous key"}
MISTRAL_CONTEXT = {
    "object": "error",
    "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}
VLLM_CONTEXT = {
    "object": "error",
    "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
    "type": "BadRequestError",
    "code": 400,
}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        pytest.param(400, OPENAI_CONTEXT, K.CONTEXT_WINDOW, id="openai-context"),
        pytest.param(400, OPENAI_POLICY, K.CONTENT_POLICY, id="openai-policy"),
        pytest.param(429, OPENAI_RATE, K.RATE_LIMIT, id="openai-429-tokens-not-context"),
        pytest.param(429, OPENAI_QUOTA, K.AUTH, id="openai-insufficient-quota"),
        pytest.param(401, OPENAI_BAD_KEY, K.AUTH, id="openai-bad-key"),
        pytest.param(404, OPENAI_NOT_FOUND, K.BAD_REQUEST, id="openai-model-not-found"),
        pytest.param(500, OPENAI_SERVER, K.SERVER_ERROR, id="openai-500"),
        pytest.param(400, AZURE_FILTER, K.CONTENT_POLICY, id="azure-content-filter"),
        pytest.param(400, ANTHROPIC_CONTEXT, K.CONTEXT_WINDOW, id="anthropic-prompt-too-long"),
        pytest.param(429, ANTHROPIC_RATE, K.RATE_LIMIT, id="anthropic-rate"),
        pytest.param(529, ANTHROPIC_OVERLOADED, K.RATE_LIMIT, id="anthropic-529"),
        pytest.param(500, ANTHROPIC_API_ERROR, K.SERVER_ERROR, id="anthropic-api-error"),
        pytest.param(401, ANTHROPIC_AUTH, K.AUTH, id="anthropic-auth"),
        pytest.param(403, ANTHROPIC_PERMISSION, K.AUTH, id="anthropic-permission"),
        pytest.param(400, ANTHROPIC_CREDIT, K.AUTH, id="anthropic-credit-too-low"),
        pytest.param(413, ANTHROPIC_TOO_LARGE, K.CONTEXT_WINDOW, id="anthropic-413"),
        pytest.param(400, ANTHROPIC_BAD, K.BAD_REQUEST, id="anthropic-bad-request"),
        pytest.param(404, ANTHROPIC_NOT_FOUND, K.BAD_REQUEST, id="anthropic-404"),
        pytest.param(429, GEMINI_RATE, K.RATE_LIMIT, id="gemini-resource-exhausted"),
        pytest.param(400, GEMINI_BAD_KEY, K.AUTH, id="gemini-400-api-key-invalid"),
        pytest.param(400, GEMINI_CONTEXT, K.CONTEXT_WINDOW, id="gemini-context"),
        pytest.param(503, GEMINI_UNAVAILABLE, K.SERVER_ERROR, id="gemini-503-overloaded-is-server"),
        pytest.param(200, GEMINI_SAFETY_PROMPT, K.CONTENT_POLICY, id="gemini-prompt-blocked"),
        pytest.param(200, GEMINI_SAFETY_CANDIDATE, K.CONTENT_POLICY, id="gemini-finish-safety"),
        pytest.param(400, BEDROCK_THROTTLE, K.RATE_LIMIT, id="bedrock-throttling-400"),
        pytest.param(429, BEDROCK_THROTTLE, K.RATE_LIMIT, id="bedrock-throttling-429"),
        pytest.param(400, BEDROCK_INPUT_TOO_LONG, K.CONTEXT_WINDOW, id="bedrock-input-too-long"),
        pytest.param(400, BEDROCK_VALIDATION, K.BAD_REQUEST, id="bedrock-validation"),
        pytest.param(400, MISTRAL_CONTEXT, K.CONTEXT_WINDOW, id="mistral-context"),
        pytest.param(400, VLLM_CONTEXT, K.CONTEXT_WINDOW, id="vllm-context"),
    ],
)
def test_classify_status_provider_bodies(status: int, body: dict[str, Any], kind: K) -> None:
    assert classify_status(status, body) is kind
    assert classify_status(status, json.dumps(body)) is kind
    assert classify_status(status, json.dumps(body).encode()) is kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, K.BAD_REQUEST),
        (401, K.AUTH),
        (402, K.AUTH),
        (403, K.AUTH),
        (404, K.BAD_REQUEST),
        (408, K.TIMEOUT),
        (409, K.BAD_REQUEST),
        (413, K.CONTEXT_WINDOW),
        (422, K.BAD_REQUEST),
        (429, K.RATE_LIMIT),
        (500, K.SERVER_ERROR),
        (502, K.SERVER_ERROR),
        (503, K.SERVER_ERROR),
        (504, K.TIMEOUT),
        (529, K.RATE_LIMIT),
        (200, K.UNKNOWN),
    ],
)
def test_classify_status_without_body(status: int, kind: K) -> None:
    assert classify_status(status) is kind
    assert classify_status(status, "") is kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # Error events inside a 200 stream, or a body with no status at hand.
        (ANTHROPIC_OVERLOADED, K.RATE_LIMIT),
        (ANTHROPIC_CONTEXT, K.CONTEXT_WINDOW),
        (ANTHROPIC_API_ERROR, K.SERVER_ERROR),
        ({"message": "x", "type": "server_error", "code": None}, K.SERVER_ERROR),  # OpenAI stream "error" event
        (OPENAI_BAD_KEY, K.AUTH),
        (GEMINI_RATE, K.RATE_LIMIT),  # the body's own "code": 429
        ([GEMINI_RATE], K.RATE_LIMIT),  # streamGenerateContent wraps errors in a list
        ("upstream connect error or disconnect/reset before headers", K.UNKNOWN),
        ("This model's maximum context length is 4096 tokens", K.CONTEXT_WINDOW),
        ({"choices": [{"finish_reason": "content_filter"}]}, K.CONTENT_POLICY),
        ({"choices": [{"finish_reason": "stop"}]}, K.UNKNOWN),
        (None, K.UNKNOWN),
    ],
)
def test_classify_status_body_only(body: Any, kind: K) -> None:
    assert classify_status(None, body) is kind


def test_429_body_mentioning_tokens_stays_rate_limit() -> None:
    assert classify_status(429, {"error": {"message": "too many tokens per minute"}}) is K.RATE_LIMIT
    assert classify_status(400, {"error": {"message": "too many tokens in the request"}}) is K.CONTEXT_WINDOW


def test_invalid_json_body_is_read_as_text() -> None:
    assert classify_status(400, b"{not json: prompt is too long") is K.CONTEXT_WINDOW
    assert classify_status(502, "<html>Bad Gateway</html>") is K.SERVER_ERROR


# ------------------------------------------------------------------------------------------------
# LiteLLM exception classes, constructed directly
# ------------------------------------------------------------------------------------------------


def _llm(cls_name: str, **kwargs: Any) -> BaseException:
    cls = getattr(litellm_exc, cls_name)
    base: dict[str, Any] = {"message": "boom", "model": "gpt-4o-mini", "llm_provider": "openai"}
    base.update(kwargs)
    return cls(**base)  # type: ignore[no-any-return]


LITELLM_CASES: list[tuple[str, Callable[[], BaseException], K, int | None]] = [
    ("ContentPolicyViolationError", lambda: _llm("ContentPolicyViolationError"), K.CONTENT_POLICY, 400),
    ("ContextWindowExceededError", lambda: _llm("ContextWindowExceededError"), K.CONTEXT_WINDOW, 400),
    ("BadRequestError", lambda: _llm("BadRequestError"), K.BAD_REQUEST, 400),
    ("NotFoundError", lambda: _llm("NotFoundError"), K.BAD_REQUEST, 404),
    (
        "UnprocessableEntityError",
        lambda: _llm("UnprocessableEntityError", response=_response(422)),
        K.BAD_REQUEST,
        422,
    ),
    ("RateLimitError", lambda: _llm("RateLimitError"), K.RATE_LIMIT, 429),
    ("Timeout", lambda: _llm("Timeout"), K.TIMEOUT, 408),
    ("APIConnectionError", lambda: _llm("APIConnectionError"), K.CONNECTION, None),
    ("ServiceUnavailableError", lambda: _llm("ServiceUnavailableError"), K.SERVER_ERROR, 503),
    ("InternalServerError", lambda: _llm("InternalServerError"), K.SERVER_ERROR, 500),
    ("BadGatewayError", lambda: _llm("BadGatewayError"), K.SERVER_ERROR, 502),
    ("AuthenticationError", lambda: _llm("AuthenticationError"), K.AUTH, 401),
    ("PermissionDeniedError", lambda: _llm("PermissionDeniedError", response=_response(403)), K.AUTH, 403),
    ("PaymentRequiredError", lambda: _llm("PaymentRequiredError"), K.AUTH, 402),
    ("APIError-500", lambda: _llm("APIError", status_code=500), K.SERVER_ERROR, 500),
    ("APIError-429", lambda: _llm("APIError", status_code=429), K.RATE_LIMIT, 429),
    ("APIError-413", lambda: _llm("APIError", status_code=413), K.CONTEXT_WINDOW, 413),
    ("UnsupportedParamsError", lambda: _llm("UnsupportedParamsError"), K.BAD_REQUEST, 400),
    ("RejectedRequestError", lambda: _llm("RejectedRequestError", request_data={}), K.CONTENT_POLICY, 400),
    (
        "JSONSchemaValidationError",
        lambda: litellm_exc.JSONSchemaValidationError(model="m", llm_provider="openai", raw_response="{}", schema="{}"),
        K.SERVER_ERROR,
        500,  # LiteLLM attaches a made-up 500 response
    ),
    (
        "BudgetExceededError",
        lambda: litellm_exc.BudgetExceededError(current_cost=2.0, max_budget=1.0),
        K.RATE_LIMIT,
        422,
    ),
    (
        "InternalServerError-anthropic-529",
        lambda: _llm(
            "InternalServerError",
            message='AnthropicError - {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            llm_provider="anthropic",
            provider_status_code=529,
        ),
        K.RATE_LIMIT,
        529,
    ),
    (
        "BadRequestError-unmapped-context",
        lambda: _llm("BadRequestError", message="OpenAIException - This model's maximum context length is 8192"),
        K.CONTEXT_WINDOW,
        400,
    ),
    (
        "RateLimitError-quota",
        lambda: _llm("RateLimitError", message="OpenAIException - You exceeded your current quota"),
        K.AUTH,
        429,
    ),
    (
        "GuardrailRaisedException-blocked",
        lambda: litellm_exc.GuardrailRaisedException(guardrail_name="pii", message="no", blocked_content=True),
        K.CONTENT_POLICY,
        400,
    ),
]


@pytest.mark.parametrize(("make", "kind", "status"), [c[1:] for c in LITELLM_CASES], ids=[c[0] for c in LITELLM_CASES])
def test_litellm_exceptions(make: Callable[[], BaseException], kind: K, status: int | None) -> None:
    exc = make()
    assert classify(exc) is kind
    assert status_of(exc) == status


def test_litellm_router_cooldown_is_rate_limit_with_retry_after() -> None:
    from litellm.types.router import RouterRateLimitError

    exc = RouterRateLimitError(model="budget", cooldown_time=12.5, enable_pre_call_checks=False, cooldown_list=[])
    assert classify(exc) is K.RATE_LIMIT
    assert retry_after(exc) == 12.5


def test_litellm_midstream_fallback_uses_original_then_truncation() -> None:
    rate = _llm("RateLimitError")
    wrapped = litellm_exc.MidStreamFallbackError(
        message="x", model="m", llm_provider="openai", original_exception=rate, generated_content="Hel"
    )
    assert classify(wrapped) is K.RATE_LIMIT
    assert status_of(wrapped) == 429
    bare = litellm_exc.MidStreamFallbackError(message="x", model="m", llm_provider="openai", generated_content="Hel")
    assert classify(bare) is K.TRUNCATED_STREAM
    before_first = litellm_exc.MidStreamFallbackError(
        message="x", model="m", llm_provider="openai", is_pre_first_chunk=True
    )
    assert classify(before_first) is K.SERVER_ERROR


# ------------------------------------------------------------------------------------------------
# LiteLLM end to end: litellm.completion against an in-process transport, so LiteLLM's own mapping runs
# ------------------------------------------------------------------------------------------------


def _openai_client(handler: Callable[[httpx.Request], httpx.Response]) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test-0123456789abcdef",
        base_url="http://provider.invalid/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


def _litellm_error(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        out = litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            client=_openai_client(handler),
            api_key="sk-test-0123456789abcdef",
            num_retries=0,
            **kwargs,
        )
        for _ in out if kwargs.get("stream") else ():
            pass
    return info.value


@pytest.mark.parametrize(
    ("status", "body", "kind", "litellm_class"),
    [
        (400, OPENAI_CONTEXT, K.CONTEXT_WINDOW, "ContextWindowExceededError"),
        (400, OPENAI_POLICY, K.CONTENT_POLICY, "ContentPolicyViolationError"),
        (400, AZURE_FILTER, K.CONTENT_POLICY, "BadRequestError"),  # LiteLLM leaves this one generic
        (429, OPENAI_RATE, K.RATE_LIMIT, "RateLimitError"),
        (429, OPENAI_QUOTA, K.AUTH, "RateLimitError"),
        (401, OPENAI_BAD_KEY, K.AUTH, "AuthenticationError"),
        (404, OPENAI_NOT_FOUND, K.BAD_REQUEST, "NotFoundError"),
        (422, {"detail": "bad"}, K.BAD_REQUEST, "BadRequestError"),
        (500, OPENAI_SERVER, K.SERVER_ERROR, "InternalServerError"),
        (503, OPENAI_SERVER, K.SERVER_ERROR, "ServiceUnavailableError"),
        (504, OPENAI_SERVER, K.TIMEOUT, "Timeout"),
        (529, ANTHROPIC_OVERLOADED, K.RATE_LIMIT, "APIError"),
    ],
)
def test_litellm_completion_errors(status: int, body: dict[str, Any], kind: K, litellm_class: str) -> None:
    exc = _litellm_error(lambda request: httpx.Response(status, json=body, headers={"retry-after": "3"}))
    assert type(exc).__name__ == litellm_class
    assert classify(exc) is kind
    assert retry_after(exc) == 3.0


def test_litellm_connection_refused_is_connection_not_server_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    exc = _litellm_error(refuse)
    # LiteLLM 1.110 reports this as InternalServerError(500); the httpx error underneath says what happened.
    assert isinstance(exc, litellm_exc.InternalServerError)
    assert classify(exc) is K.CONNECTION


def test_litellm_read_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    assert classify(_litellm_error(slow)) is K.TIMEOUT


class _SSE(httpx.SyncByteStream):
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        if self.fail:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@pytest.mark.parametrize(("fail", "kind"), [(False, K.TRUNCATED_STREAM), (True, K.CONNECTION)])
def test_litellm_stream_cut_short(fail: bool, kind: K) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_SSE(fail))

    exc = _litellm_error(handler, stream=True)
    assert type(exc).__name__ == "MidStreamFallbackError"
    assert classify(exc) is kind


# ------------------------------------------------------------------------------------------------
# OpenAI SDK
# ------------------------------------------------------------------------------------------------


def _openai_error(status: int, body: Any, headers: dict[str, str] | None = None) -> BaseException:
    client = _openai_client(lambda request: httpx.Response(status, json=body, headers=headers))
    with pytest.raises(openai.APIError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("status", "body", "cls", "kind"),
    [
        (400, OPENAI_CONTEXT, openai.BadRequestError, K.CONTEXT_WINDOW),
        (400, OPENAI_POLICY, openai.BadRequestError, K.CONTENT_POLICY),
        (400, AZURE_FILTER, openai.BadRequestError, K.CONTENT_POLICY),
        (429, OPENAI_RATE, openai.RateLimitError, K.RATE_LIMIT),
        (429, OPENAI_QUOTA, openai.RateLimitError, K.AUTH),
        (401, OPENAI_BAD_KEY, openai.AuthenticationError, K.AUTH),
        (403, {"error": {"message": "Country not supported"}}, openai.PermissionDeniedError, K.AUTH),
        (404, OPENAI_NOT_FOUND, openai.NotFoundError, K.BAD_REQUEST),
        (422, {"error": {"message": "bad"}}, openai.UnprocessableEntityError, K.BAD_REQUEST),
        (500, OPENAI_SERVER, openai.InternalServerError, K.SERVER_ERROR),
        (529, ANTHROPIC_OVERLOADED, openai.InternalServerError, K.RATE_LIMIT),  # via an OpenAI-compatible proxy
    ],
)
def test_openai_sdk_status_errors(status: int, body: dict[str, Any], cls: type[BaseException], kind: K) -> None:
    exc = _openai_error(status, body)
    assert type(exc) is cls
    assert classify(exc) is kind
    assert status_of(exc) == status


def test_openai_sdk_transport_errors() -> None:
    request = httpx.Request("POST", OPENAI_URL)
    assert classify(openai.APITimeoutError(request=request)) is K.TIMEOUT
    assert classify(openai.APIConnectionError(request=request)) is K.CONNECTION
    assert status_of(openai.APIConnectionError(request=request)) is None


def test_openai_sdk_stream_error_event_and_finish_reason_errors() -> None:
    from openai.types.chat import ChatCompletion

    request = httpx.Request("POST", OPENAI_URL)
    # What openai._streaming raises for an SSE "error" event: a bare APIError with the inner error as body.
    event = openai.APIError("The server had an error", request, body={"message": "x", "type": "server_error"})
    assert classify(event) is K.SERVER_ERROR
    assert classify(openai.ContentFilterFinishReasonError()) is K.CONTENT_POLICY
    completion = ChatCompletion(id="c", choices=[], created=0, model="m", object="chat.completion")
    assert classify(openai.LengthFinishReasonError(completion=completion)) is K.TRUNCATED_STREAM


# ------------------------------------------------------------------------------------------------
# Anthropic SDK (optional: pip install anthropic)
# ------------------------------------------------------------------------------------------------


def _anthropic_http_module() -> str:
    """The HTTP library the installed anthropic SDK is built on: httpx (0.x) or httpx2 (2.x)."""
    anthropic = pytest.importorskip("anthropic")
    base_client = sys.modules.get(f"{anthropic.__name__}._base_client")
    return "httpx2" if hasattr(base_client, "httpx2") else "httpx"


def _anthropic_error(handler: Callable[[Any], Any], stream: bool = False) -> BaseException:
    anthropic = pytest.importorskip("anthropic")
    http = pytest.importorskip(_anthropic_http_module())
    client = anthropic.Anthropic(
        api_key="sk-ant-api03-test", max_retries=0, http_client=http.Client(transport=http.MockTransport(handler))
    )
    with pytest.raises(anthropic.AnthropicError) as info:
        if stream:
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES) as events:  # type: ignore[arg-type]
                for _ in events:
                    pass
        else:
            client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("status", "body", "cls_name", "kind"),
    [
        (400, ANTHROPIC_CONTEXT, "BadRequestError", K.CONTEXT_WINDOW),
        (400, ANTHROPIC_CREDIT, "BadRequestError", K.AUTH),
        (401, ANTHROPIC_AUTH, "AuthenticationError", K.AUTH),
        (403, ANTHROPIC_PERMISSION, "PermissionDeniedError", K.AUTH),
        (404, ANTHROPIC_NOT_FOUND, "NotFoundError", K.BAD_REQUEST),
        (413, ANTHROPIC_TOO_LARGE, None, K.CONTEXT_WINDOW),
        (429, ANTHROPIC_RATE, "RateLimitError", K.RATE_LIMIT),
        (500, ANTHROPIC_API_ERROR, "InternalServerError", K.SERVER_ERROR),
        (529, ANTHROPIC_OVERLOADED, None, K.RATE_LIMIT),
    ],
)
def test_anthropic_sdk_errors(status: int, body: dict[str, Any], cls_name: str | None, kind: K) -> None:
    http = pytest.importorskip(_anthropic_http_module())
    exc = _anthropic_error(lambda request: http.Response(status, json=body, headers={"retry-after": "5"}))
    if cls_name:
        assert type(exc).__name__ == cls_name
    assert classify(exc) is kind
    assert status_of(exc) == status
    assert retry_after(exc) == 5.0


def test_anthropic_sdk_overloaded_error_event_inside_200_stream() -> None:
    http = pytest.importorskip(_anthropic_http_module())
    sse = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
        '"model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,'
        '"usage":{"input_tokens":1,"output_tokens":0}}}\n\n'
        f"event: error\ndata: {json.dumps(ANTHROPIC_OVERLOADED)}\n\n"
    )
    exc = _anthropic_error(
        lambda request: http.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"}),
        stream=True,
    )
    assert type(exc).__name__ == "APIStatusError"
    assert status_of(exc) == 200  # the HTTP status of the stream, not of the error
    assert classify(exc) is K.RATE_LIMIT


def test_anthropic_sdk_transport_errors() -> None:
    anthropic = pytest.importorskip("anthropic")
    http = pytest.importorskip(_anthropic_http_module())
    request = http.Request("POST", "https://api.anthropic.com/v1/messages")
    assert classify(anthropic.APITimeoutError(request=request)) is K.TIMEOUT
    assert classify(anthropic.APIConnectionError(request=request)) is K.CONNECTION


# ------------------------------------------------------------------------------------------------
# httpx, builtins, other HTTP stacks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda r: httpx.ConnectTimeout("t", request=r), K.TIMEOUT),
        (lambda r: httpx.ReadTimeout("t", request=r), K.TIMEOUT),
        (lambda r: httpx.PoolTimeout("t", request=r), K.TIMEOUT),
        (lambda r: httpx.ConnectError("refused", request=r), K.CONNECTION),
        (lambda r: httpx.ReadError("reset", request=r), K.CONNECTION),
        (lambda r: httpx.RemoteProtocolError("peer closed", request=r), K.CONNECTION),
        (lambda r: httpx.ProxyError("proxy", request=r), K.CONNECTION),
        (lambda r: httpx.UnsupportedProtocol("ftp", request=r), K.BAD_REQUEST),
    ],
)
def test_httpx_transport_errors(make: Callable[[httpx.Request], BaseException], kind: K) -> None:
    assert classify(make(httpx.Request("POST", OPENAI_URL))) is kind


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(503, None, K.SERVER_ERROR), (429, None, K.RATE_LIMIT), (400, OPENAI_CONTEXT, K.CONTEXT_WINDOW)],
)
def test_httpx_status_error(status: int, body: Any, kind: K) -> None:
    response = _response(status, body, headers={"Retry-After": "2"})
    exc = httpx.HTTPStatusError("bad status", request=response.request, response=response)
    assert classify(exc) is kind
    assert status_of(exc) == status
    assert retry_after(exc) == 2.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError("slow"), K.TIMEOUT),
        (asyncio.TimeoutError(), K.TIMEOUT),
        (ConnectionResetError(104, "Connection reset by peer"), K.CONNECTION),
        (ConnectionRefusedError(111, "Connection refused"), K.CONNECTION),
        (BrokenPipeError(), K.CONNECTION),
        (socket.gaierror(-2, "Name or service not known"), K.CONNECTION),
        (StreamTruncated(model="gpt-4o-mini", received_chars=12), K.TRUNCATED_STREAM),
        (ValueError("something else"), K.UNKNOWN),
        (KeyError("timeout"), K.UNKNOWN),
    ],
)
def test_builtins_and_marker(exc: BaseException, kind: K) -> None:
    assert classify(exc) is kind


def test_botocore_client_errors() -> None:
    botocore = pytest.importorskip("botocore.exceptions")

    def client_error(code: str, status: int, message: str, headers: dict[str, str] | None = None) -> BaseException:
        response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        }
        return botocore.ClientError(response, "Converse")  # type: ignore[no-any-return]

    throttled = client_error("ThrottlingException", 429, "Too many requests", {"retry-after": "1"})
    assert classify(throttled) is K.RATE_LIMIT
    assert status_of(throttled) == 429
    assert retry_after(throttled) == 1.0
    assert classify(client_error("ThrottlingException", 400, "Rate exceeded")) is K.RATE_LIMIT
    assert classify(client_error("ValidationException", 400, "Input is too long for requested model.")) is (
        K.CONTEXT_WINDOW
    )
    assert classify(client_error("ValidationException", 400, "Malformed input request")) is K.BAD_REQUEST
    assert classify(client_error("AccessDeniedException", 403, "not authorized")) is K.AUTH
    assert classify(client_error("ModelTimeoutException", 408, "timeout")) is K.TIMEOUT
    assert classify(client_error("ServiceUnavailableException", 503, "unavailable")) is K.SERVER_ERROR
    assert classify(botocore.ReadTimeoutError(endpoint_url="https://bedrock")) is K.TIMEOUT
    assert classify(botocore.EndpointConnectionError(endpoint_url="https://bedrock")) is K.CONNECTION
    assert classify(botocore.NoCredentialsError()) is K.AUTH


def test_requests_urllib3_aiohttp() -> None:
    requests_exc = pytest.importorskip("requests.exceptions")
    urllib3_exc = pytest.importorskip("urllib3.exceptions")
    assert classify(requests_exc.ConnectTimeout()) is K.TIMEOUT
    assert classify(requests_exc.ReadTimeout()) is K.TIMEOUT
    assert classify(requests_exc.ConnectionError()) is K.CONNECTION
    assert classify(urllib3_exc.ReadTimeoutError(None, "/", "read timed out")) is K.TIMEOUT
    assert classify(urllib3_exc.ProtocolError("Connection aborted.")) is K.CONNECTION
    reset = urllib3_exc.ProtocolError("aborted")
    assert classify(urllib3_exc.MaxRetryError(None, "/", reason=reset)) is K.CONNECTION  # type: ignore[arg-type]

    aiohttp = pytest.importorskip("aiohttp")
    assert classify(aiohttp.ServerTimeoutError("timeout")) is K.TIMEOUT
    assert classify(aiohttp.ServerDisconnectedError()) is K.CONNECTION
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    info = aiohttp.RequestInfo(URL(OPENAI_URL), "POST", CIMultiDictProxy(CIMultiDict()), URL(OPENAI_URL))
    limited = aiohttp.ClientResponseError(
        info, (), status=429, message="Too Many Requests", headers={"Retry-After": "9"}
    )
    assert classify(limited) is K.RATE_LIMIT
    assert retry_after(limited) == 9.0


def test_objects_with_an_http_code_go_by_status() -> None:
    class SDKError(Exception):  # e.g. mistralai / cohere / google.genai shapes
        def __init__(self, code: int, details: dict[str, Any]) -> None:
            super().__init__(details.get("error", {}).get("message", ""))
            self.code = code
            self.details = details

    assert classify(SDKError(429, GEMINI_RATE)) is K.RATE_LIMIT
    assert retry_after(SDKError(429, GEMINI_RATE)) == 37.0
    assert classify(SDKError(400, GEMINI_CONTEXT)) is K.CONTEXT_WINDOW
    assert classify(SDKError(400, GEMINI_BAD_KEY)) is K.AUTH


# ------------------------------------------------------------------------------------------------
# Cause chains and message text
# ------------------------------------------------------------------------------------------------


def _raised_from(outer: BaseException, inner: BaseException, *, implicit: bool = False) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as caught:
            if implicit:
                raise outer  # noqa: B904 - __context__ on purpose
            raise outer from caught
    except BaseException as final:
        return final


def test_cause_chain_gives_the_specific_kind() -> None:
    inner = _openai_error(429, OPENAI_RATE)
    assert classify(_raised_from(RuntimeError("tier call failed"), inner)) is K.RATE_LIMIT
    assert classify(_raised_from(RuntimeError("tier call failed"), inner, implicit=True)) is K.RATE_LIMIT
    deeper = _raised_from(ValueError("adapter"), _raised_from(RuntimeError("framework"), inner))
    assert classify(deeper) is K.RATE_LIMIT


def test_outer_known_kind_wins_over_cause() -> None:
    inner = _openai_error(429, OPENAI_RATE)
    assert classify(_raised_from(TimeoutError("deadline"), inner)) is K.TIMEOUT


def test_cause_chain_is_bounded_and_cycle_safe() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a) is K.UNKNOWN
    chain: BaseException = TimeoutError("bottom")
    for i in range(50):
        chain = _raised_from(RuntimeError(f"layer {i}"), chain)
    assert classify(chain) is K.UNKNOWN  # the timeout is deeper than the walk goes


def test_exception_group_and_tenacity_retry_error() -> None:
    group_cls = getattr(builtins, "ExceptionGroup", None)
    if group_cls is None:
        pytest.skip("ExceptionGroup needs Python 3.11")
    group = group_cls("task group", [ValueError("x"), ConnectionResetError("reset")])
    assert classify(group) is K.CONNECTION
    tenacity = pytest.importorskip("tenacity")
    attempt = tenacity.Future(attempt_number=3)
    attempt.set_exception(_openai_error(429, OPENAI_RATE))
    assert classify(tenacity.RetryError(attempt)) is K.RATE_LIMIT


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Azure has not provided the response due to a content filter being triggered", K.CONTENT_POLICY),
        ("Model output was stopped by a content filter", K.CONTENT_POLICY),
        ("This model's maximum context length is 16385 tokens", K.CONTEXT_WINDOW),
        ("prompt is too long: 210000 tokens > 200000 maximum", K.CONTEXT_WINDOW),
        ("Rate limit reached, slow down", K.RATE_LIMIT),
        ("Request timed out.", K.TIMEOUT),
        ("division by zero", K.UNKNOWN),
    ],
)
def test_message_text_is_the_last_resort(message: str, kind: K) -> None:
    assert classify(ValueError(message)) is kind


# ------------------------------------------------------------------------------------------------
# retry_after
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),  # OpenAI sends both; ms is more precise
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], expected: float | None) -> None:
    exc = httpx.HTTPStatusError("x", request=httpx.Request("GET", OPENAI_URL), response=_response(429, None, headers))
    assert retry_after(exc) == expected


def test_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    secs = retry_after(_openai_error(429, OPENAI_RATE, {"retry-after": when}))
    assert secs is not None
    assert 25 <= secs <= 31


def test_retry_after_sources() -> None:
    exc = _llm("RateLimitError")
    assert retry_after(exc) is None
    exc.litellm_response_headers = httpx.Headers({"retry-after": "6"})  # type: ignore[attr-defined]
    assert retry_after(exc) == 6.0
    plain = _llm("RateLimitError", headers={"Retry-After": "8"})  # headers dict, LiteLLM's own limiter
    assert retry_after(plain) == 8.0
    wrapped = _raised_from(RuntimeError("adapter"), _openai_error(429, OPENAI_RATE, {"retry-after": "11"}))
    assert retry_after(wrapped) == 11.0
    assert retry_after(ValueError("nothing")) is None
    assert retry_after(_openai_error(429, GEMINI_RATE)) == 37.0  # google.rpc.RetryInfo in the body


# ------------------------------------------------------------------------------------------------
# safe_message
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789XyZ", "sk-proj-AbCdEf0123456789XyZ"),
        ("bad key sk-ant-api03-AbCdEf0123456789-_XyZ", "sk-ant-api03-AbCdEf0123456789-_XyZ"),
        ("headers={'Authorization': 'Bearer abcdef0123456789'}", "abcdef0123456789"),
        ("call failed api_key=hunter2hunter2 model=x", "hunter2hunter2"),
        ('{"api_key": "zzzz-1234-yyyy"}', "zzzz-1234-yyyy"),
        ("x-api-key: q1w2e3r4t5y6", "q1w2e3r4t5y6"),
        ("aws creds AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("GET /v1beta/models?key=AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
        ("https://user:p4ssw0rd@proxy.local:8080", "p4ssw0rd"),
        ("groq gsk_abcdefghijklmnopqrstuvwxyz012345", "gsk_abcdefghijklmnopqrstuvwxyz012345"),
    ],
)
def test_safe_message_redacts(text: str, secret: str) -> None:
    line = safe_message(RuntimeError(text))
    assert secret not in line
    assert "[REDACTED]" in line
    assert line.startswith("RuntimeError: ")


def test_safe_message_shape() -> None:
    exc = _llm("AuthenticationError", message="AuthenticationError: OpenAIException - \n key sk-live-0123456789abcd")
    line = safe_message(exc, limit=60)
    assert "\n" not in line
    assert len(line) <= 60
    assert line.endswith("...")
    assert "sk-live" not in safe_message(exc)
    assert safe_message(ValueError()) == "ValueError"
    assert (
        redact("no secrets here, task-12345678 and max_tokens=100")
        == "no secrets here, task-12345678 and max_tokens=100"
    )
    assert redact("api_key=sk-abcdefghijkl") == "api_key=[REDACTED]"


def test_safe_message_survives_broken_str() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert safe_message(Weird()) == "Weird"
    assert classify(Weird()) is K.UNKNOWN


# ------------------------------------------------------------------------------------------------
# Import cost
# ------------------------------------------------------------------------------------------------


def test_import_loads_no_sdk() -> None:
    code = (
        "import sys, json\n"
        "import tierroute.errors_map as m\n"
        "assert m.classify(TimeoutError()) is m.FailureKind.TIMEOUT\n"
        "assert m.classify_status(429) is m.FailureKind.RATE_LIMIT\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not [m for m in ("litellm", "openai", "anthropic", "httpx", "httpx2", "httpcore") if m in loaded]
