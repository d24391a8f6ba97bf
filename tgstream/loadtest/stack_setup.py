"""What a stack run needs before its processes start, and what it leaves behind: topics and schema.

Thin wrappers over `connectors.kafka_admin` and `state.migrate` that turn their errors into a
:class:`~tgstream.loadtest.stack.StackError`-compatible message naming the service.
"""

from __future__ import annotations

from collections.abc import Sequence

from tgstream.config import Settings


class StackSetupError(RuntimeError):
    """Kafka or Postgres refused the run's set-up; the message says which and why."""


def create_topics(settings: Settings) -> None:
    from tgstream.connectors.kafka_admin import KafkaAdminError, admin_client, ensure_topics, topic_specs

    try:
        results = ensure_topics(admin_client(settings), topic_specs(settings))
    except KafkaAdminError as exc:
        raise StackSetupError(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    short = [r.spec.name for r in results if not r.ok]
    if short:
        raise StackSetupError(f"topics with too few partitions: {', '.join(short)}")


def delete_topics(settings: Settings, names: Sequence[str], timeout_s: float = 20.0) -> list[str]:
    """Delete the run's topics; returns those that could not be deleted (cleanup never raises)."""
    from confluent_kafka import KafkaException

    from tgstream.connectors.kafka_admin import admin_client

    failed = []
    # The client must outlive the futures: a client garbage-collected right after the call
    # destroys its handle and fails every future with _DESTROY, so nothing was deleted and
    # each load test left its five topics on the broker.
    admin = admin_client(settings)
    futures = admin.delete_topics(list(names), operation_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except (KafkaException, TimeoutError):
            failed.append(name)
    return failed


def migrate_schema(settings: Settings) -> None:
    from tgstream.state.migrate import MigrationError, migrate

    try:
        migrate(settings.database_url)
    except MigrationError as exc:
        raise StackSetupError(f"Postgres at {settings.database_url}: {exc}") from exc
