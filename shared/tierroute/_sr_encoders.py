"""semantic-router encoder classes (imported only when the semantic layer is built)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from pydantic import PrivateAttr
from semantic_router.encoders import DenseEncoder

__all__ = ["CachedEncoder", "LiteLLMEmbeddingEncoder"]


class LiteLLMEmbeddingEncoder(DenseEncoder):
    """Any LiteLLM embedding model, with an optional ``api_base``.

    Unlike semantic-router's LiteLLM encoder it takes ``api_base`` and never writes API keys to the environment.
    """

    type: str = "litellm"
    api_base: str | None = None
    _api_key: str | None = PrivateAttr(default=None)

    def __init__(self, name: str, api_key: str | None = None, api_base: str | None = None) -> None:
        super().__init__(name=name, api_base=api_base)
        self._api_key = api_key

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.name}
        if self._api_key:
            kw["api_key"] = self._api_key
        if self.api_base:
            kw["api_base"] = self.api_base
        return kw

    def __call__(self, docs: list[Any]) -> list[list[float]]:
        import litellm

        resp = litellm.embedding(input=list(docs), **self._kwargs())
        return [list(map(float, d["embedding"])) for d in resp.data]

    async def acall(self, docs: list[Any]) -> list[list[float]]:
        import litellm

        resp = await litellm.aembedding(input=list(docs), **self._kwargs())
        return [list(map(float, d["embedding"])) for d in resp.data]


class CachedEncoder(DenseEncoder):
    """Wraps an encoder: pinned vectors (utterances, loaded from disk) and an LRU for queries."""

    type: str = "cached"
    cache_size: int = 4096
    _inner: Any = PrivateAttr()
    _pinned: dict[str, list[float]] = PrivateAttr(default_factory=dict)
    _lru: OrderedDict[str, list[float]] = PrivateAttr(default_factory=OrderedDict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    @classmethod
    def wrap(cls, inner: Any, *, ident: str, cache_size: int) -> CachedEncoder:
        """Wrap ``inner``; ``ident`` names the vectors (model) for the disk cache."""
        enc = cls(name=ident, cache_size=cache_size)
        enc._inner = inner
        return enc

    @property
    def inner(self) -> Any:
        """The wrapped encoder."""
        return self._inner

    def pin(self, texts: list[str], vectors: list[list[float]]) -> None:
        """Keep vectors for texts for the life of the encoder (utterances)."""
        with self._lock:
            self._pinned.update(zip(texts, vectors))

    def clear_queries(self) -> None:
        """Drop the query LRU (for cold-cache measurements)."""
        with self._lock:
            self._lru.clear()

    def _lookup(self, text: str) -> list[float] | None:
        with self._lock:
            v = self._pinned.get(text)
            if v is not None:
                return v
            v = self._lru.get(text)
            if v is not None:
                self._lru.move_to_end(text)
            return v

    def _store(self, texts: list[str], vectors: list[list[float]]) -> None:
        if self.cache_size <= 0:
            return
        with self._lock:
            for t, v in zip(texts, vectors):
                self._lru[t] = v
                self._lru.move_to_end(t)
            while len(self._lru) > self.cache_size:
                self._lru.popitem(last=False)

    def _split(self, docs: list[Any]) -> tuple[list[list[float] | None], list[int], list[str]]:
        found: list[list[float] | None] = []
        missing_idx: list[int] = []
        missing: list[str] = []
        for i, d in enumerate(docs):
            v = self._lookup(d)
            found.append(v)
            if v is None:
                missing_idx.append(i)
                missing.append(d)
        self.hits += len(docs) - len(missing)
        self.misses += len(missing)
        return found, missing_idx, missing

    @staticmethod
    def _merge(found: list[list[float] | None], idx: list[int], new: list[list[float]]) -> list[list[float]]:
        for i, v in zip(idx, new):
            found[i] = v
        return [v for v in found if v is not None]

    def __call__(self, docs: list[Any]) -> list[list[float]]:
        found, idx, missing = self._split(list(docs))
        if missing:
            new = [list(map(float, v)) for v in self._inner(missing)]
            self._store(missing, new)
            return self._merge(found, idx, new)
        return [v for v in found if v is not None]

    async def acall(self, docs: list[Any]) -> list[list[float]]:
        found, idx, missing = self._split(list(docs))
        if missing:
            try:
                raw = await self._inner.acall(missing)
            except NotImplementedError:
                import asyncio

                raw = await asyncio.to_thread(self._inner, missing)
            new = [list(map(float, v)) for v in raw]
            self._store(missing, new)
            return self._merge(found, idx, new)
        return [v for v in found if v is not None]
