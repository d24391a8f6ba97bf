"""One Kafka partition read for Bytewax, with offsets that survive a broker restart.

Why not Bytewax 0.21's ``KafkaSource`` partition: it sets its resume offset from every event
``consume()`` returns, error events included, whose offset is not a real position (-1001 or a
stale one), so a snapshot taken after a broker error can resume at the wrong place; and after a
broker restart a consumer that uses ``assign()`` can stay stuck with its fetcher idle while the
partition grows (librdkafka issue #5153; seen here: 375 of 1200 updates never read). This
partition keeps the same resume state (the next offset to read, or ``None``) and adds:

* only real records move the offset (:class:`OffsetTracker`);
* consumer error events are logged and counted; a fatal one raises, so the process exits and a
  supervisor restarts it from the last snapshot;
* a stall watchdog: when nothing arrived for ``stall_s`` yet the broker's high watermark is past
  our next offset, the partition is read by a fresh consumer from that offset, which drops librdkafka's stuck
  fetch state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter

log = structlog.get_logger(__name__)

SourceRecord = KafkaSourceMessage[bytes | None, bytes | None]

CONSUMER_ERRORS = Counter(
    "tgstream_source_consumer_errors_total", "Error events from the inbound Kafka consumer", ["code"]
)
REASSIGNED = Counter(
    "tgstream_source_reassigned_total",
    "Inbound partitions re-read by a fresh consumer because fetching had stalled",
)


class KafkaSourceFatal(RuntimeError):
    """The inbound consumer hit an error it cannot recover from; restart the process."""


@dataclass(slots=True)
class OffsetTracker:
    """The next offset to read: advanced by records only, never by error events."""

    next_offset: int | None

    def seen(self, offset: int) -> None:
        if offset < 0:
            return
        if self.next_offset is None or offset + 1 > self.next_offset:
            self.next_offset = offset + 1

    def lagging_behind(self, high_watermark: int) -> bool:
        """True when the broker holds records at or past the offset we would read next."""
        start = 0 if self.next_offset is None else self.next_offset
        return high_watermark > start


class InboundPartition(StatefulSourcePartition[SourceRecord, int | None]):
    """Reads one partition with ``assign()`` (no consumer group: offsets live in Bytewax snapshots)."""

    def __init__(
        self,
        config: dict[str, str],
        topic: str,
        partition: int,
        resume_state: int | None,
        *,
        batch_size: int = 500,
        stall_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._batch_size = batch_size
        self._stall_s = stall_s
        self._clock = clock
        self._offsets = OffsetTracker(resume_state)
        self._last_progress = clock()
        self._config = {"group.id": "tgstream-unused", "enable.auto.commit": "false", **config}
        self._consumer = self._connect()

    def _connect(self) -> Consumer:
        consumer = Consumer(self._config)
        start = OFFSET_BEGINNING if self._offsets.next_offset is None else self._offsets.next_offset
        consumer.assign([TopicPartition(self._topic, self._partition, start)])
        return consumer

    def next_batch(self) -> list[SourceRecord]:
        batch: list[SourceRecord] = []
        for msg in self._consumer.consume(self._batch_size, 0.001):
            error = msg.error()
            if error is not None:
                CONSUMER_ERRORS.labels(code=error.name()).inc()
                if error.fatal():
                    raise KafkaSourceFatal(f"inbound consumer {self._topic}/{self._partition}: {error.str()}")
                log.warning(
                    "inbound consumer error",
                    topic=self._topic,
                    partition=self._partition,
                    error=error.str(),
                    retriable=error.retriable(),
                )
                continue
            batch.append(_record(msg))
            offset = msg.offset()
            if offset is not None:
                self._offsets.seen(offset)
        now = self._clock()
        if batch:
            self._last_progress = now
        elif now - self._last_progress >= self._stall_s:
            self._last_progress = now
            self._unstick()
        return batch

    def _unstick(self) -> None:
        """Reconnect if the broker has records we are not getting; a no-op when merely idle.

        A fresh consumer, not ``assign()`` again: a re-assigned partition keeps librdkafka's
        per-partition state (a paused one, measured here, stays paused), a new consumer does not.
        """
        try:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, self._partition), timeout=1.0, cached=False
            )
        except KafkaException as exc:
            log.warning(
                "inbound watermark query failed", topic=self._topic, partition=self._partition, error=str(exc)
            )
            return
        if self._offsets.lagging_behind(high):
            REASSIGNED.inc()
            log.warning(
                "inbound partition stalled; reconnecting",
                topic=self._topic,
                partition=self._partition,
                next_offset=self._offsets.next_offset,
                high_watermark=high,
            )
            self._consumer.close()
            self._consumer = self._connect()

    def snapshot(self) -> int | None:
        return self._offsets.next_offset

    def close(self) -> None:
        self._consumer.close()


def _record(msg: Message) -> SourceRecord:
    return KafkaSourceMessage(
        key=msg.key(),
        value=msg.value(),
        topic=msg.topic(),
        headers=_headers(msg),
        latency=msg.latency(),
        offset=msg.offset(),
        partition=msg.partition(),
        timestamp=msg.timestamp(),
    )


def _headers(msg: Message) -> list[tuple[str, bytes]]:
    """A consumed record's headers are a list of pairs; a header without a value becomes ``b""``."""
    raw = msg.headers()
    if not isinstance(raw, list):
        return []
    return [(key, value.encode() if isinstance(value, str) else value or b"") for key, value in raw]
