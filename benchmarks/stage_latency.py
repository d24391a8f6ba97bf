"""Where a message's end-to-end time goes, stage by stage, at a given rate.

Runs a stack (stub LLM) at ``--rate`` for ``--seconds``, keeps its topics, and joins, per user
message (by update id):

* the driver's POST time and the fake Telegram server's receive time of the reply;
* the ConversationEvent (``conversation_events``): gateway ``received_at``, gate
  ``processed_at``, ``llm_started_at``, ``llm_finished_at``, ``emitted_at``;
* the Reply record on ``telegram_responses``: its Kafka timestamp (the producer's create time).

and prints the median and p99 of each stage:

    post → gateway      HTTP and parsing, until the gateway stamps received_at
    gateway → gate      Kafka produce + ack, dataflow poll, rate/spam/command gate
    gate → llm start    the turn step picking the message up
    llm call            the openai client round trip to the stub (its fixed latency included)
    llm end → emitted   the turn step noticing the finished call (its poll interval)
    emitted → produced  the dataflow's Kafka sink
    produced → telegram sender: consume, rate limits, python-telegram-bot, Bot API call

Timestamps are wall-clock (time.time) from processes on one machine, so they share a clock.

    .venv/bin/python benchmarks/stage_latency.py --rate 50 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from tgstream.loadtest.driver import Driver, DriverConfig
from tgstream.loadtest.scenario import run_ids
from tgstream.loadtest.schedule import Phase
from tgstream.loadtest.stack import Stack, StackOptions
from tgstream.loadtest.stats import summarize

STAGES = (
    ("post → gateway", "posted", "received_at"),
    ("gateway → gate", "received_at", "processed_at"),
    ("gate → llm start", "processed_at", "llm_started_at"),
    ("llm call", "llm_started_at", "llm_finished_at"),
    ("llm end → emitted", "llm_finished_at", "emitted_at"),
    ("emitted → produced", "emitted_at", "produced"),
    ("produced → telegram", "produced", "telegram"),
    ("end to end", "posted", "telegram"),
)


def read_topic(bootstrap: str, topic: str) -> list[tuple[float, dict[str, Any]]]:
    """Every record of ``topic`` (Kafka timestamp in seconds, decoded JSON value), read to the end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"stage-{time.time_ns()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        records = []
        deadline = time.monotonic() + 60
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            value, offset, partition = (
                (msg.value(), msg.offset(), msg.partition()) if msg else (None, None, None)
            )
            if msg is None or msg.error() or value is None or offset is None or partition is None:
                continue
            records.append((msg.timestamp()[1] / 1000, orjson.loads(value)))
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        return records
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stub-latency-ms", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=Path(".dev/benchmarks") / f"stages-{int(time.time())}")
    args = parser.parse_args()
    console = Console(width=160)
    options = StackOptions(run_id=f"stages-{int(time.time())}", stub_latency_ms=args.stub_latency_ms)
    with Stack(options) as stack:
        config = DriverConfig(
            webhook_url=stack.webhook_url,
            secret=stack.settings.webhook_secret.get_secret_value(),
            telegram_url=stack.telegram_url,
            phases=(Phase("warm", args.rate, 5.0), Phase("measure", args.rate, args.seconds)),
            max_users=int(args.rate * 40),
            keep_answers=True,
        )
        driver = Driver(config, ids=run_ids(time.time(), random.Random()))
        asyncio.run(driver.run())
        settings = stack.settings
        events = read_topic(settings.kafka_bootstrap_servers, settings.topic_events)
        replies = read_topic(settings.kafka_bootstrap_servers, settings.topic_responses)
    by_update: dict[int, dict[str, float]] = {}
    for pending, answered_at in driver.answers:
        if pending.phase == 1 and not pending.is_command:
            by_update[pending.update_id] = {
                "posted": driver.t0_wall + pending.sent_at,
                "telegram": driver.t0_wall + answered_at,
            }
    for _, event in events:
        if event.get("event_type") != "reply_out":
            continue
        for update_id in event.get("update_ids", ()):
            row = by_update.get(update_id)
            if row is not None:
                for key in ("received_at", "processed_at", "llm_started_at", "llm_finished_at", "emitted_at"):
                    if event.get(key) is not None:
                        row[key] = float(event[key])
    for produced, reply in replies:
        if reply.get("kind") != "reply":
            continue
        for update_id in reply.get("update_ids", ()):
            if update_id in by_update:
                by_update[update_id]["produced"] = produced
    table = Table(
        title=f"Stage latency of LLM turns at {args.rate:g} msg/s (stub {args.stub_latency_ms:g} ms)"
    )
    for column in ("stage", "messages", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    result = {}
    for name, start, end in STAGES:
        samples = [row[end] - row[start] for row in by_update.values() if start in row and end in row]
        summary = summarize(samples)
        if summary is None:
            table.add_row(name, "0", "-", "-", "-")
            continue
        ordered = sorted(samples)
        p90 = ordered[max(0, int(0.9 * len(ordered)) - 1)]
        result[name] = {**summary.as_ms(), "p90": p90 * 1000}
        table.add_row(
            name,
            str(summary.count),
            f"{summary.p50 * 1000:.1f}",
            f"{p90 * 1000:.1f}",
            f"{summary.p99 * 1000:.1f}",
        )
    commands = [
        answered_at - pending.sent_at
        for pending, answered_at in driver.answers
        if pending.phase == 1 and pending.is_command
    ]
    turns = [row["telegram"] - row["posted"] for row in by_update.values()]
    stub_s = args.stub_latency_ms / 1000
    extra = {
        "added (end to end − stub)": [lat - stub_s for lat in turns],
        "command (/start) end to end": commands,
    }
    for name, samples in extra.items():
        summary = summarize(samples)
        if summary is not None:
            result[name] = summary.as_ms()
            table.add_row(
                name, str(summary.count), f"{summary.p50 * 1000:.1f}", "-", f"{summary.p99 * 1000:.1f}"
            )
    console.print(table)
    for name in extra:
        if name in result:
            console.print(f"{name}: p95 {result[name]['p95']:.1f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stages.json").write_bytes(
        orjson.dumps({"rate": args.rate, "stages": result}, option=orjson.OPT_INDENT_2)
    )


if __name__ == "__main__":
    main()
