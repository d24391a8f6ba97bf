"""`tgstream backup`: personas and memories, conversation state, and Bytewax recovery in one archive.

Order of work:

1. Postgres. A REPEATABLE READ transaction exports its snapshot; the row counts and vector
   dimensions are read in it, and pg_dump dumps in the same snapshot, so the manifest's
   counts describe exactly the dump (the restore's integrity check relies on that).
2. Redis: ``conversation:*`` and ``active_conversations`` as JSON lines with TTLs.
3. Recovery partitions, copied through SQLite's backup API.
4. ``manifest.json`` with sha256 and size of every file, then the tar.gz, written under a temp
   name and renamed, so a crash never leaves a plausible-looking half archive.

The three stores are not captured at one instant. Postgres and Redis are derived state the
dataflow rewrites on the next turn of each chat; the recovery partitions carry the Kafka offsets,
so after a restore the dataflow replays from its snapshot (at least once, deduplicated downstream).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from tgstream.ops import pg_tools, recovery_files, redis_export
from tgstream.ops.archive import (
    FileEntry,
    Manifest,
    PostgresSection,
    RecoverySection,
    RedisSection,
    archive_name,
    file_entry,
    write_archive,
)

SCHEMA = "public"
PART_NAMES = ("postgres", "redis", "recovery")

Progress = Callable[[str, str], None]
"""``progress(part, message)``: what the backup is doing now, for a CLI spinner or a log line."""


class BackupError(Exception):
    """The backup could not be completed; no archive was written."""


@dataclass(frozen=True)
class BackupSources:
    """Where to read from; the CLI fills it from Settings, tests point it at their own stores."""

    database_url: str
    redis_url: str
    recovery_dir: Path
    pg_bin_dir: Path | None = None
    redis_patterns: Sequence[str] = redis_export.DEFAULT_PATTERNS
    skip: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    manifest: Manifest


def create_backup(
    sources: BackupSources,
    out_dir: Path,
    *,
    progress: Progress = lambda _part, _msg: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackupResult:
    unknown = sources.skip - set(PART_NAMES)
    if unknown:
        raise BackupError(f"unknown part(s) to skip: {', '.join(sorted(unknown))}; parts are {PART_NAMES}")
    created_at = now().astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    destination = out_dir / archive_name(created_at)
    if destination.exists():
        raise BackupError(f"{destination} already exists; not overwriting a backup")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".backup-") as scratch:
        staging = Path(scratch)
        files: list[FileEntry] = []
        postgres = None if "postgres" in sources.skip else _backup_postgres(sources, staging, progress)
        redis_part = None if "redis" in sources.skip else _backup_redis(sources, staging, progress)
        recovery = None if "recovery" in sources.skip else _backup_recovery(sources, staging, progress)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            files.append(file_entry(staging, path))
        manifest = Manifest(
            created_at=created_at,
            tgstream_version=_version("tgstream"),
            files=files,
            postgres=postgres,
            redis=redis_part,
            recovery=recovery,
        )
        progress("archive", f"writing {destination.name}")
        write_archive(staging, manifest, destination)
    return BackupResult(destination, manifest)


def _backup_postgres(sources: BackupSources, staging: Path, progress: Progress) -> PostgresSection:
    try:
        tool = pg_tools.find_pg_tool("pg_dump", sources.pg_bin_dir)
        dump = staging / "postgres.dump"
        progress("postgres", "opening a snapshot")
        with psycopg.connect(sources.database_url, connect_timeout=10) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                snapshot = _scalar(conn, sql.SQL("SELECT pg_export_snapshot()"))
                tables = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (SCHEMA,)
                    )
                ]
                if "memories" not in tables:
                    raise BackupError("no tgstream tables in DATABASE_URL; run `tgstream db migrate` first")
                counts = {
                    table: int(
                        _scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                    )
                    for table in tables
                }
                dims = [
                    int(row[0])
                    for row in conn.execute(
                        "SELECT DISTINCT vector_dims(embedding) FROM memories "
                        "WHERE embedding IS NOT NULL ORDER BY 1"
                    )
                ]
                server_version = str(_scalar(conn, sql.SQL("SHOW server_version")))
                progress("postgres", f"pg_dump {sum(counts.values())} rows in {len(tables)} tables")
                pg_tools.pg_dump(tool, sources.database_url, SCHEMA, dump, snapshot=str(snapshot))
    except psycopg.Error as exc:
        raise BackupError(f"cannot read Postgres at DATABASE_URL: {exc}") from exc
    except pg_tools.PgToolError as exc:
        raise BackupError(str(exc)) from exc
    return PostgresSection(
        database=pg_tools.database_name(sources.database_url),
        server_version=server_version,
        pg_dump_version=pg_tools.tool_version(tool),
        dump_file=dump.name,
        tables=counts,
        vector_dims=dims,
    )


def _scalar(conn: psycopg.Connection[tuple[object, ...]], query: sql.SQL | sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    if row is None:
        raise BackupError(f"query returned no row: {query.as_string(conn)}")
    return row[0]


def _backup_redis(sources: BackupSources, staging: Path, progress: Progress) -> RedisSection:
    out = staging / "redis.jsonl"
    client = redis_export.connect(sources.redis_url)
    try:
        info = client.info("server")
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        progress("redis", "scanning " + ", ".join(sources.redis_patterns))
        stats = redis_export.export_keys(
            client,
            sources.redis_patterns,
            out,
            on_progress=lambda n: progress("redis", f"{n} keys exported"),
        )
    except redis_export.RedisExportError as exc:
        raise BackupError(str(exc)) from exc
    except redis.RedisError as exc:
        raise BackupError(f"cannot reach Redis at REDIS_URL: {exc}") from exc
    finally:
        client.close()
    return RedisSection(
        db=db,
        server_version=str(info.get("redis_version", "unknown")),
        export_file=out.name,
        patterns=list(sources.redis_patterns),
        keys=stats.keys,
        by_type=dict(sorted(stats.by_type.items())),
    )


def _backup_recovery(sources: BackupSources, staging: Path, progress: Progress) -> RecoverySection:
    target = staging / "recovery"
    target.mkdir()
    parts = recovery_files.partition_files(sources.recovery_dir)
    try:
        progress("recovery", f"copying {len(parts)} partition(s) from one pinned instant")
        described = [
            recovery_files.describe_partition(copy) for copy in recovery_files.copy_partitions(parts, target)
        ]
    except recovery_files.RecoveryFilesError as exc:
        raise BackupError(str(exc)) from exc
    return RecoverySection(
        source_dir=str(sources.recovery_dir),
        bytewax_version=_version("bytewax"),
        partitions=described,
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
