from __future__ import annotations

import math
import random

import pytest

from tgstream.loadtest.schedule import (
    DEFAULT_PHASES,
    Phase,
    ScheduleError,
    ThinkTime,
    UserPool,
    arrivals,
    parse_duration,
    parse_phases,
    scale_phases,
    total_duration,
    users_needed,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("500ms", 0.5), ("1.5h", 5400.0), ("45", 45.0)]
)
def test_parse_duration_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10 minutes", "-5s", "s", "1d"])
def test_parse_duration_rejects_garbage(bad: str) -> None:
    with pytest.raises(ScheduleError, match="bad duration"):
        parse_duration(bad)


def test_parse_phases_reads_the_cli_syntax() -> None:
    phases = parse_phases("warmup:10:30s, normal:100:1m,max:1000:500ms")
    assert phases == (Phase("warmup", 10, 30), Phase("normal", 100, 60), Phase("max", 1000, 0.5))
    assert total_duration(phases) == pytest.approx(90.5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("warmup:10", "expected name:rate:duration"),
        ("warmup:ten:30s", "is not a number"),
        ("warmup:-1:30s", "rate must be"),
        ("warmup:10:0s", "duration must be > 0"),
        (":10:30s", "needs a name"),
    ],
)
def test_parse_phases_errors_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_phases(spec)


def test_scale_multiplies_rates_and_keeps_durations() -> None:
    scaled = scale_phases(DEFAULT_PHASES, 0.1)
    assert [p.rate for p in scaled] == pytest.approx([p.rate * 0.1 for p in DEFAULT_PHASES])
    assert [p.duration_s for p in scaled] == [p.duration_s for p in DEFAULT_PHASES]
    with pytest.raises(ScheduleError):
        scale_phases(DEFAULT_PHASES, 0)


def test_uniform_arrivals_are_evenly_spaced_within_each_phase() -> None:
    phases = (Phase("a", 4, 2.0), Phase("b", 10, 1.0))
    got = list(arrivals(phases, process="uniform", rng=random.Random(0)))
    first = [a.at for a in got if a.phase == 0]
    second = [a.at for a in got if a.phase == 1]
    assert first == pytest.approx([0.125 + i * 0.25 for i in range(8)])
    assert second == pytest.approx([2.05 + i * 0.1 for i in range(10)])


def test_poisson_arrivals_match_the_rate_and_stay_inside_their_phase() -> None:
    phases = (Phase("slow", 50, 20.0), Phase("pause", 0, 5.0), Phase("fast", 400, 10.0))
    got = list(arrivals(phases, process="poisson", rng=random.Random(7)))
    assert [a.at for a in got] == sorted(a.at for a in got)
    bounds = {0: (0.0, 20.0), 2: (25.0, 35.0)}
    assert {a.phase for a in got} == {0, 2}
    for arrival in got:
        low, high = bounds[arrival.phase]
        assert low <= arrival.at < high
    for index, phase in ((0, phases[0]), (2, phases[2])):
        expected = phase.rate * phase.duration_s
        count = sum(1 for a in got if a.phase == index)
        assert abs(count - expected) < 5 * math.sqrt(expected)


def test_poisson_arrivals_are_reproducible_from_the_seed() -> None:
    phases = (Phase("p", 30, 3.0),)
    assert list(arrivals(phases, rng=random.Random(3))) == list(arrivals(phases, rng=random.Random(3)))


def test_think_time_stays_in_range() -> None:
    think = ThinkTime(min_s=6, median_s=12, max_s=60)
    rng = random.Random(1)
    samples = [think.sample(rng) for _ in range(2000)]
    assert min(samples) >= 6
    assert max(samples) <= 60
    assert 6 < sorted(samples)[1000] < 60
    with pytest.raises(ScheduleError):
        ThinkTime(min_s=10, median_s=5)


FIXED_THINK = ThinkTime(min_s=5, median_s=5, max_s=5)


def test_pool_adds_users_until_the_cap_then_refuses() -> None:
    pool = UserPool(max_users=3, think=FIXED_THINK, rng=random.Random(0))
    assert [pool.acquire(0.0) for _ in range(3)] == [0, 1, 2]
    assert pool.acquire(0.0) is None
    assert (pool.active, pool.busy) == (3, 3)


def test_pool_reuses_a_user_only_after_the_reply_and_the_think_time() -> None:
    pool = UserPool(max_users=1, think=FIXED_THINK, rng=random.Random(0))
    user = pool.acquire(0.0)
    assert user == 0
    pool.release(user, now=2.0)
    assert pool.next_ready_at() == pytest.approx(7.0)
    assert pool.acquire(6.9) is None
    assert pool.acquire(7.0) == 0


def test_pool_prefers_ready_users_over_newcomers_and_replaces_leavers() -> None:
    pool = UserPool(max_users=5, think=FIXED_THINK, rng=random.Random(0))
    first, second = pool.acquire(0.0), pool.acquire(0.0)
    assert (first, second) == (0, 1)
    pool.release(1, now=1.0)
    pool.release(0, now=2.0)
    assert pool.acquire(10.0) == 1
    assert pool.acquire(10.0) == 0
    pool.release(0, now=11.0, session_over=True)
    assert pool.active == 1
    assert pool.acquire(11.0) == 2
    assert pool.joined == 3


def test_users_needed_grows_with_rate_and_latency() -> None:
    think = ThinkTime()
    assert users_needed(100, think, 0.3) < users_needed(200, think, 0.3)
    assert users_needed(100, think, 0.3) < users_needed(100, think, 2.0)
    assert users_needed(100, think, 0.3) >= 100 * think.min_s
