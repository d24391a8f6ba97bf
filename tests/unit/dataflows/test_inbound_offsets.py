"""The inbound source's resume offset: only real records move it, so a broker error can never
make a snapshot resume past unread records (or at a bogus negative position)."""

from __future__ import annotations

from confluent_kafka import OFFSET_INVALID

from tgstream.connectors.kafka_partition import OffsetTracker


def test_a_fresh_partition_has_no_resume_offset_until_a_record_is_seen() -> None:
    tracker = OffsetTracker(None)
    assert tracker.next_offset is None
    tracker.seen(0)
    assert tracker.next_offset == 1


def test_records_move_the_offset_to_one_past_the_last_seen() -> None:
    tracker = OffsetTracker(40)
    for offset in range(40, 45):
        tracker.seen(offset)
    assert tracker.next_offset == 45


def test_the_offset_an_error_event_carries_never_moves_the_resume_point() -> None:
    tracker = OffsetTracker(17)
    tracker.seen(OFFSET_INVALID)
    tracker.seen(-1)
    assert tracker.next_offset == 17


def test_an_older_offset_never_moves_it_back() -> None:
    tracker = OffsetTracker(100)
    tracker.seen(3)
    assert tracker.next_offset == 100


def test_lag_means_the_broker_holds_records_from_our_next_offset_on() -> None:
    tracker = OffsetTracker(10)
    assert tracker.lagging_behind(11)
    assert not tracker.lagging_behind(10)
    assert OffsetTracker(None).lagging_behind(1)
    assert not OffsetTracker(None).lagging_behind(0)
