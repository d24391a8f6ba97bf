"""A Kafka sink for Bytewax that does not lose a record when the broker does, nor block per batch.

Bytewax 0.21's ``KafkaSink`` produces a batch, flushes, and never reads a delivery report: a record
that librdkafka gives up on (a timeout, or the idempotent producer's sequence broken by a broker
restart) vanishes while the epoch commits as if it had been written. This sink is a
``FixedPartitionedSink`` whose partitions make the epoch's snapshot the commit point:

1. ``write_batch`` produces every record with a delivery callback (waiting out a full local queue)
   and returns at once; librdkafka sends them within ``linger.ms``. A batch no longer waits for its
   acks on the Bytewax worker thread (it did: a flush per batch, up to 200 a second, each a round
   trip to the broker).
2. ``snapshot``, called at the end of every epoch the partition wrote in, before the epoch
   commits, flushes until librdkafka holds nothing more; records that failed are produced again,
   in their order, after a capped backoff (a fatal producer error replaces the producer first).
3. It returns only when every record written so far was acked, so a committed epoch never points
   past an unwritten reply; past ``retry_for_s`` it raises, and the process restarts from its
   last snapshot (at least once, the sender's idempotency keys absorb the replay).

The partitions of one worker share one producer (one connection, one batch per linger); the sink
keeps no state of its own. A retried record can land after a later record of the same Kafka
partition had already been acked. With the idempotent producer a failure takes every later
in-flight record of that partition with it, so this needs a failure that hits one record and
spares the next; it is not prevented.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any, cast

import structlog
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

from tgstream.connectors.per_worker import PerWorker

log = structlog.get_logger(__name__)

OutRecord = KafkaSinkMessage[bytes | None, bytes | None]

RETRIED = Counter(
    "tgstream_sink_records_retried_total",
    "Outbound records produced again after a failed delivery",
    ["error"],
)
PRODUCERS_REPLACED = Counter(
    "tgstream_sink_producers_replaced_total", "Outbound producers rebuilt after a fatal error"
)


class OutboundDeliveryError(RuntimeError):
    """Records were still unacked when the retry budget ran out."""


class SharedProducer:
    """One producer for the sink partitions of a worker, and what it failed to deliver."""

    def __init__(
        self,
        make_producer: Callable[[], Producer],
        *,
        retry_for_s: float,
        max_backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._make_producer = make_producer
        self._producer = make_producer()
        self._retry_for_s = retry_for_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._failures: list[tuple[Message, KafkaError]] = []

    def produce(self, items: list[OutRecord]) -> None:
        """Queue ``items`` in order with one bound delivery callback; serves reports already due."""
        produce = self._producer.produce
        for record in items:
            if record.topic is None:
                raise ValueError(f"outbound record without a topic: key={record.key!r}")
            while True:
                try:
                    produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=cast(Any, record.headers) or None,
                        timestamp=record.timestamp,
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
        self._producer.poll(0)

    def settle(self) -> None:
        """Return once everything produced so far was acked; retry failures; raise past the budget."""
        deadline = time.monotonic() + self._retry_for_s
        backoff = 0.1
        while True:
            while self._producer.flush(1.0) > 0:
                pass
            failed, self._failures = self._failures, []
            if not failed:
                return
            errors = [error for _, error in failed]
            for error in errors:
                RETRIED.labels(error.name()).inc()
            if any(error.fatal() for error in errors):
                self._replace_producer()
            if time.monotonic() + backoff > deadline:
                raise OutboundDeliveryError(
                    f"{len(failed)} records unacked after {self._retry_for_s:.0f} s; last: {errors[-1].str()}"
                )
            log.warning(
                "sink.delivery_failed_retrying",
                records=len(failed),
                error=errors[-1].name(),
                backoff_s=backoff,
            )
            self._sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)
            self.produce([_as_record(msg) for msg, _ in failed])

    def close(self) -> None:
        self._producer.flush(10.0)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append((msg, err))

    def _replace_producer(self) -> None:
        PRODUCERS_REPLACED.inc()
        log.warning("sink.producer_replaced")
        self._producer = self._make_producer()


class CheckedKafkaPartition(StatefulSinkPartition[OutRecord, None]):
    """One sink partition: writes through its worker's producer; its snapshot is the commit point."""

    def __init__(self, producer: SharedProducer) -> None:
        self._producer = producer

    def write_batch(self, items: list[OutRecord]) -> None:
        self._producer.produce(items)

    def snapshot(self) -> None:
        self._producer.settle()

    def close(self) -> None:
        self._producer.close()


def _as_record(msg: Message) -> OutRecord:
    """The record to produce again, rebuilt from its failed message."""
    return KafkaSinkMessage(
        msg.key(), msg.value(), topic=msg.topic(), headers=cast(Any, msg.headers() or []), timestamp=0
    )


def route_key(record: OutRecord) -> str:
    """What picks a record's sink partition: its Kafka key, so one chat's records keep their order."""
    return record.key.decode("utf-8", "replace") if record.key else ""


class CheckedKafkaSink(FixedPartitionedSink[OutRecord, None]):
    """Sink partitions over one producer per worker; every record names its own topic.

    Items are ``(route_key(record), record)``. The partition count only spreads the records over
    workers: the partitions keep no state, so it may change between runs.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        partitions: int = 8,
        retry_for_s: float = 300.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self._config = config
        self._partitions = partitions
        self._retry_for_s = retry_for_s
        self._max_backoff_s = max_backoff_s
        self._producers = PerWorker(self._new_producer)

    def list_parts(self) -> list[str]:
        return [f"{index:03d}" for index in range(self._partitions)]

    def part_fn(self, item_key: str) -> int:
        return zlib.crc32(item_key.encode())

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> CheckedKafkaPartition:
        return CheckedKafkaPartition(self._producers.get())

    def _new_producer(self, worker: int) -> SharedProducer:
        config = {**self._config, "client.id": f"{self._config.get('client.id', 'tgstream')}-{worker}"}
        return SharedProducer(
            lambda: Producer(config), retry_for_s=self._retry_for_s, max_backoff_s=self._max_backoff_s
        )
