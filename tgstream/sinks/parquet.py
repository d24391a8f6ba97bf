"""Parquet files of ConversationEvents: hour-partitioned, atomically committed, replay-safe.

Layout: ``<root>/date=YYYY-MM-DD/hour=HH/part-<partition>-<first_seq>.parquet``, by each event's
``received_at`` in UTC. ``received_at`` is stamped once, by the gateway, so a replayed event
lands in the same directory as the first time; ``processed_at``/``emitted_at`` would not.

A :class:`ParquetEventWriter` owns one sink partition. Rows get a per-partition sequence
number; a *roll* writes the buffered rows, one file per hour they touch, each named after the
roll's first sequence number. Files are written under a dot-prefixed temp name in the target
directory, fsynced, ``os.replace``d, and the directory fsynced, so a reader (pyarrow.dataset
and ``read_parquet('**/*.parquet')`` both skip ``.``-names and ``.tmp`` suffixes) sees a whole
file or nothing.

What "flush is the commit point" means under Bytewax. Bytewax commits an epoch by storing
every partition's :meth:`~ParquetEventWriter.snapshot`; after a crash it rebuilds the
partition from the last committed snapshot and replays the input of the later epochs. Rows
are only safe once they are either in a committed file or in a committed snapshot, so:

1. ``snapshot()`` first rolls if the buffer is old enough (the epoch boundary is the natural
   commit point for the age rule), then returns ``next_seq``, the buffer's first sequence
   number and the not-yet-rolled rows (zstd Arrow IPC, encoded once per epoch; the buffer
   is bounded by ``roll_bytes``/``roll_s``, which bounds the snapshot too).
2. A roll between two snapshots writes a file that no snapshot has committed yet.
3. Resuming from a snapshot deletes this partition's files numbered at or after that
   snapshot's buffer start (they were written after the commit), restores the buffer, and
   lets the replay append to it. The next roll rewrites the same file names, so a replay
   never leaves a duplicate.

Attention: readers may briefly see a file from step 2 that step 3 later replaces or deletes.
A partition that receives nothing gets no Bytewax calls at all, not even ``snapshot``; send it
a tick (``None``, see :mod:`tgstream.sinks.parquet_bytewax`) so its age rule can fire.
Starting without a snapshot never deletes anything: numbering continues after the highest
existing file, so an earlier run's files are never overwritten.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prometheus_client import Counter

from tgstream.schemas.arrow import CONVERSATION_EVENTS, events_to_table
from tgstream.schemas.events import ConversationEvent

PARTITION_COLUMN = "received_at"
COLUMNARISE_EVERY = 2000
"""Buffered events are turned into an Arrow chunk at the latest every this many (and per epoch)."""
EVENT_BYTES_GUESS = 230
"""Arrow bytes per event (measured: 228 per row over a load test), for the size rule before then."""
_HOUR_MS = 3_600_000
_SEQ_DIGITS = 12
_PARTITION_NAME = re.compile(r"^[A-Za-z0-9]{1,32}$")

FILES_WRITTEN = Counter("tgstream_parquet_files_total", "Parquet files committed (renamed into place)")
ROWS_WRITTEN = Counter("tgstream_parquet_rows_total", "Event rows committed to Parquet files")
STALE_REMOVED = Counter(
    "tgstream_parquet_uncommitted_removed_total", "Files removed on resume because no snapshot covered them"
)


class ParquetSinkError(Exception):
    """The sink could not write or clean up its files; the dataflow should stop and resume."""


@dataclass(frozen=True)
class ParquetResume:
    """One partition's committed position; immutable, so it never shares state with the writer."""

    next_seq: int
    pending_first_seq: int
    pending_opened_at: float | None = None
    pending: tuple[bytes, ...] = ()


def file_name(partition: str, first_seq: int) -> str:
    """The committed name of a roll's file in each hour directory it touches."""
    return f"part-{partition}-{first_seq:0{_SEQ_DIGITS}d}.parquet"


def hour_dir(root: Path, hour_bucket: int) -> Path:
    """``root/date=YYYY-MM-DD/hour=HH`` for an hour counted since the Unix epoch (UTC)."""
    start = datetime.fromtimestamp(hour_bucket * 3600, tz=UTC)
    return root / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"


class ParquetEventWriter:
    """Buffers one partition's events and commits them as Parquet files; see the module docstring.

    Not thread-safe: Bytewax calls one partition from one worker thread.
    """

    def __init__(
        self,
        root: Path,
        partition: str,
        *,
        roll_bytes: int,
        roll_s: float,
        resume: ParquetResume | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _PARTITION_NAME.match(partition):
            msg = f"partition name must be 1-32 letters or digits, got {partition!r}"
            raise ValueError(msg)
        if roll_bytes <= 0 or roll_s <= 0:
            msg = f"roll_bytes and roll_s must be positive, got {roll_bytes} and {roll_s}"
            raise ValueError(msg)
        self.root = root
        self.partition = partition
        self._roll_bytes = roll_bytes
        self._roll_s = roll_s
        self._clock = clock
        self._events: list[ConversationEvent] = []
        self._chunks: list[pa.Table] = []
        self._unsaved: list[pa.Table] = []
        self._saved: list[bytes] = []
        self._bytes = 0
        self._remove_temp_files()
        if resume is None:
            self._first_seq = self._next_seq = self._after_existing_files()
            self._opened_at: float | None = None
        else:
            self._remove_uncommitted(resume.pending_first_seq)
            self._first_seq = resume.pending_first_seq
            self._next_seq = resume.next_seq
            self._opened_at = resume.pending_opened_at
            for blob in resume.pending:
                table = pa.ipc.open_stream(blob).read_all()
                self._chunks.append(table)
                self._bytes += table.nbytes
            self._saved = list(resume.pending)
            restored = sum(t.num_rows for t in self._chunks)
            if restored != self._next_seq - self._first_seq:
                msg = f"snapshot of partition {partition} holds {restored} rows, expected "
                msg += f"{self._next_seq - self._first_seq}"
                raise ParquetSinkError(msg)

    @property
    def pending_rows(self) -> int:
        return self._next_seq - self._first_seq

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def write(self, events: Sequence[ConversationEvent]) -> None:
        """Buffer events (in order) and roll if the buffer is now big or old enough.

        Events stay Python objects until the epoch's snapshot (or ``COLUMNARISE_EVERY`` of them):
        Bytewax calls this with one or two events at a time, and building an Arrow table costs
        about the same for one row as for a hundred.
        """
        if events:
            self._events.extend(events)
            self._next_seq += len(events)
            if self._opened_at is None:
                self._opened_at = self._clock()
            if len(self._events) >= COLUMNARISE_EVERY:
                self._columnarise()
        self.roll_if_due()

    def roll_if_due(self) -> list[Path]:
        """Roll when the buffer passed ``roll_bytes`` (in Arrow memory) or ``roll_s`` of age."""
        if not self._chunks and not self._events:
            return []
        aged = self._opened_at is not None and self._clock() - self._opened_at >= self._roll_s
        if aged or self._bytes + len(self._events) * EVENT_BYTES_GUESS >= self._roll_bytes:
            return self.flush()
        return []

    def snapshot(self) -> ParquetResume:
        """Commit-point hook: roll if due, then capture the resume position and buffered rows."""
        self.roll_if_due()
        self._columnarise()
        if self._unsaved:
            self._saved.append(_encode(pa.concat_tables(self._unsaved)))
            self._unsaved = []
        return ParquetResume(
            next_seq=self._next_seq,
            pending_first_seq=self._first_seq,
            pending_opened_at=self._opened_at,
            pending=tuple(self._saved),
        )

    def flush(self) -> list[Path]:
        """Write every buffered row now; returns the committed paths (one per hour touched)."""
        self._columnarise()
        if not self._chunks:
            return []
        table = pa.concat_tables(self._chunks).combine_chunks()
        name = file_name(self.partition, self._first_seq)
        buckets = pc.divide(pc.cast(table[PARTITION_COLUMN], pa.int64()), _HOUR_MS)
        written = []
        for bucket in sorted(pc.unique(buckets).to_pylist()):
            part = table.filter(pc.equal(buckets, bucket))
            written.append(self._commit(hour_dir(self.root, bucket), name, part))
            ROWS_WRITTEN.inc(part.num_rows)
        self._first_seq = self._next_seq
        self._chunks, self._unsaved, self._saved = [], [], []
        self._bytes = 0
        self._opened_at = None
        return written

    def close(self) -> None:
        """Commit what is buffered; Bytewax calls this only when the input ends."""
        self.flush()

    def _columnarise(self) -> None:
        if not self._events:
            return
        table = events_to_table(self._events)
        self._events = []
        self._chunks.append(table)
        self._unsaved.append(table)
        self._bytes += table.nbytes

    def _commit(self, directory: Path, name: str, table: pa.Table) -> Path:
        final = directory / name
        temp = directory / f".{name}.tmp"
        try:
            _make_dirs(directory)
            with open(temp, "wb") as handle:
                pq.write_table(table, handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
            _fsync_dir(directory)
        except OSError as exc:
            msg = f"could not commit {final}: {exc}"
            raise ParquetSinkError(msg) from exc
        FILES_WRITTEN.inc()
        return final

    def _own_files(self) -> list[tuple[int, Path]]:
        pattern = f"date=*/hour=*/part-{self.partition}-*.parquet"
        found = []
        for path in self.root.glob(pattern):
            seq = path.name.removeprefix(f"part-{self.partition}-").removesuffix(".parquet")
            if seq.isdigit():
                found.append((int(seq), path))
        return found

    def _after_existing_files(self) -> int:
        files = self._own_files()
        if not files:
            return 0
        last = max(seq for seq, _ in files)
        try:
            rows: int = sum(pq.read_metadata(path).num_rows for seq, path in files if seq == last)
        except (OSError, pa.ArrowException) as exc:
            msg = f"could not read the row count of partition {self.partition}'s last files: {exc}"
            raise ParquetSinkError(msg) from exc
        return last + rows

    def _remove_uncommitted(self, first_uncommitted: int) -> None:
        for seq, path in self._own_files():
            if seq >= first_uncommitted:
                _unlink(path)
                STALE_REMOVED.inc()

    def _remove_temp_files(self) -> None:
        for path in self.root.glob(f"date=*/hour=*/.part-{self.partition}-*.parquet.tmp"):
            _unlink(path)


def _encode(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, CONVERSATION_EVENTS, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _make_dirs(directory: Path) -> None:
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        _fsync_dir(created.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        msg = f"could not remove {path}: {exc}"
        raise ParquetSinkError(msg) from exc
