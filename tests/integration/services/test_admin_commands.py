"""`tgstream kafka init` and `tgstream db migrate` can run any number of times."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from tgstream.config import Settings, load_settings
from tgstream.connectors.kafka_admin import TopicAction, TopicSpec, ensure_topics, topic_specs
from tgstream.state.migrate import load_migrations, migrate

pytestmark = pytest.mark.integration


def _tgstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tgstream", *args],
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def topic_names(settings: Settings, unique_name: Callable[[str], str]) -> Iterator[dict[str, str]]:
    names = {
        "TOPIC_MESSAGES": unique_name("init-msg"),
        "TOPIC_RESPONSES": unique_name("init-resp"),
        "TOPIC_EVENTS": unique_name("init-events"),
        "TOPIC_DEAD_LETTER": unique_name("init-dlq"),
        "TOPIC_CHAT_ACTIONS": unique_name("init-actions"),
    }
    yield names
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for future in admin.delete_topics(list(names.values()), operation_timeout=20).values():
        with contextlib.suppress(Exception):  # cleanup must not mask the test result
            future.result(timeout=30)


def test_kafka_init_twice_creates_then_reports_existing(
    settings: Settings, topic_names: dict[str, str]
) -> None:
    first = _tgstream("kafka", "init", env=topic_names)
    second = _tgstream("kafka", "init", env=topic_names)

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    for name in topic_names.values():
        assert f"{name}" in first.stdout
    assert first.stdout.count("created") == len(topic_names)
    assert second.stdout.count("exists") == len(topic_names)
    assert "created" not in second.stdout

    specs = {
        spec.name: spec
        for spec in topic_specs(load_settings(**{k.lower(): v for k, v in topic_names.items()}))
    }
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    metadata = admin.list_topics(timeout=10).topics
    for name, spec in specs.items():
        assert len(metadata[name].partitions) == spec.partitions


def test_a_topic_with_too_few_partitions_is_reported_and_only_grown_on_request(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory("short", partitions=2)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    spec = TopicSpec(name, 4)

    [reported] = ensure_topics(admin, [spec])
    assert reported.action is TopicAction.TOO_FEW_PARTITIONS
    assert reported.partitions == 2

    [grown] = ensure_topics(admin, [spec], grow=True)
    assert grown.action is TopicAction.GREW
    assert _partitions_eventually(admin, name, 4) == 4

    [smaller] = ensure_topics(admin, [TopicSpec(name, 1)])
    assert smaller.action is TopicAction.MORE_PARTITIONS


def test_db_migrate_twice_applies_nothing_the_second_time(settings: Settings) -> None:
    first = _tgstream("db", "migrate")
    second = _tgstream("db", "migrate")

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "applying" not in second.stdout
    with psycopg.connect(settings.database_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        default = conn.execute(
            "SELECT system_prompt, greeting FROM personalities WHERE name = 'default'"
        ).fetchone()
    assert versions == [m.version for m in load_migrations()]
    assert default is not None
    assert default[0]
    assert default[1]


def _partitions_eventually(admin: AdminClient, name: str, expected: int, timeout_s: float = 20) -> int:
    """Metadata reaches the client a moment after the controller commits a change."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = len(admin.list_topics(name, timeout=10).topics[name].partitions)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


@pytest.fixture
def scratch_database(settings: Settings) -> Iterator[str]:
    """A throwaway database, so concurrent migrations can be tested from an empty schema."""
    name = f"tgstream_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield settings.database_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_concurrent_migrations_apply_each_file_exactly_once(scratch_database: str) -> None:
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(migrate(scratch_database))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert sorted(len(r.applied) for r in reports) == [0, 0, len(load_migrations())]
    with psycopg.connect(scratch_database) as conn:
        count = conn.execute("SELECT count(*) FROM personalities").fetchone()
    assert count is not None
    assert count[0] == 3
