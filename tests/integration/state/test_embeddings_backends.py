"""Both embeddings backends for real: the OpenAI stub over HTTP, and MiniLM in-process (marked)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tgstream.config import Settings
from tgstream.connectors.embeddings import EmbeddingDimensionError, EmbeddingsUnavailable
from tgstream.connectors.embeddings_http import OpenAIEmbedder
from tgstream.connectors.embeddings_local import LocalEmbedder
from tgstream.connectors.postgres import Pool, connection
from tgstream.state.memories import MemoryStore, NewMemory

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def stub_embedder(settings: Settings) -> AsyncIterator[OpenAIEmbedder]:
    embedder = OpenAIEmbedder(settings.llm_stub_url, "sk-test", "stub-embed", batch_size=50)
    yield embedder
    await embedder.aclose()


async def test_batches_are_split_and_reassembled_in_order(stub_embedder: OpenAIEmbedder) -> None:
    texts = [f"message number {i} about topic {i % 7}" for i in range(130)]  # 3 requests of <= 50
    batched = await stub_embedder.embed(texts)
    singles = [(await stub_embedder.embed([t]))[0] for t in texts[::13]]
    assert len(batched) == len(texts)
    assert all(len(v) == 384 for v in batched)
    assert batched[::13] == singles


async def test_recall_through_pgvector_with_stub_embeddings(
    stub_embedder: OpenAIEmbedder, pg_pool: Pool, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    memories = ["My cat Tom loves tuna", "I work night shifts as a nurse", "We fly to Lisbon in May"]
    store = MemoryStore(pg_pool)
    try:
        vectors = await stub_embedder.embed(memories)
        await store.add_many(
            [NewMemory(chat, chat, text, vec) for text, vec in zip(memories, vectors, strict=True)]
        )
        (query,) = await stub_embedder.embed(["what food does my cat Tom like?"])
        hits = await store.search(chat, query, k=1, min_score=0.0)
        assert [h.text for h in hits] == ["My cat Tom loves tuna"]
    finally:
        async with connection(pg_pool) as conn:
            await conn.execute("DELETE FROM memories WHERE chat_id = %s", [chat])


async def test_a_wrong_dimension_is_a_configuration_error(settings: Settings) -> None:
    embedder = OpenAIEmbedder(settings.llm_stub_url, "sk-test", "stub-embed", dim=128)
    try:
        with pytest.raises(EmbeddingDimensionError, match="EMBEDDINGS_DIM is 128"):
            await embedder.embed(["hello"])
    finally:
        await embedder.aclose()


async def test_an_unreachable_endpoint_is_unavailable_after_bounded_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "sk-test", "m", attempts=2, timeout_s=2)
    try:
        with pytest.raises(EmbeddingsUnavailable, match=f"127.0.0.1:{port}"):
            await embedder.embed(["hello"])
    finally:
        await embedder.aclose()


@pytest.mark.minilm
async def test_local_minilm_ranks_a_paraphrase_above_an_unrelated_sentence() -> None:
    embedder = LocalEmbedder()
    try:
        await embedder.warm_up()
        query, paraphrase, unrelated = await embedder.embed(
            [
                "My dog gets really anxious during thunderstorms.",
                "Storms make my puppy very nervous.",
                "I need to renew my passport before the trip.",
            ]
        )
        q, p, u = (np.asarray(v) for v in (query, paraphrase, unrelated))
        assert q.shape == (384,)
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-4)
        assert float(q @ p) > float(q @ u) + 0.2
    finally:
        await embedder.aclose()
