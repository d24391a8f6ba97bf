"""ChatTurns, the per-chat LLM turn state machine, driven with futures the test resolves by hand.

No threads and no sleeps: the runner hands out plain futures and the clock is injected, so
order, merging, the one-job-in-flight rule, snapshots and the EOF drain are checked exactly.
"""

from __future__ import annotations

import concurrent.futures
import pickle
from datetime import UTC, datetime

import pytest
from bytewax.operators import StatefulBatchLogic

from tgstream.dataflows.items import Admitted, ContextTurn
from tgstream.dataflows.turns import (
    MAX_BURST,
    ChatTurns,
    Job,
    JobResult,
    TurnOutput,
    TurnsSnapshot,
    next_poll,
    safety_poll,
)
from tgstream.schemas.events import InboundMessage, Reply
from tgstream.steps.commands import Command

CHAT = 4242
TURN_S = 0.3
COMMAND_S = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class ManualRunner:
    """Records every started job; the test completes them by answering with the merged text."""

    def __init__(self, typing_after_s: float | None = None, announced: bool = False) -> None:
        self.typing_delay = typing_after_s
        self.announced = announced
        self.jobs: list[tuple[Job, concurrent.futures.Future[JobResult]]] = []
        self.recovered: list[Job] = []
        self.earlier: dict[int, Reply] = {}
        self.replays: list[Job] = []

    def start(self, job: Job) -> concurrent.futures.Future[JobResult]:
        future: concurrent.futures.Future[JobResult] = concurrent.futures.Future()
        self.jobs.append((job, future))
        return future

    def expected_latency_s(self, command: bool = False) -> float:
        return COMMAND_S if command else TURN_S

    def completions_announced(self) -> bool:
        return self.announced

    def answer(self, index: int = -1) -> None:
        job, future = self.jobs[index]
        future.set_result(echo_result(job))

    def recover(self, job: Job, error: BaseException) -> JobResult:
        self.recovered.append(job)
        return JobResult((reply_for(job, "fallback"),), job.history)

    def typing_after_s(self) -> float | None:
        return self.typing_delay

    def typing(self, job: Job) -> TurnOutput | None:
        return reply_for(job, "...typing")

    def answered(self, update_id: int) -> Reply | None:
        return self.earlier.get(update_id)

    def replayed(self, job: Job, reply: Reply) -> JobResult:
        self.replays.append(job)
        return JobResult((reply,), job.history)


def reply_for(job: Job, text: str) -> Reply:
    update_ids = tuple(item.message.update_id for item in job.items)
    return Reply(
        idempotency_key=f"{job.chat_id}:{update_ids}",
        chat_id=job.chat_id,
        text=text,
        update_ids=update_ids,
        received_at=0.0,
        emitted_at=0.0,
    )


def echo_result(job: Job) -> JobResult:
    user = " / ".join(item.message.text for item in job.items)
    turn = ContextTurn(user=user, assistant=f"re: {user}", at=0.0)
    return JobResult((reply_for(job, turn.assistant),), (*job.history, turn))


def admitted(
    update_id: int, text: str | None = None, command: Command | None = None, *, chat_id: int = CHAT
) -> Admitted:
    message = InboundMessage(
        update_id=update_id,
        update_kind="message",
        chat_id=chat_id,
        chat_type="private",
        user_id=chat_id,
        text=text if text is not None else f"m{update_id}",
        sent_at=0.0,
        received_at=0.0,
    )
    return Admitted(message, gated_at=0.0, command=command)


def texts(outputs: object) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Reply)]  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runner() -> ManualRunner:
    return ManualRunner()


def make(runner: ManualRunner, clock: Clock, resume: TurnsSnapshot | None = None) -> ChatTurns:
    return ChatTurns(runner, resume=resume, idle_ttl_s=600.0, drain_timeout_s=1.0, clock=clock)


def test_one_job_in_flight_and_burst_merged_into_the_next_turn(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    out, keep = logic.on_batch([admitted(1, "hi")])
    assert list(out) == []
    assert keep is StatefulBatchLogic.RETAIN
    assert len(runner.jobs) == 1

    logic.on_batch([admitted(2, "are you")])
    logic.on_batch([admitted(3, "there?")])
    assert len(runner.jobs) == 1, "a second job must wait for the first"

    runner.answer(0)
    out, _ = logic.on_notify()
    assert texts(out) == ["re: hi"]
    assert len(runner.jobs) == 2
    second_job = runner.jobs[1][0]
    assert [i.message.update_id for i in second_job.items] == [2, 3]
    assert second_job.history == (ContextTurn("hi", "re: hi", 0.0),)

    runner.answer(1)
    out, _ = logic.on_notify()
    assert texts(out) == ["re: are you / there?"]
    assert [t.user for t in logic.history] == ["hi", "are you / there?"]
    assert not logic.running


def test_commands_are_jobs_of_their_own_in_order(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1), admitted(2, "/persona luna", Command("persona", "luna")), admitted(3)])
    replies: list[str] = []
    for _ in range(3):
        runner.answer()
        out, _ = logic.on_notify()
        replies.extend(texts(out))
    assert replies == ["re: m1", "re: /persona luna", "re: m3"]
    assert [[i.message.update_id for i in job.items] for job, _ in runner.jobs] == [[1], [2], [3]]


def test_a_burst_is_capped(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(0)])
    logic.on_batch([admitted(i) for i in range(1, MAX_BURST + 6)])
    runner.answer(0)
    logic.on_notify()
    assert len(runner.jobs[1][0].items) == MAX_BURST


def test_polls_while_running_and_sleeps_until_idle_expiry(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    assert logic.notify_at() == datetime.fromtimestamp(clock.now + 600.0, tz=UTC)
    logic.on_batch([admitted(1)])
    assert logic.notify_at() == datetime.fromtimestamp(next_poll(clock.now, clock.now, TURN_S), tz=UTC)
    clock.now += 0.5
    logic.on_notify()
    assert logic.notify_at() == datetime.fromtimestamp(next_poll(clock.now - 0.5, clock.now, TURN_S), tz=UTC)
    runner.answer()
    logic.on_notify()
    assert logic.notify_at() == datetime.fromtimestamp(logic.last_active + 600.0, tz=UTC)


def test_announced_completions_leave_polls_as_a_late_safety_net(clock: Clock) -> None:
    runner = ManualRunner(announced=True)
    logic = make(runner, clock)
    logic.on_batch([admitted(1)])
    wake = logic.notify_at()
    assert wake == datetime.fromtimestamp(safety_poll(clock.now, clock.now, TURN_S), tz=UTC)
    assert wake is not None
    assert wake.timestamp() - clock.now >= 1.0 > next_poll(clock.now, clock.now, TURN_S) - clock.now


def test_a_command_is_polled_on_the_command_estimate_not_the_llm_one(
    runner: ManualRunner, clock: Clock
) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1, "/start", Command("start", ""))])
    logic.on_notify()
    assert logic.notify_at() == datetime.fromtimestamp(next_poll(clock.now, clock.now, COMMAND_S), tz=UTC)
    assert next_poll(clock.now, clock.now, COMMAND_S) < next_poll(clock.now, clock.now, TURN_S)
    runner.answer()
    logic.on_batch([admitted(2)])
    assert logic.notify_at() == datetime.fromtimestamp(next_poll(clock.now, clock.now, TURN_S), tz=UTC)


def test_idle_chat_is_discarded_after_ttl_only(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1)])
    runner.answer()
    _, keep = logic.on_notify()
    assert keep is StatefulBatchLogic.RETAIN
    clock.now += 600.0
    _, keep = logic.on_notify()
    assert keep is StatefulBatchLogic.DISCARD


def test_snapshot_round_trip_replays_the_unanswered_inputs(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1)])
    runner.answer()
    logic.on_notify()
    logic.on_batch([admitted(2)])  # in flight, never answered before the "crash"
    logic.on_batch([admitted(3)])  # queued
    snapshot = pickle.loads(pickle.dumps(logic.snapshot()))
    assert [a.message.update_id for a in snapshot.pending] == [2, 3]

    logic.on_batch([admitted(4)])
    assert [a.message.update_id for a in snapshot.pending] == [2, 3], "snapshots share nothing live"

    fresh_runner = ManualRunner()
    resumed = make(fresh_runner, clock, resume=snapshot)
    assert resumed.notify_at() == datetime.fromtimestamp(clock.now, tz=UTC), "resume wakes at once"
    resumed.on_notify()
    assert [i.message.update_id for i in fresh_runner.jobs[0][0].items] == [2, 3]
    assert fresh_runner.jobs[0][0].history == logic.history[:1]


def test_eof_drains_everything_queued(runner: ManualRunner, clock: Clock) -> None:
    class AnsweringRunner(ManualRunner):
        def start(self, job: Job) -> concurrent.futures.Future[JobResult]:
            future = super().start(job)
            if job.items[0].message.update_id > 1:
                future.set_result(echo_result(job))
            return future

    answering = AnsweringRunner()
    logic = make(answering, clock)
    logic.on_batch([admitted(1)])
    logic.on_batch([admitted(2), admitted(3, "/help", Command("help"))])
    answering.answer(0)
    out, keep = logic.on_eof()
    assert texts(out) == ["re: m1", "re: m2", "re: /help"]
    assert keep is StatefulBatchLogic.RETAIN
    assert not logic.running
    assert not logic.pending


def test_eof_answers_a_stuck_job_with_the_recovery_result(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1)])
    out, _ = logic.on_eof()
    assert texts(out) == ["fallback"]
    assert runner.recovered == [runner.jobs[0][0]]


def test_failed_job_is_answered_and_the_queue_moves_on(runner: ManualRunner, clock: Clock) -> None:
    logic = make(runner, clock)
    logic.on_batch([admitted(1)])
    logic.on_batch([admitted(2)])
    runner.jobs[0][1].set_exception(RuntimeError("boom"))
    out, _ = logic.on_notify()
    assert texts(out) == ["fallback"]
    assert len(runner.jobs) == 2


def test_a_job_answered_before_a_crash_is_replayed_with_the_same_grouping(
    runner: ManualRunner, clock: Clock
) -> None:
    earlier = reply_for(Job(CHAT, (admitted(2), admitted(3)), ()), "already sent")
    runner.earlier = {2: earlier, 3: earlier}
    logic = make(runner, clock, resume=TurnsSnapshot(CHAT, (), (admitted(1),), clock.now))
    logic.on_notify()
    logic.on_batch([admitted(2)])  # the replay of the burst has only reached its first message
    runner.answer(0)
    out, _ = logic.on_notify()
    assert texts(out) == ["re: m1"]
    assert len(runner.jobs) == 1, "no new job while the rest of an answered burst is still coming"
    assert logic.notify_at() is not None

    out, _ = logic.on_batch([admitted(3), admitted(4)])
    assert texts(out) == ["already sent"], "the earlier reply is re-emitted, same key"
    assert [[i.message.update_id for i in job.items] for job in runner.replays] == [[2, 3]]
    assert [[i.message.update_id for i in job.items] for job, _ in runner.jobs] == [[1], [4]]


def test_typing_only_for_a_turn_that_outlasts_the_delay(clock: Clock) -> None:
    runner = ManualRunner(typing_after_s=1.0)
    logic = make(runner, clock)
    out, _ = logic.on_batch([admitted(1)])
    assert texts(out) == []
    # The poll schedule wakes the chat when the typing record is due, not later.
    assert logic.next_wake() <= clock.now + 1.0
    clock.now += 0.5
    assert texts(logic.on_notify()[0]) == []
    clock.now += 0.6
    assert texts(logic.on_notify()[0]) == ["...typing"]
    clock.now += 0.5
    assert texts(logic.on_notify()[0]) == [], "one typing record per turn"
    runner.answer()
    assert texts(logic.on_notify()[0]) == ["re: m1"]

    logic.on_batch([admitted(2)])
    clock.now += 0.2
    runner.answer()
    assert texts(logic.on_notify()[0]) == ["re: m2"], "a fast turn gets no typing record"
    clock.now += 5
    assert texts(logic.on_notify()[0]) == []


def test_typing_at_once_with_no_delay_but_never_for_commands(clock: Clock) -> None:
    runner = ManualRunner(typing_after_s=0.0)
    logic = make(runner, clock)
    assert texts(logic.on_batch([admitted(1)])[0]) == ["...typing"]
    runner.answer()
    logic.on_notify()
    out, _ = logic.on_batch([admitted(2, "/start", Command("start", ""))])
    clock.now += 3
    assert texts(out) + texts(logic.on_notify()[0]) == []
