"""The gateway's Prometheus metrics, in a registry of its own (one per process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from tgstream.edges.inbound import Ingestor, Outcome
from tgstream.observability.process_metrics import register_process_metrics

REJECT_REASONS = ("unauthorized", "too_large", "not_json", "invalid_update", "unsupported_update")


class _IngestCounters(Collector):
    """Exposes the ingestor's own counts, so the ingestor needs no knowledge of Prometheus."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._ingestor.stats
        yield CounterMetricFamily(
            "tgstream_gateway_dedupe_unavailable",
            "Redis dedupe calls that failed, so the update went through unchecked (fail open)",
            value=stats.dedupe_unavailable,
        )
        yield CounterMetricFamily(
            "tgstream_gateway_producers_replaced",
            "Kafka producers replaced because every delivery failed while the cluster answered",
            value=self._ingestor.producers_replaced,
        )
        yield CounterMetricFamily(
            "tgstream_gateway_dead_letters",
            "Bodies written to the dead-letter topic",
            value=stats.dead_letters,
        )


class GatewayMetrics:
    """Counters resolved once to their label children, so a request costs a few increments."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        updates = Counter(
            "tgstream_gateway_updates", "Webhook updates by outcome", ["outcome"], registry=self.registry
        )
        self.outcomes = {outcome: updates.labels(outcome.value) for outcome in Outcome}
        rejected = Counter(
            "tgstream_gateway_rejected", "Requests refused, by reason", ["reason"], registry=self.registry
        )
        self.rejected = {reason: rejected.labels(reason) for reason in REJECT_REASONS}
        self.produce_latency = Histogram(
            "tgstream_gateway_produce_seconds",
            "Time from produce to broker ack, for accepted updates",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        in_flight = Gauge(
            "tgstream_gateway_in_flight", "Updates waiting for a broker ack", registry=self.registry
        )
        in_flight.set_function(lambda: ingestor.in_flight)
        self.registry.register(_IngestCounters(ingestor))
        register_process_metrics(self.registry)
