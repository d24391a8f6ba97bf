"""Recovery partitions: per-pod shares of a fresh set, consistent live copies, descriptions."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tgstream.ops.recovery_files import (
    MARKER,
    RecoveryFilesError,
    copy_partitions,
    describe_partition,
    init_partition_share,
    owned_partitions,
    partition_files,
)


def test_shares_of_the_initial_cluster_cover_every_partition_exactly_once() -> None:
    for partitions, processes in [(12, 2), (12, 5), (4, 4), (7, 3)]:
        shares = [owned_partitions(partitions, processes, i) for i in range(processes)]
        flat = sorted(k for share in shares for k in share)
        assert flat == list(range(partitions))
        assert all(share for share in shares), "every initial process holds at least one"
    assert owned_partitions(12, 2, 5) == []
    with pytest.raises(ValueError, match="only 2 recovery partitions"):
        owned_partitions(2, 3, 0)


def test_two_pods_initialise_disjoint_halves_of_one_set(tmp_path: Path) -> None:
    pods = [tmp_path / "pod-0", tmp_path / "pod-1"]
    outcomes = [
        init_partition_share(pod, partitions=6, initial_processes=2, process_id=i)
        for i, pod in enumerate(pods)
    ]
    assert [o.created for o in outcomes] == [[0, 2, 4], [1, 3, 5]]
    described = [describe_partition(p) for pod in pods for p in partition_files(pod)]
    assert sorted(d.part_index for d in described) == list(range(6))
    assert {d.part_count for d in described} == {6}
    assert not list(pods[0].glob(".init-*")), "scratch directory removed"

    again = init_partition_share(pods[0], partitions=6, initial_processes=2, process_id=0)
    assert again.created == []
    assert again.already_present == [0, 2, 4]


def test_a_pod_added_later_with_an_empty_volume_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RecoveryFilesError, match="live on other volumes"):
        init_partition_share(tmp_path / "pod-2", partitions=6, initial_processes=2, process_id=2)
    assert partition_files(tmp_path / "pod-2") == []


def test_a_volume_whose_partitions_were_moved_away_refuses_to_recreate_them(tmp_path: Path) -> None:
    pod = tmp_path / "pod-0"
    init_partition_share(pod, partitions=2, initial_processes=1, process_id=0)
    for path in partition_files(pod):
        path.rename(tmp_path / path.name)
    assert (pod / MARKER).exists()
    with pytest.raises(RecoveryFilesError, match="move at least one"):
        init_partition_share(pod, partitions=2, initial_processes=1, process_id=0)


def _add_snapshot(path: Path, epoch: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as writer:
        writer.execute(
            "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES ('s', 'k', ?, x'00')",
            (epoch,),
        )
        writer.commit()


def test_copies_of_live_wal_partitions_hold_committed_writes(tmp_path: Path) -> None:
    init_partition_share(tmp_path / "live", partitions=2)
    sources = partition_files(tmp_path / "live")
    with contextlib.closing(sqlite3.connect(sources[0])) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        _add_snapshot(sources[0], 7)
        assert Path(str(sources[0]) + "-wal").stat().st_size > 0, "the write is still only in the WAL"
        (tmp_path / "copy").mkdir()
        copies = copy_partitions(sources, tmp_path / "copy")
    assert [describe_partition(c).snapshots for c in copies] == [1, 0]
    assert not any(Path(str(c) + "-wal").exists() for c in copies)


def test_copies_show_every_partition_as_it_was_when_pinned(tmp_path: Path) -> None:
    init_partition_share(tmp_path / "live", partitions=3)
    sources = partition_files(tmp_path / "live")
    for path in sources:
        _add_snapshot(path, 1)

    def dataflow_commits_next_epoch() -> None:
        for path in sources:
            _add_snapshot(path, 2)

    (tmp_path / "copy").mkdir()
    copies = copy_partitions(sources, tmp_path / "copy", after_pin=dataflow_commits_next_epoch)
    assert [describe_partition(c).snapshots for c in copies] == [1, 1, 1]
    assert [describe_partition(s).snapshots for s in sources] == [2, 2, 2]


def test_describe_rejects_files_that_are_not_partitions(tmp_path: Path) -> None:
    other = tmp_path / "part-0.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(RecoveryFilesError, match="not a Bytewax recovery partition"):
        describe_partition(other)
    garbage = tmp_path / "part-1.sqlite3"
    garbage.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(RecoveryFilesError):
        describe_partition(garbage)


def test_partition_files_sort_numerically_and_ignore_wal_files(tmp_path: Path) -> None:
    for name in ["part-10.sqlite3", "part-2.sqlite3", "part-2.sqlite3-wal", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in partition_files(tmp_path)] == ["part-2.sqlite3", "part-10.sqlite3"]
