"""Redaction of secrets (API keys, tokens, passwords) from error messages before they reach logs or traces."""

from __future__ import annotations

import re

__all__ = ["redact", "safe_message"]

_REDACTED = "[REDACTED]"
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), _REDACTED),
    (re.compile(r"\b(?:gsk_|ghp_|gho_|github_pat_|hf_|xai-|pplx-|r8_|csk-)[A-Za-z0-9_\-]{16,}"), _REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), _REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"), _REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), _REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"), rf"\1 {_REDACTED}"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\1{_REDACTED}@"),
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|access[_-]?token|auth[_-]?token|session[_-]?token|secret[_-]?access[_-]?key"
            r"|aws_secret_access_key|client[_-]?secret|password|secret|token|key)"
            r"(\"?'?\s*[:=]\s*\"?'?)(?!\[REDACTED\])([^\s\"'&,;}\]]+)"
        ),
        rf"\1\2{_REDACTED}",
    ),
)


def redact(text: str) -> str:
    """Replace anything that looks like a credential in ``text`` with ``[REDACTED]``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def safe_message(exc: BaseException, limit: int = 300) -> str:
    """A short, single-line description of ``exc`` with secrets redacted, fit for logs and traces.

    Args:
        exc: Any exception.
        limit: Maximum length of the result (at least 20).

    Returns:
        ``"<ClassName>: <message>"`` on one line, API keys, bearer tokens, ``api_key=...`` values and AWS
        keys replaced by ``[REDACTED]``, cut to ``limit`` characters with a trailing ``...``.
    """
    limit = max(limit, 20)
    try:
        text = str(exc)
    except Exception:
        text = ""
    text = " ".join(redact(text).split())
    name = type(exc).__name__
    line = f"{name}: {text}" if text else name
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."
