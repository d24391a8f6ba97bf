"""The source lag: the pure arithmetic, the refresh interval on an injected clock, series that go away."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest
from prometheus_client import CollectorRegistry, Gauge

from tgstream.connectors.source_lag import SourceLag, consumer_watermarks, partition_lag


def test_lag_is_high_watermark_minus_next_offset() -> None:
    assert partition_lag({0: 7, 1: 10}, {0: (0, 10), 1: (0, 10)}) == {0: 3, 1: 0}


def test_a_source_that_read_nothing_owes_every_retained_record() -> None:
    assert partition_lag({0: None}, {0: (4, 9)}) == {0: 5}
    assert partition_lag({0: None}, {0: (-1001, 9)}) == {0: 9}, "an unknown low watermark counts from 0"


def test_offsets_deleted_by_retention_are_not_counted() -> None:
    assert partition_lag({0: 2}, {0: (6, 9)}) == {0: 3}


def test_a_stale_watermark_behind_the_source_is_zero_not_negative() -> None:
    assert partition_lag({0: 12}, {0: (0, 10)}) == {0: 0}


def test_partitions_without_watermarks_get_no_value() -> None:
    assert partition_lag({0: 1, 1: 1}, {1: (0, 3)}) == {1: 2}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Stands in for the watermark query only; the real query is tested against Kafka."""

    def __init__(self, high: dict[int, int]) -> None:
        self.high = high
        self.queries: list[list[int]] = []

    def __call__(self, partitions: Collection[int]) -> Mapping[int, tuple[int, int]]:
        self.queries.append(sorted(partitions))
        return {p: (0, self.high[p]) for p in partitions if p in self.high}


@pytest.fixture
def gauge() -> Gauge:
    return Gauge("lag_test", "lag", ["partition"], registry=CollectorRegistry())


def value(gauge: Gauge, partition: int) -> float | None:
    samples = {s.labels["partition"]: s.value for m in gauge.collect() for s in m.samples}
    return samples.get(str(partition))


def test_refreshes_at_once_then_at_most_every_interval(gauge: Gauge) -> None:
    clock, broker = Clock(), Broker({0: 10, 1: 4})
    offsets: dict[int, int | None] = {0: 7, 1: None}
    lag = SourceLag(lambda: offsets, broker, every_s=5.0, gauge=gauge, clock=clock)
    lag.maybe_refresh()
    assert (value(gauge, 0), value(gauge, 1)) == (3.0, 4.0)
    offsets[0] = 10
    clock.now += 4.9
    lag.maybe_refresh()
    assert value(gauge, 0) == 3.0, "not due yet"
    assert len(broker.queries) == 1
    clock.now += 0.1
    lag.maybe_refresh()
    assert value(gauge, 0) == 0.0
    assert len(broker.queries) == 2
    assert broker.queries[-1] == [0, 1]


def test_a_partition_no_longer_read_loses_its_series(gauge: Gauge) -> None:
    offsets: dict[int, int | None] = {0: 1, 1: 1}
    lag = SourceLag(lambda: offsets, Broker({0: 5, 1: 5}), gauge=gauge)
    assert lag.refresh() == {0: 4, 1: 4}
    del offsets[1]
    assert lag.refresh() == {0: 4}
    assert (value(gauge, 0), value(gauge, 1)) == (4.0, None)


def test_an_unknown_watermark_keeps_the_last_value(gauge: Gauge) -> None:
    broker = Broker({0: 5})
    lag = SourceLag(lambda: {0: 1}, broker, gauge=gauge)
    lag.refresh()
    del broker.high[0]
    assert lag.refresh() == {}
    assert value(gauge, 0) == 4.0


def test_the_interval_must_be_positive(gauge: Gauge) -> None:
    with pytest.raises(ValueError, match="every_s"):
        SourceLag(dict, Broker({}), every_s=0, gauge=gauge)


def test_a_source_between_consumers_knows_no_watermarks() -> None:
    assert consumer_watermarks(lambda: None, "inbound")([0, 1]) == {}
