"""ParquetEventWriter: layout, schema, atomic commits, rolling and replay after a crash."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tgstream.schemas.arrow import CONVERSATION_EVENTS
from tgstream.schemas.events import ConversationEvent
from tgstream.sinks.parquet import ParquetEventWriter, ParquetResume, file_name

T0 = datetime(2026, 3, 1, 10, 59, 0, tzinfo=UTC).timestamp()


def event(n: int, received_at: float = T0) -> ConversationEvent:
    return ConversationEvent(
        event_id=f"e{n}",
        event_type="reply_out" if n % 2 else "message_in",
        chat_hash=f"chat{n % 3}",
        user_hash=f"user{n % 5}",
        chat_type="private",
        update_ids=(n,),
        text_chars=n,
        spam_reasons=("caps",) if n % 4 == 0 else (),
        sent_at=received_at - 1,
        received_at=received_at,
        processed_at=received_at + 0.5,
        emitted_at=received_at + 1,
    )


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def writer(
    root: Path,
    resume: ParquetResume | None = None,
    *,
    roll_bytes: int = 10**9,
    roll_s: float = 3600.0,
    clock: Clock | None = None,
) -> ParquetEventWriter:
    return ParquetEventWriter(
        root, "000", roll_bytes=roll_bytes, roll_s=roll_s, resume=resume, clock=clock or Clock()
    )


def committed_ids(root: Path) -> list[str]:
    if not any(root.rglob("*.parquet")):
        return []
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(columns=["event_id"])
    return sorted(table["event_id"].to_pylist())


def test_files_are_hour_partitioned_with_the_declared_schema(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.write([event(1, T0), event(2, T0 + 61), event(3, T0 + 30)])  # 10:59, 11:00, 10:59
    paths = w.flush()

    name = file_name("000", 0)
    assert sorted(paths) == [
        tmp_path / "date=2026-03-01" / "hour=10" / name,
        tmp_path / "date=2026-03-01" / "hour=11" / name,
    ]
    for path in paths:
        schema = pq.read_schema(path)
        assert schema.equals(CONVERSATION_EVENTS)
        assert schema.metadata == CONVERSATION_EVENTS.metadata
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    hour10 = pq.read_table(paths[0])
    assert hour10["event_id"].to_pylist() == ["e1", "e3"]  # buffer order kept within a file


def test_pyarrow_dataset_and_duckdb_read_the_tree(tmp_path: Path) -> None:
    w = writer(tmp_path)
    events = [event(n, T0 + n * 20) for n in range(12)]  # spans 10:59 to 11:02
    w.write(events)
    w.flush()

    dataset = ds.dataset(tmp_path, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == len(events)
    assert table.schema.names == [*CONVERSATION_EVENTS.names, "date", "hour"]

    glob = str(tmp_path / "**" / "*.parquet")
    query = (
        f"SELECT hour, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY 1 ORDER BY 1"
    )
    rows = duckdb.execute(query).fetchall()
    expected_hours: dict[int, int] = {}
    for e in events:
        hour = datetime.fromtimestamp(e.received_at, tz=UTC).hour
        expected_hours[hour] = expected_hours.get(hour, 0) + 1
    assert [(int(h), c) for h, c in rows] == sorted(expected_hours.items())


def test_temp_files_of_a_crashed_write_are_invisible_and_cleaned(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.write([event(1)])
    (committed,) = w.flush()
    crashed = committed.parent / f".{file_name('000', 1)}.tmp"
    crashed.write_bytes(b"PAR1 half a file")

    assert committed_ids(tmp_path) == ["e1"]
    glob = str(tmp_path / "**" / "*.parquet")
    assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(1,)]

    writer(tmp_path)  # a restarted partition removes its own leftovers
    assert not crashed.exists()
    assert [p.name for p in committed.parent.iterdir()] == [committed.name]


def test_rolls_by_size(tmp_path: Path) -> None:
    w = writer(tmp_path, roll_bytes=1)
    w.write([event(1)])
    w.write([event(2), event(3)])
    assert w.pending_rows == 0
    names = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert names == [file_name("000", 0), file_name("000", 1)]


def test_rolls_by_age_on_write_and_on_snapshot(tmp_path: Path) -> None:
    clock = Clock()
    w = writer(tmp_path, roll_s=60.0, clock=clock)
    w.write([event(1)])
    clock.now += 59
    w.write([event(2)])
    assert w.pending_rows == 2
    clock.now += 1
    w.write([event(3)])
    assert w.pending_rows == 0
    assert committed_ids(tmp_path) == ["e1", "e2", "e3"]

    w.write([event(4)])
    clock.now += 60
    resume = w.snapshot()
    assert resume.pending == ()
    assert resume.pending_first_seq == resume.next_seq == 4
    assert committed_ids(tmp_path) == ["e1", "e2", "e3", "e4"]


def test_snapshot_is_a_detached_picklable_value(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.write([event(1), event(2)])
    first = w.snapshot()
    w.write([event(3)])
    second = w.snapshot()

    assert (first.pending_first_seq, first.next_seq, len(first.pending)) == (0, 2, 1)
    assert (second.next_seq, len(second.pending)) == (3, 2)
    assert pickle.loads(pickle.dumps(second)) == second


def test_replay_after_crash_rewrites_the_same_files_without_duplicates(tmp_path: Path) -> None:
    first_run = writer(tmp_path)
    first_run.write([event(0), event(1)])
    committed = first_run.snapshot()  # epoch commit: rows 0-1 live only in the snapshot
    first_run.write([event(2)])
    first_run.flush()  # a roll after the commit: part-0 holds 0-2
    first_run.write([event(3), event(4)])
    first_run.flush()  # and another: part-3 holds 3-4; then the process dies
    assert committed_ids(tmp_path) == ["e0", "e1", "e2", "e3", "e4"]

    resumed = writer(tmp_path, resume=committed)
    assert committed_ids(tmp_path) == []  # both files were written after the last commit
    assert resumed.pending_rows == 2
    resumed.write([event(2), event(3), event(4)])  # Bytewax replays the uncommitted epoch
    (path,) = resumed.flush()

    assert path.name == file_name("000", 0)
    assert committed_ids(tmp_path) == ["e0", "e1", "e2", "e3", "e4"]


def test_files_committed_before_the_snapshot_survive_a_resume(tmp_path: Path) -> None:
    first_run = writer(tmp_path)
    first_run.write([event(0)])
    first_run.flush()
    first_run.write([event(1)])
    committed = first_run.snapshot()
    first_run.flush()

    resumed = writer(tmp_path, resume=committed)
    assert committed_ids(tmp_path) == ["e0"]
    resumed.close()
    assert committed_ids(tmp_path) == ["e0", "e1"]


def test_a_fresh_start_never_overwrites_earlier_files(tmp_path: Path) -> None:
    old = writer(tmp_path)
    old.write([event(0), event(1)])
    old.flush()

    fresh = writer(tmp_path)  # e.g. the recovery store was recreated
    fresh.write([event(2)])
    (path,) = fresh.flush()
    assert path.name == file_name("000", 2)
    assert committed_ids(tmp_path) == ["e0", "e1", "e2"]


def test_rejects_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="partition name"):
        ParquetEventWriter(tmp_path, "../x", roll_bytes=1, roll_s=1)
    with pytest.raises(ValueError, match="positive"):
        ParquetEventWriter(tmp_path, "000", roll_bytes=0, roll_s=1)
