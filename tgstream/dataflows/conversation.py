"""The conversation dataflow: Telegram messages in, companion replies and analytics events out.

Read top to bottom, this is the whole product::

    kafka_in -> decode -> key_on(chat) -> rate_spam_commands -> key_on(shard) -> llm_turns -> kafka_out
                  \\-> dead letters                \\-> notices, events     \\-> replies, events
                  \\-> jobs done (doorbell.py) ------------------------------^   events -> parquet

Each step's logic lives in its own module; this file only wires them. Run it with
``tgstream dataflow`` (recovery always on), or ``python -m bytewax.run
tgstream.dataflows.conversation:flow -r DIR -s 2`` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from tgstream.config import Settings, get_settings
from tgstream.dataflows import metrics
from tgstream.dataflows.chat_state import ChatGate, GatePolicy, GateSnapshot
from tgstream.dataflows.doorbell import JobsDone
from tgstream.dataflows.items import Admitted, DeadLetter
from tgstream.dataflows.kafka_io import (
    Announcements,
    InboundKafkaSource,
    OutboundTopics,
    Tick,
    decode_record,
    outbound_sink,
)
from tgstream.dataflows.operators import checked_map, select, select_value
from tgstream.dataflows.records import Records
from tgstream.dataflows.turn_shards import ShardSnapshot, ShardTurns, jobs_done, shard_key
from tgstream.dataflows.turns import ChatTurns, TurnsSnapshot
from tgstream.schemas.events import ConversationEvent, InboundMessage, Reply
from tgstream.sinks.kafka_checked import route_key
from tgstream.sinks.parquet_bytewax import ParquetSink, event_key
from tgstream.steps.rate_limit import RateLimiter, windows_from_limits
from tgstream.steps.spam import SpamConfig, SpamScorer

if TYPE_CHECKING:
    from tgstream.dataflows.runner import ProcessServices


def chat_key(message: InboundMessage) -> str:
    """Route by chat: Bytewax hashes this string with a stable hash, the same in every process."""
    return str(message.chat_id)


def count_dead_letter(letter: DeadLetter) -> DeadLetter:
    metrics.DEAD_LETTERS.inc()
    return letter


def count_drops(event: ConversationEvent) -> ConversationEvent:
    if event.event_type == "rate_limited":
        metrics.RATE_LIMITED.labels(event.rate_window or "unknown").inc()
    elif event.event_type == "spam_blocked":
        metrics.SPAM_BLOCKED.inc()
    return event


def build_flow(
    settings: Settings,
    *,
    source: Source[Any] | None = None,
    kafka_sink: Sink[Any] | None = None,
    parquet_sink: Sink[Any] | None = None,
    services: ProcessServices | None = None,
    clock: Callable[[], float] = time.time,
) -> Dataflow:
    """The flow for ``settings``; tests pass their own source, sinks, services or gate clock."""
    records = Records(settings.analytics_salt)
    gate_policy = GatePolicy(
        limiter=RateLimiter(
            windows_from_limits(settings.rate_per_minute, settings.rate_per_hour, settings.rate_per_day)
        ),
        scorer=SpamScorer(SpamConfig(threshold=settings.spam_threshold)),
        records=records,
        clock=clock,
    )

    def services_now() -> ProcessServices:
        if services is not None:
            return services
        from tgstream.dataflows.services import process_services  # opens connections: only when run

        return process_services(settings)

    def build_gate(resume: GateSnapshot | None) -> ChatGate:
        return ChatGate(gate_policy, resume)

    def build_chat(resume: TurnsSnapshot | None) -> ChatTurns:
        return ChatTurns(
            services_now().runner,
            resume=resume,
            idle_ttl_s=settings.conversation_ttl_s,
            drain_timeout_s=settings.llm_timeout_s * (settings.llm_max_retries + 1) + 10,
        )

    def build_shard(resume: ShardSnapshot | None) -> ShardTurns:
        return ShardTurns(build_chat, resume)

    def finished_jobs() -> Announcements:
        return Announcements(
            take=lambda: jobs_done(services_now().runner.doorbell.drain()),
            idle=lambda: services_now().runner.backlog() == 0,
        )

    flow = Dataflow("conversation")
    raw = op.input(
        "kafka_in",
        flow,
        source
        or InboundKafkaSource(
            settings,
            paused=lambda: services_now().runner.saturated(),
            tick_every_s=max(1.0, settings.parquet_roll_s / 2),
            announcements=finished_jobs(),
        ),
    )
    decoded = checked_map("decode", raw, decode_record, (InboundMessage, DeadLetter, Tick, JobsDone))
    dead_letters = op.map(
        "count_dead_letters", select("dead_letters", decoded, DeadLetter), count_dead_letter
    )
    messages = select("messages", decoded, InboundMessage)

    by_chat = op.key_on("key_on_chat", messages, chat_key)
    gated = op.stateful_batch("rate_spam_commands", by_chat, build_gate)
    admitted = select_value("admitted", gated, Admitted)
    by_shard = op.map("key_on_shard", admitted, lambda kv: (shard_key(kv[1].chat_id), kv[1]))
    done = op.map("key_jobs_done", select("jobs_done", decoded, JobsDone), lambda d: (d.shard, d))
    to_turns: op.KeyedStream[Admitted | JobsDone] = op.merge("admitted_and_done", by_shard, done)
    turns = op.stateful_batch("llm_turns", to_turns, build_shard)

    outputs = op.merge("outputs", op.key_rm("gate_out", gated), op.key_rm("turns_out", turns))
    replies = select("replies", outputs, Reply)
    events = op.map("count_drops", select("events", outputs, ConversationEvent), count_drops)

    to_kafka = op.merge("to_kafka", replies, events, dead_letters)
    serialized = op.map("serialize", to_kafka, OutboundTopics(settings))
    keyed_records = op.key_on("key_records", serialized, route_key)
    op.output("kafka_out", keyed_records, kafka_sink or outbound_sink(settings))
    keyed_events = op.map("key_events", events, lambda e: (event_key(e), e))
    # Idle Parquet partitions get no Bytewax calls; ticks let their age rule close files on time.
    parquet = parquet_sink or ParquetSink.from_settings(settings)
    tick_keys: list[str] = parquet.tick_keys() if isinstance(parquet, ParquetSink) else []
    ticks = op.flat_map(
        "tick_parquet", select("ticks", decoded, Tick), lambda _: [(key, None) for key in tick_keys]
    )
    op.output("parquet", op.merge("events_and_ticks", keyed_events, ticks), parquet)
    return flow


def flow() -> Dataflow:
    """Entry point for ``python -m bytewax.run tgstream.dataflows.conversation:flow``."""
    from tgstream.observability.logging import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return build_flow(settings)
