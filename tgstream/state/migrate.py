"""Apply the versioned SQL migrations in ``tgstream/state/migrations`` (``NNN_name.sql``).

Each file runs in its own transaction together with its row in ``schema_migrations``, so a
migration is either fully applied and recorded or not at all. A session-level advisory lock
serialises concurrent runs (several replicas starting at once). An applied file whose text has
changed since is refused: edit history by adding a migration, never by rewriting one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources

import psycopg

LOCK_KEY = 0x7467_7374_726D_0001
"""pg_advisory_lock key for migrations ("tgstrm" + 1), shared by every tgstream process."""

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """A migration could not be loaded or applied; nothing of that migration was committed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


@dataclass
class MigrationReport:
    applied: list[Migration] = field(default_factory=list)
    already_applied: list[Migration] = field(default_factory=list)


def load_migrations() -> list[Migration]:
    """The packaged migrations in version order; a malformed name or a duplicate version is an error."""
    found: dict[int, Migration] = {}
    for entry in resources.files("tgstream.state.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations share version {version:03d}: {found[version].label}, {entry.name}"
            )
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def migrate(
    database_url: str,
    *,
    migrations: Sequence[Migration] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> MigrationReport:
    """Apply every migration not yet recorded in ``schema_migrations``; safe to run any number of times."""
    pending = list(migrations) if migrations is not None else load_migrations()
    report = MigrationReport()
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                _ensure_table(conn)
                recorded = _recorded(conn)
                for migration in pending:
                    if migration.version in recorded:
                        _check_unchanged(migration, recorded[migration.version])
                        report.already_applied.append(migration)
                        continue
                    if on_apply is not None:
                        on_apply(migration)
                    _apply(conn, migration)
                    report.applied.append(migration)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    except psycopg.OperationalError as exc:
        raise MigrationError(f"cannot reach Postgres at DATABASE_URL: {exc}") from exc
    return report


def applied_versions(database_url: str) -> dict[int, tuple[str, str]]:
    """What ``schema_migrations`` records: version -> (name, applied_at as text)."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            _ensure_table(conn)
            rows = conn.execute("SELECT version, name, applied_at::text FROM schema_migrations").fetchall()
    except psycopg.Error as exc:
        raise MigrationError(f"cannot read schema_migrations: {exc}") from exc
    return {int(version): (str(name), str(applied_at)) for version, name, applied_at in rows}


def _ensure_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INT PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )


def _recorded(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, tuple[str, str]]:
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(str(version)): (str(name), str(checksum)) for version, name, checksum in rows}


def _check_unchanged(migration: Migration, recorded: tuple[str, str]) -> None:
    name, checksum = recorded
    if checksum != migration.checksum:
        raise MigrationError(
            f"migration {migration.label} changed after it was applied (as {name}); "
            "add a new migration instead of editing an applied one"
        )


def _apply(conn: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"migration {migration.label} failed and was rolled back: {exc}") from exc
