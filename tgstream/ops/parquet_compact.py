"""Rewrite analytics Parquet files without the rows of forgotten users (``tgstream parquet compact``).

Each affected file is rewritten next to itself under a ``.``-name (invisible to readers) and
``os.replace``d over the original, so a reader sees the old file or the new one, never half.
File names are kept: the sink finds its resume point by them. A file whose every row is
dropped is kept empty, for the same reason. Rows match by ``user_hash`` or by ``chat_hash``
(a private chat's id is its user's id, so its hash is the user's hash).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tgstream.ops.forget import read_tombstones


@dataclass
class CompactReport:
    files_scanned: int = 0
    files_rewritten: int = 0
    rows_removed: int = 0


def _rewrite(path: Path, table: pa.Table) -> None:
    temp = path.with_name(f".{path.name}.compact.tmp")
    pq.write_table(table, temp, compression="zstd")
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact(parquet_dir: Path, *, progress: Callable[[Path, int], None] | None = None) -> CompactReport:
    """Drop every tombstoned user's rows from every committed file under ``parquet_dir``."""
    report = CompactReport()
    hashes = read_tombstones(parquet_dir)
    if not hashes:
        return report
    wanted = pa.array(sorted(hashes), type=pa.string())
    for path in sorted(parquet_dir.glob("**/*.parquet")):
        if any(part.startswith((".", "_")) for part in path.relative_to(parquet_dir).parts):
            continue
        report.files_scanned += 1
        table = pq.read_table(path)
        names = set(table.column_names)
        if not {"user_hash", "chat_hash"} <= names:
            continue
        hit = pc.or_(
            pc.is_in(table["user_hash"], value_set=wanted), pc.is_in(table["chat_hash"], value_set=wanted)
        )
        removed = pc.sum(pc.cast(hit, pa.int64())).as_py() or 0
        if removed:
            _rewrite(path, table.filter(pc.invert(hit)))
            report.files_rewritten += 1
            report.rows_removed += removed
        if progress is not None:
            progress(path, removed)
    return report
