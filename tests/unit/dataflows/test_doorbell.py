"""Finished jobs reach the turn step through the source: the runner rings, a partition delivers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from pydantic import SecretStr

from tgstream.dataflows import kafka_io
from tgstream.dataflows.doorbell import Doorbell, JobsDone
from tgstream.dataflows.event_loop import BackgroundLoop
from tgstream.dataflows.items import Admitted
from tgstream.dataflows.kafka_io import IDLE_POLL, Announcements, _PolitePartition
from tgstream.dataflows.records import Records
from tgstream.dataflows.runner import TurnRunner
from tgstream.dataflows.turn_shards import jobs_done, shard_key
from tgstream.dataflows.turns import Job, JobResult
from tgstream.schemas.events import InboundMessage


class FakeInbound:
    """The Kafka side of a partition: hands out whatever the test queued."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def next_batch(self) -> list[object]:
        out, self.records = self.records, []
        return out

    def buffered(self) -> bool:
        return bool(self.records)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        pass


def partition(
    bell: Doorbell, *, paused: bool = False, running: bool = True
) -> tuple[_PolitePartition, FakeInbound]:
    inner = FakeInbound()
    announcements = Announcements(take=lambda: jobs_done(bell.drain()), idle=lambda: not running)
    return _PolitePartition(inner, lambda: paused, 3600.0, announcements), inner  # type: ignore[arg-type]


NOW = 1_000.001
"""The partition's clock in these tests (see ``frozen``): 4 ms before a 5 ms step, 49 before a 50 ms one."""


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grid wakes depend on the moment; a fixed one keeps them exact on a loaded CI machine."""
    monkeypatch.setattr(kafka_io.time, "time", lambda: NOW)


def wait_s(wake: datetime | None) -> float:
    assert wake is not None
    return round(wake.timestamp() - NOW, 6)


def test_a_partition_hands_on_finished_jobs_grouped_by_shard_on_its_poll_grid(frozen: None) -> None:
    bell = Doorbell()
    part, inner = partition(bell)
    assert part.next_batch() == []
    assert 0 < wait_s(part.next_awake()) <= IDLE_POLL.total_seconds()

    bell.ring(11)
    bell.ring(12)
    assert part.next_awake() is not None, "a finished job waits for the grid, it does not force a poll"
    announced = part.next_batch()
    assert all(isinstance(item, JobsDone) for item in announced)
    assert sorted(chat for done in announced for chat in done.chat_ids) == [11, 12]
    assert all(done.shard == shard_key(done.chat_ids[0]) for done in announced)
    assert 0 < wait_s(part.next_awake()) <= IDLE_POLL.total_seconds(), "announcements alone: back to the grid"

    bell.ring(13)
    inner.records.append("record")
    batch = part.next_batch()
    assert batch == [JobsDone(shard_key(13), (13,)), "record"]
    assert part.next_awake() is None, "records may have more behind them: poll again at once"
    assert part.next_batch() == [], "each finished job is announced once"


def test_a_paused_partition_still_announces_and_rechecks_soon_while_jobs_run(frozen: None) -> None:
    bell = Doorbell()
    part, inner = partition(bell, paused=True, running=True)
    inner.records.append("record")
    bell.ring(5)

    assert part.next_batch() == [JobsDone(shard_key(5), (5,))], "paused: no records, but completions"
    assert wait_s(part.next_awake()) == 0.004, "held records must not spin it; jobs run: the 5 ms grid"

    quiet, _ = partition(Doorbell(), paused=True, running=False)
    quiet.next_batch()
    assert wait_s(quiet.next_awake()) == 0.049, "nothing running: the 50 ms pause re-check"


@pytest.fixture
def loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop("test-doorbell").start()
    yield loop
    loop.stop()


def test_the_runner_rings_when_a_job_finishes_and_reports_whether_anyone_listens(
    loop: BackgroundLoop,
) -> None:
    async def run(job: Job) -> JobResult:
        return JobResult((), job.history)

    records = Records(SecretStr("salt"))
    runner = TurnRunner(loop, run_turn=run, run_command=run, records=records, high_water=10)
    message = InboundMessage(
        update_id=1, update_kind="message", chat_id=77, chat_type="private", user_id=1, text="hi",
        sent_at=0, received_at=0,
    )  # fmt: skip
    assert not runner.completions_announced()
    runner.start(Job(77, (Admitted(message, gated_at=0),), (), "")).result(timeout=5)
    rang: list[int] = []
    deadline = time.monotonic() + 5
    while not rang and time.monotonic() < deadline:
        rang = runner.doorbell.drain()
        time.sleep(0.001)

    assert rang == [77]
    assert runner.completions_announced(), "draining the bell is what switches polls to the safety net"
