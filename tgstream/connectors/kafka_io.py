"""Kafka for the edge processes: an idempotent producer whose acks are awaitable, and a consumer
with manual commits that an asyncio program can drive.

confluent-kafka reports deliveries through callbacks fired inside ``poll()``. :class:`AsyncProducer`
runs that ``poll()`` on one daemon thread and hands each poll's finished deliveries to the event
loop in ONE ``call_soon_threadsafe``, so a burst of 1,000 acks costs one loop wake-up, not 1,000.

:class:`AsyncConsumer` runs every consumer call (poll, commit, pause) on one dedicated thread:
librdkafka tolerates calls from several threads, but its rebalance callbacks fire inside
``poll()``/``consume()``, and keeping all calls on one thread makes their order obvious.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from tgstream.config import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")
ERROR_HEADER = "tgstream-error"
ORIGIN_HEADER = "tgstream-origin"
Headers = list[tuple[str, str | bytes | None]]


class KafkaUnavailableError(Exception):
    """A record was not durably written: the broker is unreachable, slow, or refused it."""


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def producer_config(settings: Settings, *, client_id: str, delivery_timeout_s: float = 5.0) -> dict[str, Any]:
    """Idempotent and durable (acks=all): a retried produce never duplicates, an ack means replicated.

    ``message.timeout.ms`` is short so that a caller waiting on an ack (the gateway, with Telegram
    waiting on it) learns within seconds that Kafka is down and can answer 503.
    """
    timeout_ms = max(int(delivery_timeout_s * 1000), 100)
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 3,
        "compression.type": "lz4",
        "message.timeout.ms": timeout_ms,
        "request.timeout.ms": min(timeout_ms, 30_000),
        "queue.buffering.max.messages": 200_000,
        "log_level": 3,
    }


def consumer_config(settings: Settings, *, group_id: str, client_id: str) -> dict[str, Any]:
    """Manual commits only: an offset is committed by the caller once its record is fully handled."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10_000,
        "max.poll.interval.ms": 300_000,
        "log_level": 3,
    }


class AsyncProducer:
    """A confluent-kafka Producer whose :meth:`produce` returns when the broker acked the record.

    Lifecycle: :meth:`start` (starts the poll thread) -> :meth:`produce`... -> :meth:`close`
    (flushes what is queued, then stops the thread). ``close`` does not cancel waiting callers:
    their records are flushed and their futures resolved, so nothing is silently dropped.

    Stall watchdog: after a broker restart an idempotent librdkafka producer was seen to time out
    every record for over two minutes although the broker was back within seconds (the gateway
    answered 503 to 750 of 1,200 updates in one fault run). When deliveries have failed and none
    succeeded for ``stall_s`` while the cluster answers a metadata request, the poll thread
    replaces the producer: the old one's records are purged (their callers get the error at
    once, so the gateway answers 503 and Telegram retries) and a fresh producer, with a new
    producer id, takes the next records.
    """

    def __init__(self, config: dict[str, Any], *, stall_s: float = 15.0) -> None:
        self._config = config
        self._producer = Producer(config)
        self._swap = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._finished: list[tuple[asyncio.Future[Delivered], KafkaError | None, Message]] = []
        self._stall_s = stall_s
        self._failed_since_ack = 0
        self._healthy_since = time.monotonic()
        self.in_flight = 0
        self.last_ack_monotonic = 0.0
        self.replaced = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._thread.start()

    def submit(
        self, topic: str, value: bytes, *, key: bytes | str | None = None, headers: Headers | None = None
    ) -> asyncio.Future[Delivered]:
        """Queue one record now and return the future of its ack.

        Records submitted in order stay in order per partition (the producer is idempotent), which
        :meth:`produce` cannot promise to callers that interleave at ``await`` points. Raises
        :class:`KafkaUnavailableError` at once if the record cannot even be queued.
        """
        if self._loop is None:
            raise RuntimeError("AsyncProducer.start() must be called first")
        future: asyncio.Future[Delivered] = self._loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            self._finished.append((future, err, msg))

        try:
            with self._swap:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
        except BufferError as exc:
            raise KafkaUnavailableError("producer queue is full") from exc
        except KafkaException as exc:
            raise KafkaUnavailableError(str(exc.args[0])) from exc
        self.in_flight += 1
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: asyncio.Future[Delivered]) -> None:
        self.in_flight -= 1

    async def produce(
        self, topic: str, value: bytes, *, key: bytes | str | None = None, headers: Headers | None = None
    ) -> Delivered:
        """Write one record and wait for the broker's ack, or raise :class:`KafkaUnavailableError`."""
        return await self.submit(topic, value, key=key, headers=headers)

    def _poll_forever(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()
            if self._stalled():
                self._replace()

    def _hand_over(self) -> None:
        if not self._finished or self._loop is None:
            return
        batch, self._finished = self._finished, []
        failed = sum(1 for _, err, _ in batch if err is not None)
        if failed < len(batch):
            self._failed_since_ack = 0
            self._healthy_since = time.monotonic()
        self._failed_since_ack += failed
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, batch)

    def _stalled(self) -> bool:
        """Poll thread: failures only, for ``stall_s``, and the cluster answers (so it is us)."""
        if self._failed_since_ack == 0 or time.monotonic() - self._healthy_since < self._stall_s:
            return False
        try:
            self._producer.list_topics(timeout=2.0)
        except KafkaException:
            self._healthy_since = time.monotonic()  # the cluster is down: check again later
            return False
        return True

    def _replace(self) -> None:
        log.warning("kafka producer stalled; replacing it", failed=self._failed_since_ack)
        with self._swap:
            stuck, self._producer = self._producer, Producer(self._config)
        stuck.purge()
        stuck.flush(1.0)
        self._hand_over()
        self.replaced += 1
        self._failed_since_ack = 0
        self._healthy_since = time.monotonic()

    def _resolve(self, batch: list[tuple[asyncio.Future[Delivered], KafkaError | None, Message]]) -> None:
        for future, err, msg in batch:
            if future.done():
                continue
            if err is not None:
                future.set_exception(KafkaUnavailableError(f"{err.name()}: {err.str()}"))
            else:
                self.last_ack_monotonic = time.monotonic()
                future.set_result(Delivered(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))

    async def ready(self, timeout_s: float = 2.0) -> bool:
        """Whether the cluster answers a metadata request (used by /readyz)."""

        def probe() -> bool:
            try:
                self._producer.list_topics(timeout=timeout_s)
            except KafkaException:
                return False
            return True

        return await asyncio.get_running_loop().run_in_executor(None, probe)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the poll thread, then flush on a worker so late acks resolve their callers."""
        loop = asyncio.get_running_loop()
        self._stopping.set()
        if self._thread is not None:
            await loop.run_in_executor(None, self._thread.join, 2.0)
        await loop.run_in_executor(None, self._producer.flush, timeout_s)
        self._hand_over()
        await asyncio.sleep(0)


class AsyncConsumer:
    """A confluent-kafka Consumer driven from asyncio, every call on one worker thread.

    ``on_assign``/``on_revoke`` run on that worker thread, inside :meth:`consume`; they must be
    thread-safe with respect to the loop (the sender's offset tracker takes a lock).
    """

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        *,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None:
        self._config = config
        self._consumer = Consumer(config)
        self._probe: Consumer | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-consumer")
        self._topics = list(topics)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._paused = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _subscribe(self) -> None:
        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            log.info("partitions assigned", partitions=_names(partitions))
            if self._paused and partitions:
                consumer.pause(partitions)
            if self._on_assign:
                self._on_assign(partitions)

        def revoked(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            log.info("partitions revoked", partitions=_names(partitions))
            if self._on_revoke:
                self._on_revoke(partitions)

        def lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            log.warning("partitions lost", partitions=_names(partitions))
            if self._on_revoke:
                self._on_revoke(partitions)

        self._consumer.subscribe(self._topics, on_assign=assigned, on_revoke=revoked, on_lost=lost)

    async def subscribe(self) -> None:
        await self._run(self._subscribe)

    async def reconnect(self) -> None:
        """Leave the group and join again with a fresh consumer (its revocation callback runs first).

        After a broker restart librdkafka can keep a partition assigned with its fetcher idle
        while records pile up behind it (see tgstream.connectors.kafka_partition); a new consumer
        has none of that state.
        """

        def replace() -> None:
            try:
                self._consumer.close()
            except KafkaException as exc:
                log.warning("closing the stalled consumer failed", error=str(exc))
            self._consumer = Consumer(self._config)
            self._subscribe()

        await self._run(replace)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records on the broker past this consumer's position, per assigned partition.

        A partition with no position yet (nothing fetched since it was assigned) counts from its
        committed offset, or from its start when the group never committed one.

        The watermarks come from a second consumer that never joins the group or fetches: asked
        through the reading consumer, each query waited behind its long-poll fetch (about 500 ms
        per partition, measured here), holding up the records behind it: the sender's p99 at
        10 msg/s was 536 ms for that reason alone.
        """
        if self._probe is None:
            self._probe = Consumer(self._config)
        probe = self._probe

        def measure() -> dict[tuple[str, int], int]:
            assignment = self._consumer.assignment()
            if not assignment:
                return {}
            positions = self._consumer.position(assignment)
            unknown = [tp for tp in positions if tp.offset < 0]
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in (self._consumer.committed(unknown, timeout=2.0) if unknown else [])
            }
            lags = {}
            for tp in positions:
                low, high = probe.get_watermark_offsets(tp, timeout=2.0, cached=False)
                position = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
                lags[(tp.topic, tp.partition)] = max(0, high - (position if position >= 0 else low))
            return lags

        return await self._run(measure)

    def _fetch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Block for the first record only, then take what is already fetched.

        ``Consumer.consume(n, timeout)`` waits for ``n`` records *or* the whole timeout, so at low
        rates every record waited up to ``timeout``; ``poll`` returns as soon as one is there.
        """
        first: Message | None = self._consumer.poll(timeout_s)
        if first is None:
            return []
        if max_records <= 1:
            return [first]
        rest: list[Message] = self._consumer.consume(max_records - 1, 0)
        return [first, *rest]

    async def consume(self, max_records: int = 500, timeout_s: float = 0.2) -> list[Message]:
        """The next records, as soon as there is one (up to ``max_records``, waiting at most
        ``timeout_s``); a broker-level error is raised, per-partition errors are skipped."""
        records = await self._run(self._fetch, max_records, timeout_s)
        good = []
        for record in records:
            err = record.error()
            if err is None:
                good.append(record)
            elif err.fatal():
                raise KafkaUnavailableError(f"{err.name()}: {err.str()}")
        return good

    async def set_paused(self, paused: bool) -> None:
        """Stop or restart fetching without leaving the group (polling continues)."""
        if paused == self._paused:
            return
        self._paused = paused

        def apply() -> None:
            assignment = self._consumer.assignment()
            if assignment:
                (self._consumer.pause if paused else self._consumer.resume)(assignment)

        await self._run(apply)

    def commit_now(self, offsets: list[TopicPartition]) -> None:
        """Synchronous commit; only for use inside a rebalance callback (already on the worker)."""
        if offsets:
            self._consumer.commit(offsets=offsets, asynchronous=False)

    async def commit(self, offsets: list[TopicPartition]) -> None:
        if not offsets:
            return
        try:
            await self._run(lambda: self._consumer.commit(offsets=offsets, asynchronous=False))
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                return
            raise KafkaUnavailableError(f"commit failed: {err}") from exc

    async def close(self) -> None:
        await self._run(self._consumer.close)
        if self._probe is not None:
            await self._run(self._probe.close)
        self._executor.shutdown(wait=True)


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
