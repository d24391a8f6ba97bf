"""Commit points: a partition commits only below its lowest unfinished offset."""

from __future__ import annotations

import threading
import time

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


def test_revoke_waits_for_the_record_being_sent_and_commits_it() -> None:
    offsets = PartitionOffsets()
    sending = offsets.start("t", 0, 7)
    queued = offsets.start("t", 0, 8)
    assert offsets.begin(sending)
    started = threading.Event()
    result: list[list[TopicPartition]] = []

    def revoke() -> None:
        started.set()
        result.append(offsets.revoke([TopicPartition("t", 0)], wait_s=60.0))

    thread = threading.Thread(target=revoke)
    thread.start()
    assert started.wait(10)
    while not sending.revoked:  # the revocation has begun: nothing new may start
        time.sleep(0.001)
    assert not offsets.begin(queued), "a queued record of a revoked partition is skipped"
    assert thread.is_alive(), "revoke waits while a send is in progress"
    offsets.finish(sending, 7)
    offsets.end(sending)
    thread.join(10)
    assert not thread.is_alive()
    assert [(tp.partition, tp.offset) for tp in result[0]] == [(0, 8)]


def test_revoke_abandons_a_send_that_outlives_the_bound() -> None:
    offsets = PartitionOffsets()
    sending = offsets.start("t", 0, 3)
    assert offsets.begin(sending)
    assert offsets.revoke([TopicPartition("t", 0)], wait_s=0.0) == []
    offsets.finish(sending, 3)
    offsets.end(sending)
    assert points(offsets) == [], "a late completion never commits for the new owner"
