"""A stand-in for the embeddings connector, which has not landed yet, so the flow runs end to end.

Attention: deliberately minimal (OpenAI-compatible ``/v1/embeddings`` only). When
``tgstream.connectors.embeddings`` exists, :mod:`tgstream.dataflows.services` should use it
and this module should go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx2
import openai
import orjson

from tgstream.config import Settings


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


class EmbeddingsUnavailable(Exception):
    """The embeddings endpoint failed; memory recall and writes degrade."""


class OpenAICompatibleEmbedder:
    """``/v1/embeddings`` of any OpenAI-compatible server, one request per batch of texts."""

    def __init__(self, base_url: str, api_key: str, model: str, *, timeout_s: float = 10.0) -> None:
        self._model = model
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=1,
            timeout=timeout_s,
            http_client=openai.DefaultAioHttpClient(
                timeout=timeout_s, limits=httpx2.Limits(max_connections=16, max_keepalive_connections=16)
            ),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            raw = await self._client.embeddings.with_raw_response.create(model=self._model, input=list(texts))
            data = orjson.loads(raw.content)["data"]
            return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]
        except (openai.OpenAIError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise EmbeddingsUnavailable(f"embeddings failed: {exc!r}"[:300]) from exc

    async def aclose(self) -> None:
        await self._client.close()


def embedder_from_settings(settings: Settings) -> Embedder:
    if settings.embeddings_backend != "openai":
        msg = (
            "EMBEDDINGS_BACKEND=local needs tgstream.connectors.embeddings, which is not installed yet; "
            "set EMBEDDINGS_BACKEND=openai and EMBEDDINGS_BASE_URL"
        )
        raise RuntimeError(msg)
    return OpenAICompatibleEmbedder(
        settings.embeddings_base_url or settings.llm_stub_url,
        settings.openai_api_key.get_secret_value(),
        settings.embeddings_model,
    )
