"""Which Kafka offsets may be committed: only those below the lowest record still being handled.

Records of one partition finish out of order (they belong to different chats), so the commit
point of a partition is the lowest offset not yet finished; everything below it is done. The
tracker is shared between the event loop (start/finish) and the consumer thread (rebalance
callbacks commit and drop revoked partitions), hence the lock.

A partition that is revoked first stops starting work: records of it still queued see
``revoked`` and are skipped (the new owner re-reads them from the committed offset). The records
already being delivered (between :meth:`begin` and :meth:`end`) are waited for, up to a bound, so
their offsets are in the final commit and the new owner does not send them again. Then the
partition is dropped, and late ``finish`` calls (of deliveries that outlived the bound) are
ignored, so a stale completion can never commit past a record the new owner has not handled.

>>> offsets = PartitionOffsets()
>>> a = offsets.start("t", 0, 10); b = offsets.start("t", 0, 11); c = offsets.start("t", 0, 12)
>>> offsets.finish(b, 11); offsets.commit_points()
[]
>>> offsets.finish(a, 10); [(tp.partition, tp.offset) for tp in offsets.commit_points()]
[(0, 12)]
"""

from __future__ import annotations

import threading
from collections import deque

from confluent_kafka import TopicPartition


class PartitionState:
    """One assigned partition's offsets in flight; ``revoked`` flips once, never back."""

    __slots__ = (
        "active",
        "committed",
        "done",
        "dropped",
        "in_flight",
        "next_commit",
        "partition",
        "revoked",
        "topic",
    )

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.in_flight: deque[int] = deque()
        self.done: set[int] = set()
        self.next_commit: int | None = None
        self.committed: int | None = None
        self.revoked = False
        self.dropped = False
        self.active = 0


class PartitionOffsets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._parts: dict[tuple[str, int], PartitionState] = {}

    def start(self, topic: str, partition: int, offset: int) -> PartitionState:
        with self._lock:
            state = self._parts.get((topic, partition))
            if state is None:
                state = self._parts[(topic, partition)] = PartitionState(topic, partition)
            state.in_flight.append(offset)
            return state

    def begin(self, state: PartitionState) -> bool:
        """Claim the right to handle one record of ``state``; False once the partition is revoked."""
        with self._lock:
            if state.revoked:
                return False
            state.active += 1
            return True

    def end(self, state: PartitionState) -> None:
        """Release a :meth:`begin` claim (after :meth:`finish`, or when the record was abandoned)."""
        with self._lock:
            state.active -= 1
            if state.active <= 0:
                self._idle.notify_all()

    def finish(self, state: PartitionState, offset: int) -> None:
        with self._lock:
            if state.dropped:
                return
            state.done.add(offset)
            while state.in_flight and state.in_flight[0] in state.done:
                finished = state.in_flight.popleft()
                state.done.discard(finished)
                state.next_commit = finished + 1

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(len(s.in_flight) for s in self._parts.values())

    def commit_points(self) -> list[TopicPartition]:
        """Positions that advanced since the last :meth:`committed` call."""
        with self._lock:
            return [
                TopicPartition(s.topic, s.partition, s.next_commit)
                for s in self._parts.values()
                if s.next_commit is not None and s.next_commit != s.committed
            ]

    def committed(self, points: list[TopicPartition]) -> None:
        with self._lock:
            for tp in points:
                state = self._parts.get((tp.topic, tp.partition))
                if state is not None and (state.committed is None or tp.offset > state.committed):
                    state.committed = tp.offset

    def revoke(self, partitions: list[TopicPartition], wait_s: float = 0.0) -> list[TopicPartition]:
        """Stop these partitions, wait up to ``wait_s`` for their records being delivered, drop them;
        returns their final commit points (to commit before handing over).

        Called on the consumer thread; the deliveries it waits for run on the event loop."""
        final = []
        keys = [(tp.topic, tp.partition) for tp in partitions]
        with self._lock:
            states = [s for s in (self._parts.get(k) for k in keys) if s is not None]
            for stopping in states:
                stopping.revoked = True
            self._idle.wait_for(lambda: all(s.active <= 0 for s in states), timeout=wait_s)
            for key in keys:
                state = self._parts.pop(key, None)
                if state is None:
                    continue
                state.dropped = True
                if state.next_commit is not None and state.next_commit != state.committed:
                    final.append(TopicPartition(state.topic, state.partition, state.next_commit))
        return final
