"""Bytewax recovery partitions on disk: consistent copies, a description, and per-pod initialisation.

A partition is a SQLite database in WAL mode (``part-N.sqlite3`` plus ``-wal``/``-shm`` while
open). Copying the files with ``cp`` while the dataflow runs can tear a page; SQLite's online
backup API copies a consistent state instead, and the copy has no WAL to carry along.

Each partition records its index and the total count (table ``parts``), and Bytewax refuses to
resume unless the cluster as a whole can see every index (MissingPartitionsError). Which process
holds which file does not matter, and a process may hold none. That is what
:func:`init_partition_share` relies on for a StatefulSet with one volume per pod.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from tgstream.ops.archive import RecoveryPartition

PART_FILE = re.compile(r"^part-(\d+)\.sqlite3$")
MARKER = ".tgstream-recovery.json"


class RecoveryFilesError(Exception):
    """A recovery partition is unreadable or the directory is in an unexpected state."""


def partition_files(directory: Path) -> list[Path]:
    """``part-N.sqlite3`` files in index order (WAL side files are not partitions)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if PART_FILE.match(p.name)]
    return sorted(found, key=lambda p: int(PART_FILE.match(p.name).group(1)))  # type: ignore[union-attr]


@contextlib.contextmanager
def _open(path: Path, *, timeout_s: float = 30.0) -> Iterator[sqlite3.Connection]:
    try:
        conn = sqlite3.connect(path, timeout=timeout_s)
    except sqlite3.Error as exc:
        raise RecoveryFilesError(f"cannot open recovery partition {path}: {exc}") from exc
    try:
        yield conn
    finally:
        conn.close()


def vacuum_partitions(directory: Path, *, timeout_s: float = 5.0) -> list[Path]:
    """Rewrite each partition so no deleted snapshot survives in free page space; returns them.

    SQLite leaves the bytes of deleted rows in freed space: after ``tgstream forget`` the live
    snapshots no longer hold the user, but the file may, until its pages are reused. Run this
    while the dataflow is stopped; a partition still in use raises instead of waiting.
    """
    done = []
    for path in partition_files(directory):
        with _open(path, timeout_s=timeout_s) as conn:
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("VACUUM")
            except sqlite3.Error as exc:
                raise RecoveryFilesError(f"cannot vacuum {path} (is the dataflow running?): {exc}") from exc
        done.append(path)
    return done


def copy_partitions(
    sources: list[Path], destination: Path, *, after_pin: Callable[[], None] = lambda: None
) -> list[Path]:
    """Consistent copies of (possibly live) partitions through SQLite's online backup API.

    A read transaction is opened on every partition first, back to back, and each copy is then
    taken inside its transaction: all copies show the partitions as they were at (nearly) one
    instant, however long the copying takes. Bytewax resumes only from an epoch that every
    partition still holds, so copies taken seconds apart could share none. The instant is not
    atomic across files: a commit can still land between two of the pins, microseconds apart.
    """
    connections: list[sqlite3.Connection] = []
    try:
        for source in sources:
            conn = sqlite3.connect(source, timeout=30.0, isolation_level=None)
            connections.append(conn)
        for conn in connections:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM parts").fetchone()
        after_pin()
        copies = []
        for source, conn in zip(sources, connections, strict=True):
            copy = destination / source.name
            with _open(copy) as dst:
                conn.backup(dst)
            copies.append(copy)
        return copies
    except sqlite3.Error as exc:
        raise RecoveryFilesError(f"cannot copy recovery partitions from {sources[0].parent}: {exc}") from exc
    finally:
        for conn in connections:
            conn.close()


def describe_partition(path: Path) -> RecoveryPartition:
    """What a partition says about itself; also proves it is a Bytewax partition, not any SQLite file."""
    try:
        with _open(path) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise RecoveryFilesError(f"{path.name} fails SQLite's integrity check: {check}")
            part = conn.execute("SELECT part_index, part_count FROM parts").fetchone()
            executions, worker_count = conn.execute(
                "SELECT count(*), (SELECT worker_count FROM exs ORDER BY ex_num DESC LIMIT 1) FROM exs"
            ).fetchone()
            snapshots = conn.execute("SELECT count(*) FROM snaps").fetchone()[0]
    except sqlite3.Error as exc:
        raise RecoveryFilesError(f"{path} is not a Bytewax recovery partition: {exc}") from exc
    if part is None:
        raise RecoveryFilesError(f"{path} has no partition header (table parts is empty)")
    return RecoveryPartition(
        file=path.name,
        part_index=int(part[0]),
        part_count=int(part[1]),
        executions=int(executions),
        last_worker_count=None if worker_count is None else int(worker_count),
        snapshots=int(snapshots),
    )


def set_aside(directory: Path, stamp: datetime) -> Path | None:
    """Move existing partitions (with WAL files) to a sibling directory; never deletes them."""
    existing = [p for p in directory.iterdir() if p.name.startswith("part-")] if directory.is_dir() else []
    if not existing:
        return None
    aside = directory.with_name(f"{directory.name}.pre-restore-{stamp.strftime('%Y%m%dT%H%M%SZ')}")
    aside.mkdir(parents=True, exist_ok=False)
    for path in existing:
        os.replace(path, aside / path.name)
    return aside


def install_partitions(files: list[Path], directory: Path) -> None:
    """Place restored partitions: each copied under a temp name, then renamed into place."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in files:
        temp = directory / f".{source.name}.restoring"
        shutil.copyfile(source, temp)
        os.replace(temp, directory / source.name)


def owned_partitions(partitions: int, initial_processes: int, process_id: int) -> list[int]:
    """Round-robin share of the partition set for one process of the initial cluster.

    Processes added later (``process_id >= initial_processes``) own none of the fresh set; they get
    partitions moved to them by the operator when the cluster is rescaled.

    >>> owned_partitions(6, 2, 0), owned_partitions(6, 2, 1), owned_partitions(6, 2, 2)
    ([0, 2, 4], [1, 3, 5], [])
    """
    if partitions < 1 or initial_processes < 1 or process_id < 0:
        raise ValueError("partitions and initial_processes must be >= 1 and process_id >= 0")
    if initial_processes > partitions:
        raise ValueError(
            f"{initial_processes} initial processes but only {partitions} recovery partitions: "
            "some processes would hold none from the start; create at least one per process"
        )
    return [k for k in range(partitions) if k % initial_processes == process_id]


@dataclass(frozen=True)
class InitOutcome:
    created: list[int]
    already_present: list[int]


def init_partition_share(
    directory: Path, *, partitions: int, initial_processes: int = 1, process_id: int = 0
) -> InitOutcome:
    """Create this process's share of a fresh partition set; a no-op where partitions already are.

    With the defaults (one process) this is ``python -m bytewax.recovery DIR N``, made idempotent.
    An empty directory that is not a first start (a pod added later, or one whose partitions were
    moved away) is an error, not a reason to create partitions: the set already exists on other
    volumes, and a second copy of a partition would fork its history. (``tgstream dataflow``
    creates a full set in any empty directory, which is right on one machine and wrong here.)
    """
    from bytewax.recovery import init_db_dir as untyped_init

    init_db_dir = cast(Callable[[Path, int], None], untyped_init)
    directory.mkdir(parents=True, exist_ok=True)
    present = partition_files(directory)
    if present:
        return InitOutcome(created=[], already_present=[describe_partition(p).part_index for p in present])
    if (directory / MARKER).exists() or process_id >= initial_processes:
        raise RecoveryFilesError(
            f"{directory} holds no recovery partitions, and process {process_id} is not starting a new "
            f"cluster (initial processes: {initial_processes}): the partitions live on other volumes. "
            "Stop the dataflow and move at least one part-N.sqlite3 (with its -wal/-shm files) here, "
            "as docs/operations.md describes; starting empty would create a conflicting second set"
        )
    owned = owned_partitions(partitions, initial_processes, process_id)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".init-") as scratch:
        init_db_dir(Path(scratch), partitions)
        for index in owned:
            os.replace(Path(scratch) / f"part-{index}.sqlite3", directory / f"part-{index}.sqlite3")
    marker = {
        "partitions": partitions,
        "initial_processes": initial_processes,
        "process_id": process_id,
        "owned": owned,
        "created_at": datetime.now(UTC).isoformat(),
    }
    (directory / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return InitOutcome(created=owned, already_present=[])
