"""After a crash, do not answer again what was already answered: read back our own recent replies.

Bytewax resumes from the last snapshot and replays the input after it. Jobs that finished
after that snapshot would run again, and not necessarily with the same grouping: which
messages form a burst depends on timing (what arrived while the previous turn was running).
A replay could then answer "hi" alone where the first run answered "hi / how are you" together,
and the user would get two answers under two idempotency keys that the sender cannot dedupe.

So at start-up each process reads the tail of the responses topic (the last ``window_s``
seconds, which covers the snapshot interval plus the longest job) into an index
``update_id -> reply``. When a chat is about to start a job whose first message is in the
index, it takes exactly that reply's messages as the job and does not call the model: it
re-emits the same reply (same key, dropped by the sender) and moves on with the same context.
Replays thereby cost no LLM calls and produce no differently-keyed duplicates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tgstream.config import Settings
from tgstream.schemas.events import Reply

log = structlog.get_logger(__name__)

ANSWER_KINDS = frozenset({"reply", "fallback", "command"})


@dataclass(frozen=True, slots=True)
class AnsweredIndex:
    """Replies already on the responses topic, by each update_id they answered."""

    by_update: dict[int, Reply]

    def get(self, update_id: int) -> Reply | None:
        return self.by_update.get(update_id)

    def __len__(self) -> int:
        return len(self.by_update)


EMPTY_INDEX = AnsweredIndex({})


def load_answered(settings: Settings, *, window_s: float = 300.0, timeout_s: float = 30.0) -> AnsweredIndex:
    """Read the responses topic from ``now - window_s`` to its current end; Kafka errors raise."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "tgstream-replay-guard",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    started = time.monotonic()
    try:
        topic = settings.topic_responses
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        since_ms = int((time.time() - window_s) * 1000)
        wanted = [TopicPartition(topic, p, since_ms) for p in metadata.partitions]
        starts = consumer.offsets_for_times(wanted, timeout=timeout_s)
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=timeout_s)[1] for p in wanted}
        assigned = [tp for tp in starts if tp.offset >= 0 and tp.offset < ends[tp.partition]]
        index: dict[int, Reply] = {}
        remaining = {tp.partition for tp in assigned}
        consumer.assign(assigned)
        while remaining and time.monotonic() - started < timeout_s:
            for message in consumer.consume(1000, 0.5):
                partition, offset = message.partition() or 0, message.offset() or 0
                if message.error() is not None:
                    remaining.discard(partition)
                    continue
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                try:
                    reply = Reply.model_validate(orjson.loads(message.value() or b"{}"))
                except (orjson.JSONDecodeError, ValueError):
                    continue  # not ours to judge; the sender dead-letters it
                if reply.kind in ANSWER_KINDS:
                    for update_id in reply.update_ids:
                        index[update_id] = reply
    finally:
        consumer.close()
    log.info("replay_guard.loaded", replies=len(index), seconds=round(time.monotonic() - started, 2))
    return AnsweredIndex(index)
