from __future__ import annotations

import math
import random

import pytest

from tgstream.loadtest.stats import LatencyLog, percentile, summarize


def _by_definition(samples: list[float], p: float) -> float:
    """The smallest sample with at least p% of all samples at or below it."""
    for candidate in sorted(samples):
        if sum(1 for s in samples if s <= candidate) >= p / 100 * len(samples):
            return candidate
    raise AssertionError("unreachable")


@pytest.mark.parametrize("p", [1, 50, 90, 95, 99, 99.9, 100])
def test_percentile_matches_the_nearest_rank_definition(p: float) -> None:
    rng = random.Random(int(p * 10))
    samples = [rng.expovariate(3) for _ in range(537)]
    assert percentile(sorted(samples), p) == _by_definition(samples, p)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="percentile must be"):
        percentile([1.0], 0)


def test_summary_of_a_known_set() -> None:
    samples = [float(i) for i in range(1, 101)]
    random.Random(0).shuffle(samples)
    summary = summarize(samples)
    assert summary is not None
    assert (summary.count, summary.p50, summary.p95, summary.p99, summary.max) == (100, 50, 95, 99, 100)
    assert summary.mean == pytest.approx(50.5)
    assert summary.as_ms()["p50"] == pytest.approx(50_000)
    assert summary.as_ms()["count"] == 100


def test_latencies_belong_to_the_phase_they_were_sent_in() -> None:
    log = LatencyLog(phases=2)
    log.sent(0.1, 0)
    log.sent(0.9, 1)
    log.answered(1.2, 1.1, 0)
    log.answered(1.3, 0.4, 1)
    assert log.phase_latencies(0) == [1.1]
    assert log.phase_latencies(1) == [0.4]
    assert (log.phase_sent(0), log.phase_sent(1)) == (1, 1)


def test_timeline_buckets_count_sends_and_answers_by_their_own_time() -> None:
    log = LatencyLog(phases=1)
    for i in range(30):
        log.sent(i * 0.1, 0)
    for i in range(20):
        log.answered(1.0 + i * 0.1, 0.5 + i * 0.01, 0)
    buckets = log.timeline(1.0, until=3.0)
    assert [b.sent for b in buckets] == [10, 10, 10]
    assert [b.answered for b in buckets] == [0, 10, 10]
    assert buckets[0].latency is None
    second = buckets[1].latency
    assert second is not None
    assert second.max == pytest.approx(0.59)
    assert buckets[1].sent_rate == 10
    assert buckets[2].answered_rate == 10


def test_recent_window_forgets_old_answers() -> None:
    log = LatencyLog(phases=1)
    for i in range(100):
        log.sent(i * 0.1, 0)
        log.answered(i * 0.1, 2.0 if i < 50 else 0.2, 0)
    summary, sent_rate, answered_rate = log.recent(now=9.95, window_s=4.0)
    assert summary is not None
    assert summary.max == pytest.approx(0.2)
    assert sent_rate == pytest.approx(40 / 4.0)
    assert answered_rate == pytest.approx(40 / 4.0)
    assert math.isclose(summary.p50, 0.2)
