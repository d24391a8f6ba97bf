"""`tgstream restore ARCHIVE`: verify everything first, then restore, then prove it with checks.

Nothing is touched until every file in the archive matched its manifest checksum. Then:
Postgres (the ``vector`` extension is created if missing, then pg_restore --clean replaces the
dumped schema's objects in a single transaction), Redis (each key replaced, TTLs kept),
recovery partitions (existing ones are moved aside, never deleted). Stop the dataflow before
restoring its recovery partitions: a running cluster would keep writing to the old ones.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tgstream.ops import integrity, pg_tools, recovery_files, redis_export
from tgstream.ops.archive import Manifest, extract_verified
from tgstream.ops.backup import PART_NAMES, Progress
from tgstream.state.migrate import MigrationError, applied_versions, load_migrations


class RestoreError(Exception):
    """The restore stopped; the message says which store and whether anything had changed yet."""


class RestoreDeclined(RestoreError):
    """The operator answered no; nothing was changed."""


@dataclass(frozen=True)
class RestoreTargets:
    database_url: str
    redis_url: str
    recovery_dir: Path
    pg_bin_dir: Path | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


@dataclass
class RestoreReport:
    manifest: Manifest
    checks: list[integrity.Check] = field(default_factory=list)
    set_aside: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def restore_archive(
    archive: Path,
    targets: RestoreTargets,
    *,
    confirm: Callable[[Manifest], bool] = lambda _m: True,
    progress: Progress = lambda _part, _msg: None,
) -> RestoreReport:
    if not set(targets.skip) <= set(PART_NAMES):
        raise RestoreError(f"unknown part(s) to skip; parts are {PART_NAMES}")
    with tempfile.TemporaryDirectory(prefix="tgstream-restore-") as scratch:
        work = Path(scratch)
        progress("verify", f"checking {archive.name}")
        manifest = extract_verified(archive, work)
        if not confirm(manifest):
            raise RestoreDeclined("restore declined; nothing was changed")
        report = RestoreReport(manifest)
        done: list[str] = []
        try:
            if manifest.postgres is not None and "postgres" not in targets.skip:
                _restore_postgres(work / manifest.postgres.dump_file, targets, progress)
                done.append("postgres")
                report.checks += integrity.check_postgres(targets.database_url, manifest.postgres)
                report.notes += _pending_migrations(targets.database_url)
            if manifest.redis is not None and "redis" not in targets.skip:
                client = redis_export.connect(targets.redis_url)
                try:
                    progress("redis", f"writing {manifest.redis.keys} keys")
                    restored = redis_export.import_keys(
                        client,
                        work / manifest.redis.export_file,
                        on_progress=lambda n: progress("redis", f"{n} keys written"),
                    )
                    done.append("redis")
                    report.checks += integrity.check_redis(client, manifest.redis, restored)
                finally:
                    client.close()
            if manifest.recovery is not None and "recovery" not in targets.skip:
                progress("recovery", f"installing {len(manifest.recovery.partitions)} partitions")
                report.set_aside = recovery_files.set_aside(targets.recovery_dir, datetime.now(UTC))
                files = [work / "recovery" / p.file for p in manifest.recovery.partitions]
                recovery_files.install_partitions(files, targets.recovery_dir)
                done.append("recovery")
                report.checks += integrity.check_recovery(targets.recovery_dir, manifest.recovery)
        except (
            pg_tools.PgToolError,
            psycopg.Error,
            redis_export.RedisExportError,
            recovery_files.RecoveryFilesError,
            OSError,
        ) as exc:
            finished = ", ".join(done) or "nothing"
            raise RestoreError(f"restore failed ({exc}); already restored: {finished}") from exc
    return report


def _restore_postgres(dump: Path, targets: RestoreTargets, progress: Progress) -> None:
    tool = pg_tools.find_pg_tool("pg_restore", targets.pg_bin_dir)
    progress("postgres", "ensuring the vector extension")
    with psycopg.connect(targets.database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    progress("postgres", "pg_restore --clean (one transaction)")
    pg_tools.pg_restore(tool, targets.database_url, dump)


def _pending_migrations(database_url: str) -> list[str]:
    """An older backup restores an older schema; say so instead of letting the dataflow trip on it."""
    try:
        restored = set(applied_versions(database_url))
    except MigrationError as exc:
        return [f"could not compare the restored schema with this code's migrations: {exc}"]
    pending = [m.label for m in load_migrations() if m.version not in restored]
    if not pending:
        return []
    return [f"the restored schema predates this code: run `tgstream db migrate` ({', '.join(pending)})"]
