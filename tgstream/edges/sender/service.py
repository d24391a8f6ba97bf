"""The sender's consume -> schedule -> deliver -> commit loop.

Commit order, per record:

1. the record is read and its offset registered as in flight for its partition;
2. it is queued on its chat's FIFO and delivered (or dead-lettered, with the dead-letter write
   acked by Kafka before going on);
3. its offset is finished; a partition's commit point advances past it only once every earlier
   record of that partition is finished too;
4. the commit loop commits the advanced points every ``commit_interval_s``, on revocation, and
   once more at shutdown after the queues drained.

So a crash loses no reply (uncommitted records are read again) and the sent-part markers keep the
replay from reaching users twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaException, Message, TopicPartition
from telegram.error import InvalidToken
from tenacity import AsyncRetrying, retry_if_result, wait_exponential

from tgstream.connectors.kafka_io import ERROR_HEADER, ORIGIN_HEADER, AsyncConsumer, AsyncProducer
from tgstream.edges.sender.delivery import Outcome, ReplyDelivery
from tgstream.edges.sender.metrics import SenderMetrics
from tgstream.edges.sender.offsets import PartitionOffsets, PartitionState
from tgstream.edges.sender.scheduler import ChatScheduler
from tgstream.schemas.codec import DecodeError, decode
from tgstream.schemas.events import Reply

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Job:
    chat_id: int
    offset: int
    partition: PartitionState
    raw: bytes | None
    key: bytes | None
    reply: Reply | None
    error: str | None


@dataclass(frozen=True)
class LoopOptions:
    max_concurrency: int = 256
    max_pending: int = 2000
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 30.0
    revoke_wait_s: float = 10.0
    """How long a revocation waits for the partition's sends in progress (well below the
    consumer's max.poll.interval, which bounds how long a rebalance callback may block)."""
    lag_every_s: float = 5.0
    stall_after_s: float = 15.0
    """No record for this long while the broker holds records past our position: the consumer
    is stuck (librdkafka after a broker restart) and is replaced by a fresh one."""


def stalled(*, idle_s: float, lag: int, paused: bool, stall_after_s: float) -> bool:
    """Whether a consumer that read nothing for ``idle_s`` is stuck rather than idle or held back.

    >>> stalled(idle_s=20, lag=5, paused=False, stall_after_s=15)
    True
    >>> stalled(idle_s=20, lag=0, paused=False, stall_after_s=15)
    False
    >>> stalled(idle_s=20, lag=5, paused=True, stall_after_s=15)
    False
    """
    return not paused and lag > 0 and idle_s >= stall_after_s


class SenderLoop:
    """Lifecycle: :meth:`run` consumes until ``stop`` is set (or the token is rejected), then stops
    reading, drains the chat queues for up to ``drain_timeout_s``, commits what finished, and
    returns. It does not close the consumer or producer it was given."""

    def __init__(
        self,
        producer: AsyncProducer,
        delivery: ReplyDelivery,
        metrics: SenderMetrics,
        *,
        dead_letter_topic: str,
        options: LoopOptions,
    ) -> None:
        self._consumer: AsyncConsumer | None = None
        self._producer = producer
        self._delivery = delivery
        self._metrics = metrics
        self._dead_letter_topic = dead_letter_topic
        self._options = options
        self.offsets = PartitionOffsets()
        self.scheduler: ChatScheduler[Job] = ChatScheduler(
            self._handle, max_concurrency=options.max_concurrency
        )
        self.fatal: BaseException | None = None
        self.assigned: frozenset[tuple[str, int]] = frozenset()
        metrics.queue_depth.set_function(lambda: self.scheduler.depth)
        metrics.uncommitted.set_function(lambda: self.offsets.pending)
        metrics.assigned.set_function(lambda: len(self.assigned))

    def bind(self, consumer: AsyncConsumer) -> None:
        """Attach the consumer (built with :meth:`on_revoke` as its revocation callback)."""
        self._consumer = consumer

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """Consumer thread: remember the assignment (for metrics and tests); nothing else to do."""
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Consumer thread, inside consume(): commit what is finished, then let the partitions go."""
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}
        final = self.offsets.revoke(partitions, self._options.revoke_wait_s)
        if final and self._consumer is not None:
            try:
                self._consumer.commit_now(final)
            except Exception as exc:  # a failed final commit only means a replay
                log.warning("commit on revoke failed", error=str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        if self._consumer is None:
            raise RuntimeError("SenderLoop.bind(consumer) first")
        consumer = self._consumer
        await consumer.subscribe()
        committer = asyncio.create_task(self._commit_forever(), name="sender-commit")
        paused = False
        last_record = time.monotonic()
        next_check = last_record + self._options.lag_every_s
        try:
            while not stop.is_set() and self.fatal is None:
                pending = self.offsets.pending
                if not paused and pending >= self._options.max_pending:
                    paused = True
                    await consumer.set_paused(True)
                elif paused and pending <= self._options.max_pending // 2:
                    paused = False
                    await consumer.set_paused(False)
                records = await consumer.consume(500, 0.2)
                now = time.monotonic()
                if records:
                    last_record = now
                for record in records:
                    self._dispatch(record)
                if now >= next_check:
                    next_check = now + self._options.lag_every_s
                    if await self._watch(consumer, idle_s=now - last_record, paused=paused):
                        last_record = time.monotonic()
        finally:
            drained = await self.scheduler.drain(self._options.drain_timeout_s)
            if not drained:
                log.warning("shutdown with replies still in flight; they will be redelivered")
                await self.scheduler.cancel()
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            await self._commit()
        if self.fatal is not None:
            raise self.fatal

    async def _watch(self, consumer: AsyncConsumer, *, idle_s: float, paused: bool) -> bool:
        """Publish the consumer lag; replace a stuck consumer. True if it was replaced."""
        try:
            lag = sum((await consumer.lag()).values())
        except KafkaException as exc:
            log.warning("consumer lag unavailable", error=str(exc))
            return False
        self._metrics.lag.set(lag)
        if not stalled(idle_s=idle_s, lag=lag, paused=paused, stall_after_s=self._options.stall_after_s):
            return False
        log.warning("consumer stalled; reconnecting", idle_s=round(idle_s, 1), lag=lag)
        self._metrics.reconnects.inc()
        await consumer.reconnect()
        return True

    def _dispatch(self, record: Message) -> None:
        partition = self.offsets.start(record.topic() or "", record.partition() or 0, record.offset() or 0)
        raw, key = record.value(), record.key()
        reply: Reply | None = None
        error: str | None = None
        try:
            reply = decode(Reply, raw)
        except DecodeError as exc:
            error = f"undecodable: {exc.reason}"
        chat_id = reply.chat_id if reply is not None else _chat_from_key(key)
        self.scheduler.submit(Job(chat_id, record.offset() or 0, partition, raw, key, reply, error))

    async def _handle(self, job: Job) -> None:
        if not self.offsets.begin(job.partition):
            self._metrics.reply(job.reply.kind if job.reply else "reply", "skipped_revoked")
            return
        try:
            await self._handle_started(job)
        finally:
            self.offsets.end(job.partition)

    async def _handle_started(self, job: Job) -> None:
        if job.reply is None:
            await self._dead_letter(job, job.error or "undecodable")
            self.offsets.finish(job.partition, job.offset)
            return
        try:
            result = await self._delivery.deliver(job.reply, queued_behind=self.scheduler.queued_behind(job))
        except InvalidToken as exc:
            log.error("TELEGRAM_BOT_TOKEN was rejected; stopping the sender")
            self.fatal = exc
            return
        if result.outcome is Outcome.DEAD_LETTER:
            await self._dead_letter(job, result.reason or "failed")
        self._metrics.reply(job.reply.kind, result.outcome.value)
        self.offsets.finish(job.partition, job.offset)

    async def _dead_letter(self, job: Job, reason: str) -> None:
        """Write the original record to the dead-letter topic, retrying until Kafka acks it."""
        self._metrics.dead_letters.labels(reason.partition(":")[0]).inc()
        headers: list[tuple[str, str | bytes | None]] = [(ERROR_HEADER, reason), (ORIGIN_HEADER, "sender")]

        async def attempt() -> bool:
            try:
                await self._producer.produce(
                    self._dead_letter_topic, job.raw or b"", key=job.key, headers=headers
                )
            except Exception as exc:  # retried: the record must not be lost
                log.warning("dead-letter write failed", error=str(exc))
                return False
            return True

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10), retry=retry_if_result(lambda ok: not ok)
        )
        await retrying(attempt)

    async def _commit_forever(self) -> None:
        while True:
            await asyncio.sleep(self._options.commit_interval_s)
            await self._commit()

    async def _commit(self) -> None:
        if self._consumer is None:
            return
        points = self.offsets.commit_points()
        if not points:
            return
        try:
            await self._consumer.commit(points)
        except Exception as exc:  # retried on the next tick
            log.warning("offset commit failed", error=str(exc))
            return
        self.offsets.committed(points)


def _chat_from_key(key: bytes | None) -> int:
    try:
        return int(key or b"0")
    except ValueError:
        return 0
