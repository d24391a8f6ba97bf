"""A Kafka sink for Bytewax that does not lose a record when the broker does.

Bytewax 0.21's ``KafkaSink`` produces a batch, flushes, and never reads a delivery report: a record
that librdkafka gives up on (a timeout, or the idempotent producer's sequence broken by a broker
restart) vanishes while the epoch commits as if it had been written. This sink's commit order,
per batch:

1. produce every record with a delivery callback (waiting out a full local queue);
2. flush until librdkafka holds nothing more of this batch;
3. if some records failed, produce those again, in their order, after a capped backoff; a fatal
   producer error (the idempotent producer cannot go on) replaces the producer first;
4. return only when every record of the batch was acked, so Bytewax's snapshot after this batch
   never points past an unwritten reply; past ``retry_for_s`` raise, and the process restarts from
   its last snapshot (at least once, the sender's idempotency keys absorb the replay).

A retried record can land after a later record of the same partition had already been acked. With
the idempotent producer a failure takes every later in-flight record of that partition with it, so
this needs a failure that hits one record and spares the next; it is not prevented.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import structlog
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

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


class CheckedKafkaPartition(StatelessSinkPartition[OutRecord]):
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

    def write_batch(self, items: list[OutRecord]) -> None:
        pending = items
        deadline = time.monotonic() + self._retry_for_s
        backoff = 0.1
        while pending:
            failed = self._write_once(pending)
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
            pending = [record for record, _ in failed]

    def _write_once(self, items: list[OutRecord]) -> list[tuple[OutRecord, KafkaError]]:
        """Produce and flush ``items``; the ones that failed, in delivery-report order, with their errors.

        One bound callback for every record (no closure per record) and no ``poll`` per record:
        the reports are served by the flush, which waits for all of them anyway.
        """
        self._failures = []
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
        while self._producer.flush(1.0) > 0:
            pass
        return [(_as_record(msg), err) for msg, err in self._failures]

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append((msg, err))

    def _replace_producer(self) -> None:
        PRODUCERS_REPLACED.inc()
        log.warning("sink.producer_replaced")
        self._producer = self._make_producer()

    def close(self) -> None:
        self._producer.flush(10.0)


def _as_record(msg: Message) -> OutRecord:
    """The record to produce again, rebuilt from its failed message."""
    return KafkaSinkMessage(
        msg.key(), msg.value(), topic=msg.topic(), headers=cast(Any, msg.headers() or []), timestamp=0
    )


class CheckedKafkaSink(DynamicSink[OutRecord]):
    """One producer per worker; every record names its topic (``KafkaSinkMessage.topic``)."""

    def __init__(
        self, config: dict[str, Any], *, retry_for_s: float = 300.0, max_backoff_s: float = 5.0
    ) -> None:
        self._config = config
        self._retry_for_s = retry_for_s
        self._max_backoff_s = max_backoff_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> CheckedKafkaPartition:
        config = {**self._config, "client.id": f"{self._config.get('client.id', 'tgstream')}-{worker_index}"}
        return CheckedKafkaPartition(
            lambda: Producer(config), retry_for_s=self._retry_for_s, max_backoff_s=self._max_backoff_s
        )
