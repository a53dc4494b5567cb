"""Token counting for routing thresholds, with tiktoken on LiteLLM's bundled encodings (works offline).

Counting a huge prompt exactly is costly, so :func:`count_tokens_at_least` answers threshold questions
with cheap bounds first and only encodes when the answer is not clear.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from tierroute.errors import MissingDependencyError

__all__ = ["count_tokens", "token_bounds"]

ENCODING = "cl100k_base"


@lru_cache(maxsize=1)
def _encoding() -> Any:
    # LiteLLM ships tiktoken's BPE files; point tiktoken at them without importing litellm (slow).
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.origin and "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
        if bundled.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    try:
        import tiktoken
    except ImportError as exc:
        raise MissingDependencyError("tiktoken", "litellm", "token-count rules") from exc
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Exact token count of ``text`` (cl100k_base, the encoding LiteLLM falls back to)."""
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


def token_bounds(text: str) -> tuple[int, int]:
    """Cheap lower and upper bounds on the token count, without encoding.

    A cl100k token spans at most ~64 characters in practice (we use 128 to stay safe) and at least one
    UTF-8 byte, so ``ceil(len/128) <= tokens <= utf8 bytes``.
    """
    n = len(text)
    if n == 0:
        return 0, 0
    upper = len(text.encode("utf-8", "replace")) if n < 1_000_000 else 4 * n
    return -(-n // 128), upper
