"""The Bytewax face of the Parquet sink: a FixedPartitionedSink over ParquetEventWriter.

Use it as ``op.output("parquet", keyed_events, ParquetSink.from_settings(settings))`` where
``keyed_events`` holds ``(event_key(event), event)`` pairs. Keying by ``chat_hash`` keeps one
chat's events in one partition, in order. Partitions are routed with ``zlib.crc32`` (never
``hash()``, which differs per process) and named with zero-padded numbers, so Bytewax's
ordered partition list and our modulo agree. The partition count is part of the recovery
state: change it only together with a fresh recovery store.

A value of ``None`` is a *tick*: it writes nothing but lets an idle partition's age rule
fire (Bytewax calls nothing on a partition that received nothing in an epoch). A dataflow
that wants hourly files to close on time under low traffic merges a periodic source that
emits ``(key, None)`` for every key in :meth:`ParquetSink.tick_keys`.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from pathlib import Path

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from tgstream.config import Settings
from tgstream.schemas.events import ConversationEvent
from tgstream.sinks.parquet import ParquetEventWriter, ParquetResume

DEFAULT_PARTITIONS = 4
_MAX_PARTITIONS = 1000


def event_key(event: ConversationEvent) -> str:
    """The routing key of an event: its chat, so a chat's events stay ordered in one file."""
    return event.chat_hash


def partition_name(index: int) -> str:
    return f"{index:03d}"


def partition_index(key: str, partitions: int) -> int:
    """Which partition a key is written to; stable across processes and restarts."""
    return zlib.crc32(key.encode()) % partitions


class _ParquetPartition(StatefulSinkPartition[ConversationEvent | None, ParquetResume]):
    def __init__(self, writer: ParquetEventWriter) -> None:
        self._writer = writer

    def write_batch(self, values: list[ConversationEvent | None]) -> None:
        self._writer.write([v for v in values if v is not None])

    def snapshot(self) -> ParquetResume:
        return self._writer.snapshot()

    def close(self) -> None:
        self._writer.close()


class ParquetSink(FixedPartitionedSink[ConversationEvent | None, ParquetResume]):
    """Hour-partitioned Parquet files of ConversationEvents; see :mod:`tgstream.sinks.parquet`."""

    def __init__(
        self,
        root: Path,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        roll_bytes: int,
        roll_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= partitions <= _MAX_PARTITIONS:
            msg = f"partitions must be between 1 and {_MAX_PARTITIONS}, got {partitions}"
            raise ValueError(msg)
        self.root = root
        self.partitions = partitions
        self._roll_bytes = roll_bytes
        self._roll_s = roll_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, partitions: int = DEFAULT_PARTITIONS) -> ParquetSink:
        return cls(
            settings.parquet_dir,
            partitions=partitions,
            roll_bytes=settings.parquet_roll_bytes,
            roll_s=settings.parquet_roll_s,
        )

    def list_parts(self) -> list[str]:
        return [partition_name(i) for i in range(self.partitions)]

    def part_fn(self, item_key: str) -> int:
        return zlib.crc32(item_key.encode())

    def build_part(
        self, step_id: str, for_part: str, resume_state: ParquetResume | None
    ) -> _ParquetPartition:
        writer = ParquetEventWriter(
            self.root,
            for_part,
            roll_bytes=self._roll_bytes,
            roll_s=self._roll_s,
            resume=resume_state,
            clock=self._clock,
        )
        return _ParquetPartition(writer)

    def tick_keys(self) -> list[str]:
        """One key per partition (in partition order) for sending ``None`` ticks."""
        keys: dict[int, str] = {}
        candidate = 0
        while len(keys) < self.partitions:
            key = f"tick-{candidate}"
            keys.setdefault(partition_index(key, self.partitions), key)
            candidate += 1
        return [keys[i] for i in range(self.partitions)]
