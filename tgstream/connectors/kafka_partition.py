"""Kafka partitions read for Bytewax through one consumer per worker, with offsets that survive a
broker restart.

Why not Bytewax 0.21's ``KafkaSource`` partition: it sets its resume offset from every event
``consume()`` returns, error events included, whose offset is not a real position (-1001 or a
stale one), so a snapshot taken after a broker error can resume at the wrong place; and after a
broker restart a consumer that uses ``assign()`` can stay stuck with its fetcher idle while the
partition grows (librdkafka issue #5153; seen here: 375 of 1200 updates never read). These
partitions keep the same resume state (the next offset to read, or ``None``), share one consumer
per worker (:class:`SharedReader`), and add:

* only real records move the offset (:class:`OffsetTracker`);
* consumer error events are logged and counted; a fatal one raises, so the process exits and a
  supervisor restarts it from the last snapshot;
* a stall watchdog: when nothing arrived for ``stall_s`` yet the broker's high watermark is past
  our next offset, the partition is read by a fresh consumer from that offset, which drops librdkafka's stuck
  fetch state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter

from tgstream.connectors.source_lag import SourceLag, consumer_watermarks

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


class SharedReader:
    """One librdkafka consumer for every inbound partition of one Bytewax worker.

    Bytewax builds one source partition per Kafka partition and polls each of them on every
    activation of the worker. With a consumer per partition that was 12 consumers, each with its
    own broker connection and threads, each asked ``consume(500, 1 ms)`` in turn: 21 % of the
    dataflow's busy CPU samples at 80 msg/s sat in those calls. Here one consumer is assigned all of
    the worker's partitions and polled without blocking at most once per ``min_poll_gap_s``; the
    records it returns wait in per-partition buffers until their partition asks for them.

    Offsets stay per partition (:class:`OffsetTracker`, moved by the records a partition *emits*),
    so a buffered record that was never emitted is read again after a restart. Every (re)assign
    drops the buffers and starts each partition at its tracker's offset.

    Lifecycle: :meth:`register` each partition (assigns it), :meth:`take` from the worker's thread,
    :meth:`unregister` on close; the consumer closes with the last partition.
    """

    def __init__(
        self,
        config: dict[str, str],
        topic: str,
        *,
        batch_size: int = 500,
        stall_s: float = 5.0,
        min_poll_gap_s: float = 0.001,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self._config = {
            "group.id": "tgstream-unused",
            "enable.auto.commit": "false",
            "queued.max.messages.kbytes": "16384",
            **config,
        }
        self._batch_size = batch_size
        self._stall_s = stall_s
        self._min_poll_gap_s = min_poll_gap_s
        self._clock = clock
        self._lock = threading.Lock()
        self._trackers: dict[int, OffsetTracker] = {}
        self._buffers: dict[int, list[SourceRecord]] = {}
        self._progress: dict[int, float] = {}
        self._last_poll = -1e9
        self._consumer: Consumer | None = None
        self._probe: Consumer | None = None
        self.lag = SourceLag(self.positions, consumer_watermarks(lambda: self._consumer, topic), clock=clock)

    def register(self, partition: int, offsets: OffsetTracker) -> None:
        with self._lock:
            self._trackers[partition] = offsets
            self._progress[partition] = self._clock()
            self._assign_all()

    def unregister(self, partition: int) -> bool:
        """Forget ``partition``; True when it was the last one (the consumer is then closed)."""
        with self._lock:
            self._trackers.pop(partition, None)
            self._buffers.pop(partition, None)
            self._progress.pop(partition, None)
            if self._trackers:
                return False
            self._close_clients()
            return True

    def positions(self) -> dict[int, int | None]:
        """The next offset each partition will emit (for lag metrics)."""
        return {partition: tracker.next_offset for partition, tracker in self._trackers.items()}

    def buffered(self, partition: int) -> bool:
        return bool(self._buffers.get(partition))

    def take(self, partition: int) -> list[SourceRecord]:
        """The records read for ``partition`` so far; polls the consumer if it has none buffered."""
        with self._lock:
            self.lag.maybe_refresh()
            if not self._buffers.get(partition) and self._clock() - self._last_poll >= self._min_poll_gap_s:
                self._poll()
            records = self._buffers.get(partition)
            now = self._clock()
            if records:
                self._buffers[partition] = []
                self._progress[partition] = now
                tracker = self._trackers[partition]
                for record in records:
                    if record.offset is not None:
                        tracker.seen(record.offset)
                return records
            if now - self._progress.get(partition, now) >= self._stall_s:
                self._progress[partition] = now
                self._unstick(partition)
            return []

    def close(self) -> None:
        with self._lock:
            self._close_clients()

    def _close_clients(self) -> None:
        for client in (self._consumer, self._probe):
            if client is not None:
                client.close()
        self._consumer = self._probe = None

    def _assign_all(self) -> None:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        self._buffers = {partition: [] for partition in self._trackers}
        self._consumer.assign(
            [
                TopicPartition(
                    self.topic, partition, OFFSET_BEGINNING if t.next_offset is None else t.next_offset
                )
                for partition, t in self._trackers.items()
            ]
        )

    def _live(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError(f"inbound reader of {self.topic} used after its last partition closed")
        return self._consumer

    def _poll(self) -> None:
        self._last_poll = self._clock()
        for msg in self._live().consume(self._batch_size, 0):
            error = msg.error()
            if error is not None:
                CONSUMER_ERRORS.labels(code=error.name()).inc()
                if error.fatal():
                    raise KafkaSourceFatal(f"inbound consumer {self.topic}: {error.str()}")
                log.warning(
                    "inbound consumer error",
                    topic=self.topic,
                    partition=msg.partition(),
                    error=error.str(),
                    retriable=error.retriable(),
                )
                continue
            partition = msg.partition()
            buffer = None if partition is None else self._buffers.get(partition)
            if buffer is not None:
                buffer.append(_record(msg))

    def _unstick(self, partition: int) -> None:
        """Reconnect if the broker has records we are not getting; a no-op when merely idle.

        A fresh consumer, not ``assign()`` again: a re-assigned partition keeps librdkafka's
        per-partition state (a paused one, measured here, stays paused), a new consumer does not.

        The broker is asked through a second consumer that never fetches: asked through the reading
        consumer, the query waited behind its long-poll fetch (500 ms each, measured here), on the
        Bytewax worker's thread, for every idle partition every ``stall_s``. The probe answers in
        about a millisecond.
        """
        if self._probe is None:
            self._probe = Consumer(self._config)
        try:
            _low, high = self._probe.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=1.0, cached=False
            )
        except KafkaException as exc:
            log.warning(
                "inbound watermark query failed", topic=self.topic, partition=partition, error=str(exc)
            )
            return
        if self._trackers[partition].lagging_behind(high):
            REASSIGNED.inc()
            log.warning(
                "inbound partition stalled; reconnecting",
                topic=self.topic,
                partition=partition,
                next_offset=self._trackers[partition].next_offset,
                high_watermark=high,
            )
            self._live().close()
            self._consumer = None
            self._assign_all()


class InboundPartition(StatefulSourcePartition[SourceRecord, int | None]):
    """One inbound partition, read through its worker's :class:`SharedReader`.

    Resume state: the next offset to read (``None`` before the first record), as Bytewax's own
    Kafka partition keeps it, so existing recovery stores keep working.
    """

    def __init__(self, reader: SharedReader, partition: int, resume_state: int | None) -> None:
        self._reader = reader
        self._partition = partition
        self._offsets = OffsetTracker(resume_state)
        reader.register(partition, self._offsets)

    def next_batch(self) -> list[SourceRecord]:
        return self._reader.take(self._partition)

    def buffered(self) -> bool:
        """Records are waiting here already: the next call needs no wait."""
        return self._reader.buffered(self._partition)

    def snapshot(self) -> int | None:
        return self._offsets.next_offset

    def close(self) -> None:
        self._reader.unregister(self._partition)


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
