"""Where the conversation flow meets Kafka: the inbound source, decoding, and the one outbound sink.

Source. Bytewax's ``KafkaSource`` keeps offsets only in recovery state (no consumer group), so
the flow always runs with recovery. We wrap each of its partitions to add two things it lacks:

* backpressure: while the turn runner has more jobs in flight than its high-water mark, the
  partition returns nothing and asks to be woken 50 ms later. Offsets stay where they are, so
  nothing is lost; Kafka simply holds the messages until we can take them.
* a calmer idle poll: after an empty poll, wait 5 ms instead of Bytewax's 1 ms, which costs an
  idle worker a few percent of a core less and adds at most 5 ms to a message's latency.
* clock ticks (:class:`Tick`) every ``tick_every_s``, for the Parquet sink's age rule. They
  come from this source rather than a second ``op.input`` because, measured here, a flow with
  a ``KafkaSource`` and any second input keeps the Bytewax worker spinning at 40-80 % of a
  core while idle (each alone: 2 %).

Sink. Replies, events and dead letters all leave through ONE ``KafkaSink`` with the topic set
per record: Bytewax's sink flushes the producer after every batch (that flush is what makes
delivery at-least-once), and one sink means one flush per batch instead of three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from tgstream.config import Settings
from tgstream.dataflows.items import DeadLetter
from tgstream.schemas.codec import DecodeError, decode, encode
from tgstream.schemas.events import ConversationEvent, InboundMessage, Reply

RawRecord = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]
OutRecord = KafkaSinkMessage[bytes | None, bytes | None]

PAUSED_RECHECK = timedelta(milliseconds=50)
IDLE_POLL = timedelta(milliseconds=5)
ERROR_HEADER = "tgstream-error"
ORIGIN_HEADER = "tgstream-origin"


@dataclass(frozen=True, slots=True)
class Tick:
    """A clock tick from the source, for steps that must act on time even without traffic."""

    at: float


class _PolitePartition(StatefulSourcePartition[Any, Any]):
    """A KafkaSource partition that pauses under backpressure, polls gently when idle, and ticks."""

    def __init__(
        self, inner: StatefulSourcePartition[Any, Any], paused: Callable[[], bool], tick_every_s: float
    ) -> None:
        self._inner = inner
        self._paused = paused
        self._wake: datetime | None = None
        self._tick_every_s = tick_every_s
        self._next_tick = time.time() + tick_every_s

    def next_batch(self) -> list[Any]:
        now = time.time()
        batch: list[Any] = []
        if now >= self._next_tick:
            self._next_tick = now + self._tick_every_s
            batch.append(Tick(now))
        if self._paused():
            self._wake = datetime.now(UTC) + PAUSED_RECHECK
            return batch
        batch.extend(self._inner.next_batch())
        self._wake = None if batch else datetime.now(UTC) + IDLE_POLL
        return batch

    def next_awake(self) -> datetime | None:
        return self._wake

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class InboundKafkaSource(FixedPartitionedSource[Any, Any]):
    """Bytewax's ``KafkaSource`` on the inbound topic, with its partitions wrapped as above.

    Consumer errors never raise: they arrive as ``KafkaError`` items and become dead letters.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        paused: Callable[[], bool] = lambda: False,
        tick_every_s: float = 30.0,
    ) -> None:
        self._kafka = KafkaSource(
            brokers=settings.kafka_bootstrap_servers.split(","),
            topics=[settings.topic_messages],
            tail=True,
            batch_size=500,
            raise_on_errors=False,
        )
        self._paused = paused
        self._tick_every_s = tick_every_s

    def list_parts(self) -> list[str]:
        return self._kafka.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _PolitePartition:
        return _PolitePartition(
            self._kafka.build_part(step_id, for_part, resume_state), self._paused, self._tick_every_s
        )


def decode_record(record: RawRecord | Tick) -> InboundMessage | DeadLetter | Tick:
    """An InboundMessage, or a dead letter carrying the original bytes and why it was refused."""
    if isinstance(record, Tick):
        return record
    if isinstance(record, KafkaError):
        source = record.msg
        return DeadLetter(
            reason=f"kafka consumer error: {record.err.str()}"[:500],
            value=source.value,
            key=source.key,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
        )
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


def outbound_sink(settings: Settings) -> KafkaSink:
    """One idempotent producer for every outbound topic (``topic=None``: each record names its own)."""
    return KafkaSink(
        brokers=settings.kafka_bootstrap_servers.split(","),
        topic=None,
        add_config={
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": "2",
            "compression.type": "lz4",
        },
    )
