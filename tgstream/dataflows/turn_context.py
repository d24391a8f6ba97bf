"""Per-chat context a turn reads besides persona and memories: facts (Postgres), adapted traits (Redis).

Both are read for every turn, so concurrent turns of many chats share one round trip through a
:class:`~tgstream.dataflows.batcher.MicroBatcher` (one ``LATERAL`` SELECT, one ``MGET``). Errors
propagate to the pipeline, which counts them as degradations and answers without this context.
"""

from __future__ import annotations

from typing import Any

from tgstream.dataflows.batcher import MicroBatcher
from tgstream.state.adaptations import AdaptationStore
from tgstream.state.facts import FactStore

FACTS_PER_TURN = 8


class BatchedFacts:
    """The newest facts of a chat, with concurrent turns' lookups merged into one query."""

    def __init__(self, store: FactStore, *, limit: int = FACTS_PER_TURN) -> None:
        self._store = store
        self._limit = limit
        self._batcher: MicroBatcher[int, list[str]] = MicroBatcher(
            self._many, max_batch=128, max_wait_s=0.001, name="facts-read"
        )

    async def facts(self, chat_id: int) -> list[str]:
        return await self._batcher.get(chat_id)

    async def _many(self, chat_ids: list[int]) -> list[list[str]]:
        found = await self._store.for_chats(chat_ids, limit=self._limit)
        return [found.get(chat_id, []) for chat_id in chat_ids]


class BatchedAdaptations:
    """A chat's adapted traits as a customizations layer, merged into one MGET across turns."""

    def __init__(self, store: AdaptationStore) -> None:
        self._store = store
        self._batcher: MicroBatcher[int, dict[str, Any]] = MicroBatcher(
            self._many, max_batch=256, max_wait_s=0.001, name="adaptations-read"
        )

    async def adapted(self, chat_id: int) -> dict[str, Any]:
        return await self._batcher.get(chat_id)

    async def _many(self, chat_ids: list[int]) -> list[dict[str, Any]]:
        found = await self._store.customizations_many(chat_ids)
        return [found.get(chat_id, {}) for chat_id in chat_ids]
