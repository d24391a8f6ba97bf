"""The sender's Prometheus metrics: sends by kind and result, 429s by scope, retries, dead letters,
queue depth and latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RESULTS = ("sent", "duplicate", "dropped", "dead_letter", "skipped_revoked")
KINDS = ("reply", "notice", "fallback", "command", "typing")


class SenderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        sends = Counter(
            "tgstream_sender_replies", "Replies handled, by kind and result", ["kind", "result"], registry=r
        )
        self.replies = {(k, res): sends.labels(k, res) for k in KINDS for res in RESULTS}
        self.messages = Counter(
            "tgstream_sender_messages",
            "Telegram messages sent (a reply may be split)",
            ["parse_mode"],
            registry=r,
        )
        self.floods = Counter(
            "tgstream_sender_429", "429 answers, by the scope they paused", ["scope"], registry=r
        )
        self.retries = Counter(
            "tgstream_sender_retries", "Retried Telegram calls, by reason", ["reason"], registry=r
        )
        self.dead_letters = Counter(
            "tgstream_sender_dead_letters", "Records sent to the dead-letter topic", ["reason"], registry=r
        )
        self.degraded = Counter(
            "tgstream_sender_degraded", "Calls that fell back because Redis failed", ["what"], registry=r
        )
        self.inactive = Counter(
            "tgstream_sender_chats_marked_inactive", "Chats that blocked the bot", registry=r
        )
        self.queue_depth = Gauge("tgstream_sender_queue_depth", "Replies queued or being sent", registry=r)
        self.assigned = Gauge(
            "tgstream_sender_assigned_partitions", "Partitions this replica owns", registry=r
        )
        self.lag = Gauge(
            "tgstream_sender_consumer_lag",
            "Records on the responses topic past this replica's position (sampled every few seconds)",
            registry=r,
        )
        self.reconnects = Counter(
            "tgstream_sender_consumer_reconnects",
            "Consumers replaced because they read nothing while records waited",
            registry=r,
        )
        self.uncommitted = Gauge(
            "tgstream_sender_uncommitted", "Records read but not yet committed", registry=r
        )
        self.send_seconds = Histogram(
            "tgstream_sender_send_seconds",
            "Duration of one successful Bot API call",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.reply_latency = Histogram(
            "tgstream_sender_reply_latency_seconds",
            "From the dataflow emitting a reply to its last part sent",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )

    def reply(self, kind: str, result: str) -> None:
        child = self.replies.get((kind, result))
        if child is not None:
            child.inc()
