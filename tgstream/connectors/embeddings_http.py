"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint, through the ``openai`` client.

Same transport choice as the chat client (:mod:`tgstream.connectors.llm`): aiohttp plus
``with_raw_response`` and an orjson parse, because building pydantic models for 384 floats
per text costs more CPU than the request. A large batch is split into requests of
``batch_size`` inputs, up to ``max_concurrency`` at a time, and reassembled in order by each
item's ``index``. Timeouts, connection errors and 5xx are retried (tenacity, bounded, jittered);
a 4xx is not, since sending the same request again cannot fix it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from tgstream.config import Settings
from tgstream.connectors.embeddings import EmbeddingsUnavailable, check_dimension, prepare


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return isinstance(exc, openai.APITimeoutError | openai.APIConnectionError)


class OpenAIEmbedder:
    """Batched, retried ``embeddings.create``; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        dim: int = 384,
        batch_size: int = 128,
        max_concurrency: int = 4,
        timeout_s: float = 10.0,
        attempts: int = 3,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1 or attempts < 1:
            msg = "batch_size, max_concurrency and attempts must be at least 1"
            raise ValueError(msg)
        self._model = model
        self._dim = dim
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(max_concurrency)
        self._attempts = attempts
        self._base_url = base_url
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=0,
            timeout=timeout_s,
            http_client=openai.DefaultAioHttpClient(
                timeout=timeout_s,
                limits=httpx2.Limits(
                    max_connections=max_concurrency, max_keepalive_connections=max_concurrency
                ),
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        return cls(
            settings.embeddings_base_url or settings.openai_base_url,
            settings.openai_api_key.get_secret_value(),
            settings.embeddings_model,
            dim=settings.embeddings_dim,
        )

    @property
    def dim(self) -> int:
        return self._dim

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        prepared = prepare(texts)
        chunks = [prepared[i : i + self._batch_size] for i in range(0, len(prepared), self._batch_size)]
        results = await asyncio.gather(*(self._embed_chunk(chunk) for chunk in chunks))
        return [vector for chunk in results for vector in chunk]

    async def aclose(self) -> None:
        await self._client.close()

    async def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        async with self._slots:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_retryable),
                    stop=stop_after_attempt(self._attempts),
                    wait=wait_exponential_jitter(initial=0.1, max=2.0),
                    reraise=True,
                ):
                    with attempt:
                        raw = await self._client.embeddings.with_raw_response.create(
                            model=self._model, input=texts, encoding_format="float"
                        )
                        body = raw.content
            except openai.OpenAIError as exc:
                raise EmbeddingsUnavailable(f"embeddings at {self._base_url} failed: {exc}"[:300]) from exc
        vectors = _parse(body, len(texts))
        check_dimension(vectors, self._dim, f"the embeddings endpoint {self._base_url} (model {self._model})")
        return vectors


def _parse(body: bytes, expected: int) -> list[list[float]]:
    """The vectors of an embeddings response, ordered by ``index``.

    >>> _parse(b'{"data":[{"index":1,"embedding":[0.0,1.0]},{"index":0,"embedding":[1.0,0.0]}]}', 2)
    [[1.0, 0.0], [0.0, 1.0]]
    """
    try:
        data: list[dict[str, Any]] = orjson.loads(body)["data"]
        ordered = sorted(data, key=lambda item: int(item["index"]))
        vectors: list[list[float]] = [item["embedding"] for item in ordered]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingsUnavailable(f"malformed embeddings response: {exc}") from exc
    if len(vectors) != expected:
        raise EmbeddingsUnavailable(f"asked for {expected} embeddings, got {len(vectors)}")
    return vectors
