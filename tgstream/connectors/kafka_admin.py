"""Create tgstream's Kafka topics idempotently, and say plainly when an existing one differs.

Partition counts come from Settings. An existing topic is never shrunk (Kafka cannot) and never
silently grown: adding partitions re-maps keys to partitions, which breaks per-chat ordering for
messages already in flight, so growing is an explicit ``grow=True`` decision by an operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported without __all__
    AdminClient,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from tgstream.config import Settings

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


class KafkaAdminError(Exception):
    """A topic operation failed; the message names the topic."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class TopicAction(StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    GREW = "grew"
    TOO_FEW_PARTITIONS = "has fewer partitions than configured"
    MORE_PARTITIONS = "has more partitions than configured (left as is)"


@dataclass(frozen=True)
class TopicResult:
    spec: TopicSpec
    action: TopicAction
    partitions: int
    config_drift: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Setting -> (wanted, actual) for topic configs that differ; reported, never changed."""

    @property
    def ok(self) -> bool:
        return self.action is not TopicAction.TOO_FEW_PARTITIONS


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics tgstream needs; inbound keeps a week for replays, outbound a day."""
    return [
        TopicSpec(settings.topic_messages, settings.messages_partitions, {"retention.ms": str(7 * DAY_MS)}),
        TopicSpec(settings.topic_responses, settings.responses_partitions, {"retention.ms": str(DAY_MS)}),
        TopicSpec(settings.topic_events, settings.events_partitions, {"cleanup.policy": "compact"}),
        TopicSpec(
            settings.topic_dead_letter, settings.dead_letter_partitions, {"retention.ms": str(14 * DAY_MS)}
        ),
        TopicSpec(
            settings.topic_chat_actions, settings.chat_actions_partitions, {"retention.ms": str(HOUR_MS)}
        ),
    ]


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers, "log_level": 4})


def ensure_topics(
    admin: AdminClient, specs: Sequence[TopicSpec], *, grow: bool = False, timeout_s: float = 30.0
) -> list[TopicResult]:
    """Create missing topics and report on existing ones; with ``grow``, add missing partitions."""
    try:
        existing = {
            name: len(meta.partitions) for name, meta in admin.list_topics(timeout=timeout_s).topics.items()
        }
    except KafkaException as exc:
        raise KafkaAdminError(f"cannot list topics (is Kafka up at KAFKA_BOOTSTRAP_SERVERS?): {exc}") from exc
    created = _create(admin, [spec for spec in specs if spec.name not in existing], timeout_s)
    for spec in specs:
        if spec.name not in existing and spec.name not in created:
            existing[spec.name] = _partition_count(admin, spec.name, timeout_s)
    results = []
    for spec in specs:
        if spec.name in created:
            results.append(TopicResult(spec, TopicAction.CREATED, spec.partitions))
            continue
        actual = existing[spec.name]
        drift = _config_drift(admin, spec, timeout_s)
        if actual < spec.partitions and grow:
            _grow(admin, spec, timeout_s)
            results.append(TopicResult(spec, TopicAction.GREW, spec.partitions, drift))
        elif actual < spec.partitions:
            results.append(TopicResult(spec, TopicAction.TOO_FEW_PARTITIONS, actual, drift))
        elif actual > spec.partitions:
            results.append(TopicResult(spec, TopicAction.MORE_PARTITIONS, actual, drift))
        else:
            results.append(TopicResult(spec, TopicAction.EXISTS, actual, drift))
    return results


def _create(admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float) -> set[str]:
    """Create topics; one another process created meanwhile counts as existing, not as an error."""
    if not specs:
        return set()
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config) for s in specs
    ]
    created = set()
    for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.add(name)
        except KafkaException as exc:
            if (
                exc.args
                and isinstance(exc.args[0], KafkaError)
                and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
            ):
                continue
            raise KafkaAdminError(f"cannot create topic {name}: {exc}") from exc
    return created


def _partition_count(admin: AdminClient, name: str, timeout_s: float) -> int:
    """Ask again for one topic: cluster metadata can lag behind a topic created a moment ago."""
    try:
        topic = admin.list_topics(name, timeout=timeout_s).topics[name]
    except (KafkaException, KeyError) as exc:
        raise KafkaAdminError(f"topic {name} exists but its metadata cannot be read: {exc}") from exc
    return len(topic.partitions)


def _grow(admin: AdminClient, spec: TopicSpec, timeout_s: float) -> None:
    futures = admin.create_partitions(
        [NewPartitions(spec.name, spec.partitions)], operation_timeout=timeout_s
    )
    for future in futures.values():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise KafkaAdminError(f"cannot grow {spec.name} to {spec.partitions} partitions: {exc}") from exc


def _config_drift(admin: AdminClient, spec: TopicSpec, timeout_s: float) -> dict[str, tuple[str, str | None]]:
    if not spec.config:
        return {}
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    try:
        entries = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaAdminError(f"cannot read the config of {spec.name}: {exc}") from exc
    drift: dict[str, tuple[str, str | None]] = {}
    for key, wanted in spec.config.items():
        entry = entries.get(key)
        actual = entry.value if entry is not None else None
        if actual != wanted:
            drift[key] = (wanted, actual)
    return drift
