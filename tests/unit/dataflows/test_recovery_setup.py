"""When a dataflow process creates recovery partitions, and what it accepts, on real Bytewax files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tgstream.dataflows.recovery_setup import RecoverySetupError, Topology, ensure_recovery
from tgstream.ops.recovery_files import MARKER, describe_partition, init_partition_share, partition_files

PEERS = ("h0:2101", "h1:2101", "h2:2101")


def indices(directory: Path) -> list[int]:
    return [describe_partition(path).part_index for path in partition_files(directory)]


def test_a_lone_process_creates_a_full_set_once(tmp_path: Path) -> None:
    first = ensure_recovery(tmp_path, 4, Topology())
    assert (first.indices, first.total, first.created) == ((0, 1, 2, 3), 4, True)
    assert (tmp_path / MARKER).exists(), "the same marker `tgstream recovery init` writes"
    again = ensure_recovery(tmp_path, 9, Topology())
    assert (again.indices, again.total, again.created) == ((0, 1, 2, 3), 4, False)
    assert indices(tmp_path) == [0, 1, 2, 3]


def test_more_workers_than_partitions_is_allowed(tmp_path: Path) -> None:
    share = ensure_recovery(tmp_path, 1, Topology(workers_per_process=3))
    assert share.total == 1


def test_process_zero_of_a_cluster_creates_the_full_set(tmp_path: Path) -> None:
    share = ensure_recovery(tmp_path, 3, Topology(1, 0, PEERS))
    assert share.indices == (0, 1, 2)


@pytest.mark.parametrize("process_id", [1, 2])
def test_other_processes_never_create_partitions(tmp_path: Path, process_id: int) -> None:
    share = ensure_recovery(tmp_path / "empty", 3, Topology(1, process_id, PEERS))
    assert (share.indices, share.total, share.created) == ((), 0, False)
    assert partition_files(tmp_path / "empty") == []


def test_a_cluster_member_may_hold_part_of_the_set(tmp_path: Path) -> None:
    """The k8s init container's round-robin share (`tgstream recovery init`) is used as it is."""
    init_partition_share(tmp_path, partitions=6, initial_processes=3, process_id=1)
    share = ensure_recovery(tmp_path, 6, Topology(4, 1, PEERS))
    assert (share.indices, share.total, share.created) == ((1, 4), 6, False)


def test_a_lone_process_needs_the_whole_set(tmp_path: Path) -> None:
    init_partition_share(tmp_path, partitions=3, initial_processes=3, process_id=2)
    with pytest.raises(RecoverySetupError, match=r"holds partitions \[2\] of a set of 3.*\[0, 1\]"):
        ensure_recovery(tmp_path, 3, Topology())


def test_an_emptied_directory_is_not_a_first_start(tmp_path: Path) -> None:
    """Partitions moved away leave the marker: recreating them would fork the history."""
    ensure_recovery(tmp_path, 2, Topology())
    for path in tmp_path.glob("part-*"):
        os.remove(path)
    with pytest.raises(RecoverySetupError, match="holds no recovery partitions"):
        ensure_recovery(tmp_path, 2, Topology(1, 0, PEERS))


def test_partitions_of_two_sets_are_refused(tmp_path: Path) -> None:
    ensure_recovery(tmp_path / "a", 2, Topology())
    ensure_recovery(tmp_path / "b", 3, Topology())
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    os.replace(tmp_path / "a" / "part-0.sqlite3", mixed / "part-0.sqlite3")
    os.replace(tmp_path / "b" / "part-1.sqlite3", mixed / "part-1.sqlite3")
    with pytest.raises(RecoverySetupError, match=r"different sets \(sizes \[2, 3\]\)"):
        ensure_recovery(mixed, 2, Topology(1, 1, PEERS))
