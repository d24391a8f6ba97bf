"""Many chats per Bytewax key for the turn step: the per-key timer overhead, measured and fixed.

Why. Each Bytewax key with a pending ``notify_at`` costs the Rust runtime a timer, a GIL
round trip and tracing spans per wake-up. With one key per chat, 3000 chats in flight made the
worker thread spend 10 ms of CPU per message (benchmarks/dataflow_throughput.py), four times
the openai client's own cost. So the turn step is keyed by a *shard* of chats instead: a
``ShardTurns`` holds the :class:`~tgstream.dataflows.turns.ChatTurns` of every chat that hashes
to it and wakes once for all of them. ``SHARDS`` keys in total (a few per worker) bound the
wake-ups whatever the number of chats.

The price is snapshot granularity: Bytewax snapshots a touched key whole, so a busy shard
writes all its chats each epoch (idle chats leave after ``conversation_ttl_s``, which bounds
it); unchanged chats are not pickled again (see :class:`ShardTurns`). The gate step stays
keyed per chat: it has no timers that fire often, and there per-chat snapshots keep recovery
writes small.

Routing uses ``zlib.crc32`` (never ``hash()``, which is salted per process), and ``SHARDS`` is
part of the recovery state: changing it needs a fresh recovery directory.
"""

from __future__ import annotations

import heapq
import math
import pickle
import time
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bytewax.operators import StatefulBatchLogic

from tgstream.dataflows.doorbell import JobsDone
from tgstream.dataflows.items import Admitted
from tgstream.dataflows.turns import ChatTurns, TurnOutput, TurnsSnapshot

SHARDS = 64
WAKE_GRID_S = 0.005
"""Shards wake on multiples of 5 ms (the source's idle poll grid too), so the shards and partitions
due around the same moment share one activation of the worker; a poll comes at most 5 ms late."""

ShardSnapshot = dict[int, TurnsSnapshot | bytes]
"""Each chat's :class:`TurnsSnapshot`, pickled (older recovery stores hold the objects themselves)."""


def restore(saved: TurnsSnapshot | bytes) -> TurnsSnapshot:
    """A chat's snapshot from either form a shard snapshot may hold."""
    if isinstance(saved, bytes):
        snapshot = pickle.loads(saved)  # noqa: S301 - our own recovery state, as Bytewax's own unpickling is
        if not isinstance(snapshot, TurnsSnapshot):
            raise TypeError(f"a shard snapshot held {type(snapshot).__name__}, not TurnsSnapshot")
        return snapshot
    return saved


def shard_key(chat_id: int, shards: int = SHARDS) -> str:
    """The turn-step key of a chat; stable across processes and restarts.

    >>> import zlib
    >>> shard_key(123456789) == f"shard-{zlib.crc32(b'123456789') % SHARDS}"
    True
    """
    return f"shard-{zlib.crc32(str(chat_id).encode()) % shards}"


def jobs_done(chat_ids: Iterable[int]) -> list[JobsDone]:
    """Finished chats, one item per shard for the turn step (see doorbell.py).

    >>> [(done.shard == shard_key(5), done.chat_ids) for done in jobs_done([5])]
    [(True, (5,))]
    """
    by_shard: dict[str, list[int]] = {}
    for chat_id in chat_ids:
        by_shard.setdefault(shard_key(chat_id), []).append(chat_id)
    return [JobsDone(shard, tuple(chats)) for shard, chats in by_shard.items()]


class ShardTurns(StatefulBatchLogic[Admitted | JobsDone, TurnOutput, ShardSnapshot]):
    """The chats of one shard; each keeps its own order, queue and context window.

    Two costs that would otherwise grow with the number of chats a shard holds, not with its
    traffic:

    * wake-ups: a heap of ``(wake time, chat id)`` finds the chats that are due, instead of
      asking every chat on every wake. An entry is live while it equals the chat's
      ``next_wake()``; superseded ones are skipped when they come up, and the heap is rebuilt
      when they outnumber the chats.
    * snapshots: each chat's snapshot is pickled once and the bytes reused for as long as the
      chat's state is unchanged, so an epoch re-pickles only the chats that changed.
    """

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
            chat_id: make_chat(restore(saved)) for chat_id, saved in (resume or {}).items()
        }
        self._wakes: list[tuple[float, int]] = []
        self._saved: dict[int, tuple[TurnsSnapshot, bytes]] = {}
        self._rebuild_wakes()

    def on_batch(self, values: list[Admitted | JobsDone]) -> tuple[Iterable[TurnOutput], bool]:
        by_chat: dict[int, list[Admitted]] = {}
        finished: dict[int, ChatTurns] = {}
        for item in values:
            if isinstance(item, JobsDone):
                for chat_id in item.chat_ids:
                    chat = self.chats.get(chat_id)
                    if chat is not None and chat.running:
                        finished[chat_id] = chat
            else:
                by_chat.setdefault(item.chat_id, []).append(item)
        outputs = self._wake(finished)
        for chat_id, items in by_chat.items():
            chat = self.chats.get(chat_id)
            if chat is None:
                chat = self.chats[chat_id] = self._make_chat(None)
            out, _ = chat.on_batch(items)
            outputs.extend(out)
            self._schedule(chat_id, chat)
        return outputs, self._keep()

    def on_notify(self) -> tuple[Iterable[TurnOutput], bool]:
        now = self._clock()
        due: dict[int, ChatTurns] = {}
        while self._wakes and self._wakes[0][0] <= now:
            at, chat_id = heapq.heappop(self._wakes)
            chat = self.chats.get(chat_id)
            if chat is not None and chat.next_wake() == at:
                due[chat_id] = chat
        return self._wake(due), self._keep()

    def on_eof(self) -> tuple[Iterable[TurnOutput], bool]:
        outputs: list[TurnOutput] = []
        for chat in self.chats.values():
            out, _ = chat.on_eof()
            outputs.extend(out)
        self._rebuild_wakes()
        return outputs, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """The earliest chat's wake, rounded up to the wake grid (see :data:`WAKE_GRID_S`)."""
        while self._wakes:
            at, chat_id = self._wakes[0]
            chat = self.chats.get(chat_id)
            if chat is not None and chat.next_wake() == at:
                return datetime.fromtimestamp(math.ceil(at / WAKE_GRID_S) * WAKE_GRID_S, tz=UTC)
            heapq.heappop(self._wakes)
        return None

    def snapshot(self) -> ShardSnapshot:
        out: ShardSnapshot = {}
        for chat_id, chat in self.chats.items():
            snapshot = chat.snapshot()
            saved = self._saved.get(chat_id)
            if saved is None or saved[0] != snapshot:
                saved = self._saved[chat_id] = (
                    snapshot,
                    pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL),
                )
            out[chat_id] = saved[1]
        return out

    def _wake(self, chats: dict[int, ChatTurns]) -> list[TurnOutput]:
        outputs: list[TurnOutput] = []
        for chat_id, chat in chats.items():
            out, discard = chat.on_notify()
            outputs.extend(out)
            if discard:
                del self.chats[chat_id]
                self._saved.pop(chat_id, None)
            else:
                self._schedule(chat_id, chat)
        return outputs

    def _keep(self) -> bool:
        return StatefulBatchLogic.DISCARD if not self.chats else StatefulBatchLogic.RETAIN

    def _schedule(self, chat_id: int, chat: ChatTurns) -> None:
        heapq.heappush(self._wakes, (chat.next_wake(), chat_id))
        if len(self._wakes) > 2 * len(self.chats) + 64:
            self._rebuild_wakes()

    def _rebuild_wakes(self) -> None:
        self._wakes = [(chat.next_wake(), chat_id) for chat_id, chat in self.chats.items()]
        heapq.heapify(self._wakes)
