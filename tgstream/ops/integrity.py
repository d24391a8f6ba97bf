"""After a restore: does what landed match what the manifest says was backed up?

Each check compares a number the backup recorded with the same number read back from the
restored store, so a silent partial restore (a table left empty, keys not written, a partition
not copied) shows up as a failed line instead of as a bot that quietly forgot its users.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from tgstream.ops import recovery_files
from tgstream.ops.archive import PostgresSection, RecoverySection, RedisSection


@dataclass(frozen=True)
class Check:
    store: str
    name: str
    expected: str
    actual: str
    ok: bool


def _check(store: str, name: str, expected: object, actual: object) -> Check:
    return Check(store, name, str(expected), str(actual), expected == actual)


def check_postgres(database_url: str, section: PostgresSection) -> list[Check]:
    checks: list[Check] = []
    try:
        with psycopg.connect(database_url, connect_timeout=10) as conn:
            for table, expected in section.tables.items():
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                row = conn.execute(query).fetchone()
                checks.append(_check("postgres", f"rows in {table}", expected, row[0] if row else None))
            dims = [
                int(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT vector_dims(embedding) FROM memories "
                    "WHERE embedding IS NOT NULL ORDER BY 1"
                )
            ]
            checks.append(_check("postgres", "memory vector dimensions", section.vector_dims, dims))
            if not {"personalities", "user_personalities"} <= section.tables.keys():
                return checks
            orphans = conn.execute(
                "SELECT count(*) FROM user_personalities up "
                "LEFT JOIN personalities p ON p.id = up.personality_id WHERE p.id IS NULL"
            ).fetchone()
            checks.append(
                _check("postgres", "assignments without a persona", 0, orphans[0] if orphans else None)
            )
    except psycopg.Error as exc:
        checks.append(Check("postgres", "database readable", "yes", f"no: {exc}", False))
    return checks


def check_redis(client: redis.Redis, section: RedisSection, restored: list[bytes]) -> list[Check]:
    checks = [_check("redis", "keys written", section.keys, len(restored))]
    try:
        present = 0
        types: dict[str, int] = {}
        for start in range(0, len(restored), 500):
            batch = restored[start : start + 500]
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.type(key)
            for kind in pipe.execute():
                name = kind.decode() if isinstance(kind, bytes) else str(kind)
                if name != "none":
                    present += 1
                    types[name] = types.get(name, 0) + 1
        checks.append(_check("redis", "restored keys present", section.keys, present))
        checks.append(_check("redis", "keys by type", section.by_type, dict(sorted(types.items()))))
    except redis.RedisError as exc:
        checks.append(Check("redis", "redis readable", "yes", f"no: {exc}", False))
    return checks


def check_recovery(directory: Path, section: RecoverySection) -> list[Check]:
    checks: list[Check] = []
    for expected in section.partitions:
        path = directory / expected.file
        try:
            actual = recovery_files.describe_partition(path)
        except recovery_files.RecoveryFilesError as exc:
            checks.append(Check("recovery", expected.file, "readable partition", f"no: {exc}", False))
            continue
        checks.append(
            _check(
                "recovery",
                f"{expected.file} index/count/executions/snapshots",
                (expected.part_index, expected.part_count, expected.executions, expected.snapshots),
                (actual.part_index, actual.part_count, actual.executions, actual.snapshots),
            )
        )
    checks.append(_check("recovery", "partitions missing from this archive", [], section.missing_indices))
    return checks
