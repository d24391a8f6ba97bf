from __future__ import annotations

import pytest

from tgstream.steps.breaker import BreakerState, CircuitBreaker, fallback_reply


def tripped(**kwargs: float) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=3, reset_s=10.0, min_failure_ratio=0.0, **kwargs)  # type: ignore[arg-type]
    for t in (0.0, 1.0, 2.0):
        breaker.record_failure(t)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_closed_breaker_allows_calls() -> None:
    breaker = CircuitBreaker()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow(float(t)) for t in range(100))
    assert breaker.retry_at() is None


def test_opens_at_the_threshold_within_the_window() -> None:
    breaker = CircuitBreaker(failure_threshold=3, window_s=30.0, min_failure_ratio=0.0)
    assert breaker.record_failure(0.0) is BreakerState.CLOSED
    assert breaker.record_failure(10.0) is BreakerState.CLOSED
    assert breaker.record_failure(20.0) is BreakerState.OPEN
    assert breaker.retry_at() == 30.0


def test_failures_outside_the_window_do_not_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3, window_s=30.0, min_failure_ratio=0.0)
    breaker.record_failure(0.0)
    breaker.record_failure(1.0)
    assert breaker.record_failure(40.0) is BreakerState.CLOSED
    assert breaker.record_failure(41.0) is BreakerState.CLOSED
    assert breaker.record_failure(42.0) is BreakerState.OPEN


def test_a_low_failure_rate_does_not_open() -> None:
    breaker = CircuitBreaker(failure_threshold=5, window_s=30.0, min_failure_ratio=0.5)
    for i in range(100):
        t = i * 0.1
        breaker.record_success(t)
        if i % 10 == 0:
            breaker.record_failure(t)
    assert breaker.state is BreakerState.CLOSED
    # 100 successes and 10 failures so far: 90 more failures reach the 50 % ratio.
    states = [breaker.record_failure(10.0 + i * 0.01) for i in range(90)]
    assert states[-2] is BreakerState.CLOSED
    assert states[-1] is BreakerState.OPEN


def test_open_rejects_until_reset_then_half_open_allows_one_probe() -> None:
    breaker = tripped()
    assert not breaker.allow(2.0)
    assert breaker.state_at(11.999) is BreakerState.OPEN
    assert breaker.state_at(12.0) is BreakerState.HALF_OPEN
    assert not breaker.allow(11.999)
    assert breaker.allow(12.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(12.1)


def test_probe_success_closes() -> None:
    breaker = tripped()
    assert breaker.allow(12.0)
    assert breaker.record_success(12.5) is BreakerState.CLOSED
    assert breaker.allow(12.6)
    # the old failures were forgotten: one new failure does not reopen
    assert breaker.record_failure(13.0) is BreakerState.CLOSED


def test_probe_failure_reopens_and_restarts_the_clock() -> None:
    breaker = tripped()
    assert breaker.allow(12.0)
    assert breaker.record_failure(13.0) is BreakerState.OPEN
    assert not breaker.allow(22.5)
    assert breaker.allow(23.0)


def test_several_probes_and_success_threshold() -> None:
    breaker = tripped(half_open_max_calls=2, success_threshold=2)
    assert breaker.allow(12.0)
    assert breaker.allow(12.0)
    assert not breaker.allow(12.0)
    assert breaker.record_success(12.1) is BreakerState.HALF_OPEN
    assert breaker.record_success(12.2) is BreakerState.CLOSED


def test_late_results_while_open_are_ignored() -> None:
    breaker = tripped()
    assert breaker.record_success(3.0) is BreakerState.OPEN
    assert breaker.record_failure(4.0) is BreakerState.OPEN
    assert breaker.retry_at() == 12.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"reset_s": 0.0},
        {"window_s": -1.0},
        {"min_failure_ratio": 1.5},
        {"buckets": 0},
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"breaker|ratio"):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_fallback_is_deterministic_in_persona_and_varies_by_chat() -> None:
    assert fallback_reply("Luna", 1) == fallback_reply("Luna", 1)
    assert fallback_reply("Luna", 1).startswith("Luna here")
    variants = {fallback_reply(None, chat_id) for chat_id in range(50)}
    assert len(variants) > 1
    assert fallback_reply("Luna", 7, attempt=1) != fallback_reply("Luna", 7, attempt=0)
    assert all(len(v) < 120 for v in variants)


def test_a_probe_that_never_reports_does_not_wedge_half_open() -> None:
    breaker = tripped()
    assert breaker.allow(12.0)  # this probe's task is cancelled and never reports
    assert not breaker.allow(21.999)
    assert breaker.allow(22.0)
    assert breaker.record_success(22.5) is BreakerState.CLOSED
