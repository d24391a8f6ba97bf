"""Commit points: a partition commits only below its lowest unfinished offset."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from tgstream.edges.sender.offsets import PartitionOffsets


def points(offsets: PartitionOffsets) -> list[tuple[int, int]]:
    return [(tp.partition, tp.offset) for tp in offsets.commit_points()]


def test_out_of_order_finishes_commit_only_the_finished_prefix() -> None:
    offsets = PartitionOffsets()
    states = {o: offsets.start("t", 0, o) for o in range(5)}
    for o in (3, 1, 4):
        offsets.finish(states[o], o)
    assert points(offsets) == []
    offsets.finish(states[0], 0)
    assert points(offsets) == [(0, 2)]
    offsets.finish(states[2], 2)
    assert points(offsets) == [(0, 5)]
    assert offsets.pending == 0


def test_partitions_are_independent_and_commits_are_not_repeated() -> None:
    offsets = PartitionOffsets()
    a = offsets.start("t", 0, 10)
    b = offsets.start("t", 1, 20)
    offsets.start("t", 1, 21)
    offsets.finish(a, 10)
    offsets.finish(b, 20)
    first = offsets.commit_points()
    assert sorted((tp.partition, tp.offset) for tp in first) == [(0, 11), (1, 21)]
    offsets.committed(first)
    assert points(offsets) == []


def test_revoked_partition_returns_its_final_point_and_ignores_late_finishes() -> None:
    offsets = PartitionOffsets()
    early = offsets.start("t", 0, 0)
    late = offsets.start("t", 0, 1)
    offsets.finish(early, 0)
    final = offsets.revoke([TopicPartition("t", 0)])
    assert [(tp.partition, tp.offset) for tp in final] == [(0, 1)]
    assert late.revoked
    offsets.finish(late, 1)
    assert points(offsets) == []
    again = offsets.start("t", 0, 1)
    assert again is not late, "a re-assigned partition starts fresh"
