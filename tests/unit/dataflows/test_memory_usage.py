"""Recall never updates memory rows on the reply path; usage goes to a batched background write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from tgstream.dataflows.services import MemoryRecall
from tgstream.dataflows.turn_writers import BackgroundWriters
from tgstream.state.memories import MemoryHit
from tgstream.steps.memory_gate import MemoryGate


class FakeEmbedder:
    dim = 2

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    async def aclose(self) -> None:
        return None


class FakeStore:
    """Returns one hit per query whose id is the chat id; records how it was called."""

    def __init__(self) -> None:
        self.touches: list[bool] = []
        self.usage: list[list[tuple[int, float]]] = []

    async def search_many(
        self, queries: Sequence[tuple[int, Any]], *, k: int, min_score: float, now: float, touch: bool
    ) -> list[list[MemoryHit]]:
        self.touches.append(touch)
        return [
            [MemoryHit(chat_id, chat_id, f"memory of {chat_id}", "exchange", 0.9, 0.9, 0.5, 0.0)]
            for chat_id, _ in queries
        ]

    async def record_usage(self, uses: Sequence[tuple[int, float]]) -> int:
        self.usage.append(list(uses))
        return len(uses)


def test_recall_searches_without_touch_and_batches_the_usage_write() -> None:
    store = FakeStore()
    writers = BackgroundWriters(
        cast(Any, None), cast(Any, None), cast(Any, store), ttl_s=60, gate=MemoryGate(0.5)
    )
    recall = MemoryRecall(
        FakeEmbedder(), cast(Any, store), k=3, min_score=0.0, on_used=writers.used, clock=lambda: 1234.5
    )

    async def scenario() -> list[list[str]]:
        found = await asyncio.gather(recall.recall(11, "dog?"), recall.recall(22, "cat?"))
        queued = writers.usage_writer.pending()
        await writers.close()  # not started, so close() writes the queue as one batch
        assert queued == 2
        return list(found)

    found = asyncio.run(scenario())
    assert found == [["memory of 11"], ["memory of 22"]]
    assert store.touches == [False]  # both chats in one search, and it did not touch rows
    assert store.usage == [[(11, 1234.5), (22, 1234.5)]]
