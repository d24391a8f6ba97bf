from __future__ import annotations

import statistics

import pytest
from pydantic import ValidationError

from tgstream.doubles.stub_behaviour import BehaviourConfig, ControlRequest, StubBehaviour


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fail_for_a_window_then_recover() -> None:
    clock = FakeClock()
    behaviour = StubBehaviour(BehaviourConfig(), seed=1, clock=clock)

    behaviour.apply(ControlRequest(fail_for_s=10, failure_status=503))

    assert [behaviour.chat_failure() for _ in range(3)] == [503, 503, 503]
    clock.now += 10.001
    assert [behaviour.chat_failure() for _ in range(3)] == [None, None, None]


def test_fail_exactly_the_next_n_calls() -> None:
    behaviour = StubBehaviour(BehaviourConfig(), seed=1, clock=FakeClock())

    behaviour.apply(ControlRequest(fail_next=2))

    assert [behaviour.chat_failure() for _ in range(4)] == [500, 500, None, None]


def test_failure_rate_is_respected_and_repeatable_with_a_seed() -> None:
    config = BehaviourConfig(failure_rate=0.3)
    behaviours = [StubBehaviour(config, seed=7), StubBehaviour(config, seed=7)]
    runs = [[behaviour.chat_failure() for _ in range(5000)] for behaviour in behaviours]

    assert runs[0] == runs[1]
    share = sum(1 for status in runs[0] if status is not None) / len(runs[0])
    assert 0.27 < share < 0.33


def test_lognormal_latency_has_the_configured_median_and_tail() -> None:
    behaviour = StubBehaviour(BehaviourConfig(latency_ms=200, latency_dist="lognormal", p99_ms=2000), seed=3)

    samples = sorted(behaviour.latency_s() for _ in range(20000))

    assert statistics.median(samples) == pytest.approx(0.2, rel=0.05)
    assert samples[int(len(samples) * 0.99)] == pytest.approx(2.0, rel=0.15)


def test_fixed_latency_is_exact() -> None:
    assert StubBehaviour(BehaviourConfig(latency_ms=250)).latency_s() == 0.25


def test_invalid_change_leaves_settings_untouched() -> None:
    behaviour = StubBehaviour(BehaviourConfig(latency_ms=100))

    with pytest.raises(ValidationError):
        behaviour.apply(ControlRequest(latency_dist="lognormal"))

    assert behaviour.config.latency_dist == "fixed"
    assert behaviour.config.latency_ms == 100


def test_reset_returns_to_start_up_settings_and_clears_scenarios() -> None:
    behaviour = StubBehaviour(BehaviourConfig(latency_ms=100), clock=FakeClock())
    behaviour.apply(ControlRequest(latency_ms=5, failure_rate=1.0, fail_for_s=60, fail_next=3))

    behaviour.apply(ControlRequest(reset=True))

    assert behaviour.config == BehaviourConfig(latency_ms=100)
    assert behaviour.chat_failure() is None


def test_unknown_control_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        ControlRequest.model_validate({"failure_rat": 0.5})
