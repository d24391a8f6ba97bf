"""Only exchanges worth remembering reach the memory writer; the decision is counted."""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from tgstream.config import Settings
from tgstream.dataflows.turn_writers import BackgroundWriters
from tgstream.steps.importance import importance
from tgstream.steps.memory_gate import MemoryGate

SMALL_TALK = ("hi", "lol ok", "ok thanks", "how are you?", "tell me a joke", "haha that is funny", "   ")
PERSONAL = (
    "my dog is called Rex",
    "Remember this: my cat is called Whiskers",
    "I live in Berlin",
    "I work as a nurse",
    "my favourite colour is green",
    "I'm nervous about my exam tomorrow",
)


def candidates(decision: str) -> float:
    value = REGISTRY.get_sample_value("tgstream_memory_candidates_total", {"decision": decision})
    return value or 0.0


@pytest.fixture
def gate(settings: Settings) -> MemoryGate:
    return MemoryGate(settings.memory_min_importance)


@pytest.mark.parametrize("text", SMALL_TALK)
def test_small_talk_is_not_stored(gate: MemoryGate, text: str) -> None:
    assert gate.importance(text, "sure!") is None


@pytest.mark.parametrize("text", PERSONAL)
def test_personal_facts_are_stored_with_their_importance(gate: MemoryGate, text: str) -> None:
    assert gate.importance(text, "got it") == importance(text, "got it")


def test_the_threshold_is_inclusive_and_validated() -> None:
    score = importance("my dog is called Rex", "")
    assert MemoryGate(score).importance("my dog is called Rex", "") == score
    assert MemoryGate(min(1.0, score + 0.001)).importance("my dog is called Rex", "") is None
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        MemoryGate(1.5)


def test_background_writers_queue_only_what_the_gate_keeps(gate: MemoryGate) -> None:
    unused = cast(Any, None)  # remember() only queues; the stores are used by the drain task
    writers = BackgroundWriters(unused, unused, unused, ttl_s=60, gate=gate)
    stored, skipped = candidates("stored"), candidates("skipped")
    writers.remember(1, 1, "hi", "hello!")
    writers.remember(1, 1, "lol ok", "haha")
    writers.remember(1, 1, "my dog is called Rex", "what a good name")
    assert writers.memory_writer.pending() == 1
    assert candidates("stored") - stored == 1
    assert candidates("skipped") - skipped == 2
