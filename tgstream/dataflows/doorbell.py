"""Finished jobs announce themselves to the Bytewax worker instead of waiting to be polled.

Why. A turn's job runs on the background loop; the turn step learns that it finished only when
Bytewax next calls the chat's shard. With polls alone, that call came on a schedule guessed from
the expected latency (first at 90 % of it, then every 5 % of the elapsed time): 11.6 ms p50 from
the reply being built to it reaching the Kafka sink at 100 msg/s
(``benchmarks/stage_latency.py``), and three to four shard wake-ups per job.

Python cannot wake a parked Bytewax worker, but the worker already wakes on the source's 5 ms
idle grid. So the job's done-callback rings a :class:`Doorbell`, the Kafka source drains it on its
next wake and emits one :class:`JobsDone` per shard, and the shard collects exactly those chats.
The polls stay as a slow safety net (:func:`~tgstream.dataflows.turns.safety_poll`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobsDone:
    """The chats of one turn shard whose running job has finished."""

    shard: str
    chat_ids: tuple[int, ...]


class Doorbell:
    """A thread-safe set of chats with a finished job, rung from any thread, drained by the source.

    >>> bell = Doorbell()
    >>> bell.ring(7); bell.ring(7); bell.ring(9)
    >>> sorted(bell.drain()), bell.drain()
    ([7, 9], [])
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chats: set[int] = set()
        self.answered = False
        """Set once something drains the bell: until then nobody listens, and polls must be quick."""

    def ring(self, chat_id: int) -> None:
        with self._lock:
            self._chats.add(chat_id)

    def drain(self) -> list[int]:
        self.answered = True
        if not self._chats:
            return []
        with self._lock:
            chats, self._chats = self._chats, set()
        return list(chats)
