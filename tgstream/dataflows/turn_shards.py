"""Many chats per Bytewax key for the turn step: the per-key timer overhead, measured and fixed.

Why. Each Bytewax key with a pending ``notify_at`` costs the Rust runtime a timer, a GIL
round trip and tracing spans per wake-up. With one key per chat, 3000 chats in flight made the
worker thread spend 10 ms of CPU per message (benchmarks/dataflow_throughput.py), four times
the openai client's own cost. So the turn step is keyed by a *shard* of chats instead: a
``ShardTurns`` holds the :class:`~tgstream.dataflows.turns.ChatTurns` of every chat that hashes
to it and wakes once for all of them. ``SHARDS`` keys in total (a few per worker) bound the
wake-ups whatever the number of chats.

The price is snapshot granularity: Bytewax snapshots a touched key whole, so a busy shard
pickles all its chats each epoch (idle chats leave after ``conversation_ttl_s``, which bounds
it). The gate step stays keyed per chat: it has no timers that fire often, and there per-chat
snapshots keep recovery writes small.

Routing uses ``zlib.crc32`` (never ``hash()``, which is salted per process), and ``SHARDS`` is
part of the recovery state: changing it needs a fresh recovery directory.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bytewax.operators import StatefulBatchLogic

from tgstream.dataflows.items import Admitted
from tgstream.dataflows.turns import ChatTurns, TurnOutput, TurnsSnapshot

SHARDS = 64

ShardSnapshot = dict[int, TurnsSnapshot]


def shard_key(chat_id: int, shards: int = SHARDS) -> str:
    """The turn-step key of a chat; stable across processes and restarts.

    >>> import zlib
    >>> shard_key(123456789) == f"shard-{zlib.crc32(b'123456789') % SHARDS}"
    True
    """
    return f"shard-{zlib.crc32(str(chat_id).encode()) % shards}"


class ShardTurns(StatefulBatchLogic[Admitted, TurnOutput, ShardSnapshot]):
    """The chats of one shard; each keeps its own order, queue and context window."""

    def __init__(
        self,
        make_chat: Callable[[TurnsSnapshot | None], ChatTurns],
        resume: ShardSnapshot | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._make_chat = make_chat
        self._clock = clock
        self.chats: dict[int, ChatTurns] = {
            chat_id: make_chat(snap) for chat_id, snap in (resume or {}).items()
        }

    def on_batch(self, values: list[Admitted]) -> tuple[Iterable[TurnOutput], bool]:
        by_chat: dict[int, list[Admitted]] = {}
        for item in values:
            by_chat.setdefault(item.chat_id, []).append(item)
        outputs: list[TurnOutput] = []
        for chat_id, items in by_chat.items():
            chat = self.chats.get(chat_id)
            if chat is None:
                chat = self.chats[chat_id] = self._make_chat(None)
            out, _ = chat.on_batch(items)
            outputs.extend(out)
        return outputs, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[TurnOutput], bool]:
        outputs: list[TurnOutput] = []
        now = self._clock()
        for chat_id, chat in list(self.chats.items()):
            if chat.next_wake() > now:
                continue
            out, discard = chat.on_notify()
            outputs.extend(out)
            if discard:
                del self.chats[chat_id]
        return outputs, StatefulBatchLogic.DISCARD if not self.chats else StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[TurnOutput], bool]:
        outputs: list[TurnOutput] = []
        for chat in self.chats.values():
            out, _ = chat.on_eof()
            outputs.extend(out)
        return outputs, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.chats:
            return None
        return datetime.fromtimestamp(min(chat.next_wake() for chat in self.chats.values()), tz=UTC)

    def snapshot(self) -> ShardSnapshot:
        return {chat_id: chat.snapshot() for chat_id, chat in self.chats.items()}
