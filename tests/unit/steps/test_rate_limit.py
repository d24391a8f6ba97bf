from __future__ import annotations

import pickle

import pytest

from tgstream.steps.rate_limit import (
    DEFAULT_WINDOWS,
    Decision,
    RateLimiter,
    RateState,
    Window,
    polite_notice,
    windows_from_limits,
)

DAY = 86_400
# A realistic absolute clock: 2024-11-25 00:00:00 UTC, a multiple of every window length.
T0 = 1_732_492_800.0
assert T0 % DAY == 0


def run(
    limiter: RateLimiter, times: list[float], state: RateState | None = None
) -> tuple[RateState, list[Decision]]:
    decisions: list[Decision] = []
    current = state if state is not None else limiter.fresh(times[0])
    for t in times:
        current, decision = limiter.check(current, t)
        decisions.append(decision)
    return current, decisions


def test_defaults_are_ten_per_minute_hundred_per_hour_thousand_per_day() -> None:
    assert [(w.name, w.seconds, w.limit) for w in DEFAULT_WINDOWS] == [
        ("minute", 60, 10),
        ("hour", 3600, 100),
        ("day", DAY, 1000),
    ]
    assert windows_from_limits(10, 100, 1000) == DEFAULT_WINDOWS


def test_eleventh_message_in_a_minute_is_rejected_with_one_notice() -> None:
    limiter = RateLimiter()
    state, decisions = run(limiter, [T0 + i for i in range(13)])
    assert all(d.allowed for d in decisions[:10])
    rejected = decisions[10:]
    assert [d.allowed for d in rejected] == [False, False, False]
    assert [d.notify for d in rejected] == [True, False, False]
    assert {d.window for d in rejected} == {"minute"}
    assert rejected[0].retry_after_s == pytest.approx(60 - 10)
    assert state.rejected_total == 3


def test_minute_edge_59_999_is_same_window_60_0_is_next() -> None:
    limiter = RateLimiter((Window("minute", 60, 1),))
    state, first = limiter.check(None, T0)
    assert first.allowed
    state, edge = limiter.check(state, T0 + 59.999)
    assert not edge.allowed
    assert edge.retry_after_s == pytest.approx(0.001, abs=1e-6)
    _, next_window = limiter.check(state, T0 + 60.0)
    assert next_window.allowed


def test_day_boundary_is_utc_midnight() -> None:
    limiter = RateLimiter((Window("day", DAY, 2),))
    start = T0 + DAY - 10.0
    state, decisions = run(limiter, [start, start + 1, start + 2, start + 9.999])
    assert [d.allowed for d in decisions] == [True, True, False, False]
    assert decisions[2].retry_after_s == pytest.approx(8.0)
    _, after_midnight = limiter.check(state, T0 + DAY)
    assert after_midnight.allowed


def test_a_new_window_instance_notifies_again() -> None:
    limiter = RateLimiter((Window("minute", 60, 1),))
    _, decisions = run(limiter, [T0, T0 + 1, T0 + 2, T0 + 60, T0 + 61, T0 + 62])
    assert [(d.allowed, d.notify) for d in decisions] == [
        (True, False),
        (False, True),
        (False, False),
        (True, False),
        (False, True),
        (False, False),
    ]


def test_rejected_messages_do_not_count_towards_longer_windows() -> None:
    limiter = RateLimiter((Window("minute", 60, 2), Window("hour", 3600, 5)))
    # 2 accepted + 50 rejected in the first minute; the hour must still have 3 slots left.
    times = [T0 + i * 0.5 for i in range(52)]
    state, decisions = run(limiter, times)
    assert sum(d.allowed for d in decisions) == 2
    assert state.counts[1].count == 2
    state, later = run(limiter, [T0 + 60, T0 + 61, T0 + 120], state)
    assert [d.allowed for d in later] == [True, True, True]


def test_the_window_that_reopens_last_is_reported() -> None:
    limiter = RateLimiter((Window("minute", 60, 3), Window("hour", 3600, 3)))
    _, decisions = run(limiter, [T0, T0 + 1, T0 + 2, T0 + 3])
    last = decisions[-1]
    assert (last.allowed, last.window, last.notify) == (False, "hour", True)
    assert last.retry_after_s == pytest.approx(3600 - 3)


def test_hour_notice_once_even_across_minutes() -> None:
    limiter = RateLimiter((Window("minute", 60, 100), Window("hour", 3600, 2)))
    _, decisions = run(limiter, [T0, T0 + 1, T0 + 2, T0 + 70, T0 + 130])
    assert [d.notify for d in decisions] == [False, False, True, False, False]


def test_snapshot_round_trip_keeps_counts_and_notice_state() -> None:
    limiter = RateLimiter()
    state, _ = run(limiter, [T0 + i for i in range(11)])
    restored = pickle.loads(pickle.dumps(state))
    assert restored == state
    assert len(pickle.dumps(state)) < 400
    _, decision = RateLimiter().check(restored, T0 + 20)
    assert (decision.allowed, decision.notify) == (False, False)


def test_snapshot_restored_much_later_starts_fresh() -> None:
    limiter = RateLimiter()
    state, _ = run(limiter, [T0 + i for i in range(11)])
    restored = pickle.loads(pickle.dumps(state))
    assert limiter.is_idle(restored, T0 + 2 * DAY)
    new_state, decision = limiter.check(restored, T0 + 2 * DAY)
    assert decision.allowed
    assert [c.count for c in new_state.counts] == [1, 1, 1]


def test_state_from_a_different_config_is_reset_not_misread() -> None:
    state, _ = RateLimiter((Window("minute", 60, 1),)).check(None, T0)
    _, decision = RateLimiter().check(state, T0 + 1)
    assert decision.allowed


def test_check_does_not_mutate_the_input_state() -> None:
    limiter = RateLimiter()
    state, _ = limiter.check(None, T0)
    before = pickle.dumps(state)
    limiter.check(state, T0 + 1)
    assert pickle.dumps(state) == before


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ((), "at least one"),
        ((Window("a", 60, 1), Window("a", 3600, 2)), "unique"),
        (tuple(Window(f"w{i}", 60, 1) for i in range(9)), "at most"),
    ],
)
def test_bad_window_configs_are_refused(windows: tuple[Window, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimiter(windows)


def test_window_values_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        Window("minute", 0, 10)
    with pytest.raises(ValueError, match="positive"):
        Window("minute", 60, 0)


def test_group_book_is_per_user_and_capped() -> None:
    limiter = RateLimiter((Window("minute", 60, 1),))
    book: dict[int, RateState] = {}
    book, first = limiter.check_user(book, 1, T0, max_users=3)
    book, other_user = limiter.check_user(book, 2, T0 + 1, max_users=3)
    book, again = limiter.check_user(book, 1, T0 + 2, max_users=3)
    assert (first.allowed, other_user.allowed, again.allowed) == (True, True, False)
    for uid in range(10, 20):
        book, _ = limiter.check_user(book, uid, T0 + 3 + uid, max_users=3)
    assert len(book) == 3
    assert 19 in book


def test_group_book_drops_idle_users_before_active_ones() -> None:
    limiter = RateLimiter((Window("minute", 60, 5),))
    book: dict[int, RateState] = {}
    book, _ = limiter.check_user(book, 1, T0, max_users=2)  # idle by T0 + 120
    book, _ = limiter.check_user(book, 2, T0 + 121, max_users=2)
    book, _ = limiter.check_user(book, 3, T0 + 122, max_users=2)
    assert set(book) == {2, 3}


def test_polite_notice_says_when_to_come_back() -> None:
    minute = polite_notice("minute", 42.3, "Luna")
    assert "Luna" in minute
    assert "43 seconds" in minute
    hour = polite_notice("hour", 1800, None)
    assert "30 minutes" in hour
    day = polite_notice("day", 5 * 3600 + 10, "Max")
    assert "hours" in day
    assert "Max" in day
    assert "1 second" in polite_notice("minute", 0.0001)
