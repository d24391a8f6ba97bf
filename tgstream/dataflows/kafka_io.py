"""Where the conversation flow meets Kafka: the inbound source, decoding, and the one outbound sink.

Source. Offsets live only in recovery state (no consumer group), so the flow always runs with
recovery. Each partition is our :class:`~tgstream.connectors.kafka_partition.InboundPartition`
(Bytewax's own one mis-tracks offsets on consumer errors and can stall after a broker restart;
see that module), with the same resume state as Bytewax's; the partitions of one worker share
one consumer (:class:`~tgstream.connectors.kafka_partition.SharedReader`). Each is wrapped to add:

* backpressure: while the turn runner has more jobs in flight than its high-water mark, the
  partition returns nothing and asks to be woken 50 ms later. Offsets stay where they are, so
  nothing is lost; Kafka simply holds the messages until we can take them.
* a calmer idle poll: after an empty poll, wait until the next 5 ms mark (the same mark for every
  partition, so they wake the worker together) instead of Bytewax's 1 ms; this adds at most 5 ms
  to a message's latency.
* clock ticks (:class:`Tick`) every ``tick_every_s``, for the Parquet sink's age rule. They
  come from this source rather than a second ``op.input`` because, measured here, a flow with
  a ``KafkaSource`` and any second input keeps the Bytewax worker spinning at 40-80 % of a
  core while idle (each alone: 2 %).

Sink. Replies, events and dead letters all leave through ONE :class:`CheckedKafkaSink` with the
topic set per record, keyed by the record's Kafka key: its partitions produce without waiting and
make each epoch's snapshot wait until every record was acked (Bytewax's own ``KafkaSink`` ignores
failed deliveries), over one producer per worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from tgstream.config import Settings
from tgstream.connectors.kafka_partition import InboundPartition, SharedReader, SourceRecord
from tgstream.connectors.per_worker import PerWorker
from tgstream.dataflows.doorbell import JobsDone
from tgstream.dataflows.items import DeadLetter
from tgstream.schemas.codec import DecodeError, decode, encode
from tgstream.schemas.events import ConversationEvent, InboundMessage, Reply
from tgstream.sinks.kafka_checked import CheckedKafkaSink

OutRecord = KafkaSinkMessage[bytes | None, bytes | None]

PAUSED_RECHECK = timedelta(milliseconds=50)
IDLE_POLL = timedelta(milliseconds=5)
ERROR_HEADER = "tgstream-error"
ORIGIN_HEADER = "tgstream-origin"


@dataclass(frozen=True)
class Announcements:
    """What the source hands on besides records: ``take`` the items, ``idle`` if none can come (no
    job running). The defaults announce nothing."""

    take: Callable[[], list[Any]] = list
    idle: Callable[[], bool] = lambda: True


@dataclass(frozen=True, slots=True)
class Tick:
    """A clock tick from the source, for steps that must act on time even without traffic."""

    at: float


def on_grid(now: float, step: timedelta) -> datetime:
    """The first multiple of ``step`` (since the epoch) after ``now``.

    Every partition of a worker that waits, waits for the same instant, so twelve idle partitions
    wake the worker once per step instead of twelve times at staggered moments.

    >>> on_grid(1000.0012, timedelta(milliseconds=5)).timestamp()
    1000.005
    >>> on_grid(1000.005, timedelta(milliseconds=5)).timestamp()
    1000.01
    """
    step_us = int(step / timedelta(microseconds=1))
    next_us = (int(now * 1_000_000) // step_us + 1) * step_us
    return datetime.fromtimestamp(next_us / 1_000_000, UTC)


class _PolitePartition(StatefulSourcePartition[Any, Any]):
    """An inbound partition that pauses under backpressure, polls gently when idle, and ticks.

    It also carries the turn step's finished jobs (``announcements``, see doorbell.py): whichever
    partition of the process polls first takes them, paused or not.
    """

    def __init__(
        self,
        inner: InboundPartition,
        paused: Callable[[], bool],
        tick_every_s: float,
        announcements: Announcements,
    ) -> None:
        self._inner = inner
        self._paused = paused
        self._wake: datetime | None = None
        self._tick_every_s = tick_every_s
        self._next_tick = time.time() + tick_every_s
        self._announcements = announcements
        self._held = False

    def next_batch(self) -> list[Any]:
        """Finished jobs ride along on the poll grid: they never make the worker poll again at once.

        Only records do (more may be waiting). Re-polling for announcements too kept a busy
        worker activating per finished job, with batches of one, and at 200 msg/s cost more
        latency than it saved.
        """
        now = time.time()
        batch: list[Any] = self._announcements.take()
        if now >= self._next_tick:
            self._next_tick = now + self._tick_every_s
            batch.append(Tick(now))
        self._held = self._paused()
        if self._held:
            self._wake = on_grid(now, PAUSED_RECHECK if self._announcements.idle() else IDLE_POLL)
            return batch
        records = self._inner.next_batch()
        self._wake = None if records else on_grid(now, IDLE_POLL)
        batch.extend(records)
        return batch

    def next_awake(self) -> datetime | None:
        """Another partition's poll may have fetched this one's records meanwhile: take them now.

        Not while paused: records held back stay buffered, and waking for them would spin.
        """
        if not self._held and self._inner.buffered():
            return None
        return self._wake

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class InboundKafkaSource(FixedPartitionedSource[Any, Any]):
    """The inbound topic's partitions, each an :class:`InboundPartition` wrapped as above.

    Consumer errors are logged and counted; a fatal one raises so the process is restarted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        paused: Callable[[], bool] = lambda: False,
        tick_every_s: float = 30.0,
        announcements: Announcements | None = None,
    ) -> None:
        self._brokers = settings.kafka_bootstrap_servers
        self._topic = settings.topic_messages
        self._kafka = KafkaSource(brokers=self._brokers.split(","), topics=[self._topic])
        self._paused = paused
        self._tick_every_s = tick_every_s
        self._announcements = announcements or Announcements()
        self._readers = PerWorker(lambda _: SharedReader({"bootstrap.servers": self._brokers}, self._topic))

    def list_parts(self) -> list[str]:
        return self._kafka.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _PolitePartition:
        idx, topic = for_part.split("-", 1)
        if topic != self._topic:
            raise ValueError(f"cannot resume partition {for_part!r}: the inbound topic is {self._topic!r}")
        inner = InboundPartition(self._readers.get(), int(idx), resume_state)
        return _PolitePartition(inner, self._paused, self._tick_every_s, self._announcements)


def decode_record(record: SourceRecord | Tick | JobsDone) -> InboundMessage | DeadLetter | Tick | JobsDone:
    """An InboundMessage, or a dead letter carrying the original bytes and why it was refused."""
    if isinstance(record, Tick | JobsDone):
        return record
    try:
        return decode(InboundMessage, record.value)
    except DecodeError as exc:
        return DeadLetter(
            reason=exc.reason[:500],
            value=record.value,
            key=record.key,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


class OutboundTopics:
    """Turns each outgoing record into a Kafka message for its topic, keyed for per-chat order."""

    def __init__(self, settings: Settings) -> None:
        self.responses = settings.topic_responses
        self.events = settings.topic_events
        self.dead_letter = settings.topic_dead_letter

    def __call__(self, item: Reply | ConversationEvent | DeadLetter) -> OutRecord:
        if isinstance(item, Reply):
            return KafkaSinkMessage(str(item.chat_id).encode(), encode(item), topic=self.responses)
        if isinstance(item, ConversationEvent):
            return KafkaSinkMessage(item.chat_hash.encode(), encode(item), topic=self.events)
        origin = f"{item.topic}/{item.partition}@{item.offset}".encode()
        return KafkaSinkMessage(
            item.key,
            item.value,
            topic=self.dead_letter,
            headers=[(ERROR_HEADER, item.reason.encode()), (ORIGIN_HEADER, origin)],
        )


def outbound_sink(settings: Settings) -> CheckedKafkaSink:
    """One idempotent producer for every outbound topic; each record names its own topic.

    A delivery that fails is produced again (see :mod:`tgstream.sinks.kafka_checked`), so the
    timeout only bounds how long one attempt waits for the broker. ``linger.ms`` is 2, not 5: the
    linger is on every reply's path, and at 100 msg/s (benchmarks/stage_latency.py) the shorter one
    took 3-4 ms off the sink-to-Telegram stage p50.
    """
    return CheckedKafkaSink(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "client.id": "tgstream-dataflow",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "compression.type": "lz4",
            "message.timeout.ms": 30_000,
            "log_level": 3,
        }
    )
