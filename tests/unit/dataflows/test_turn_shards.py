"""ShardTurns: many chats under one Bytewax key, woken by a heap and snapshotted incrementally."""

from __future__ import annotations

import pickle

from bytewax.operators import StatefulBatchLogic
from test_turn_logic import Clock, ManualRunner, admitted

from tgstream.dataflows.doorbell import JobsDone
from tgstream.dataflows.items import Admitted
from tgstream.dataflows.turn_shards import ShardTurns, jobs_done, restore, shard_key
from tgstream.dataflows.turns import ChatTurns, TurnsSnapshot
from tgstream.schemas.events import Reply

TTL_S = 600.0


def said(chat_id: int, update_id: int) -> Admitted:
    return admitted(update_id, chat_id=chat_id)


class CountingChats:
    """Builds real ChatTurns and counts how often the shard asks each one to act."""

    def __init__(self, runner: ManualRunner, clock: Clock) -> None:
        self.runner = runner
        self.clock = clock
        self.notified: dict[int, int] = {}

    def __call__(self, resume: TurnsSnapshot | None) -> ChatTurns:
        counts = self.notified
        chat = ChatTurns(self.runner, resume=resume, idle_ttl_s=TTL_S, drain_timeout_s=1.0, clock=self.clock)
        original = chat.on_notify

        def on_notify():  # type: ignore[no-untyped-def]
            counts[chat.chat_id] = counts.get(chat.chat_id, 0) + 1
            return original()

        chat.on_notify = on_notify  # type: ignore[method-assign]
        return chat


def replies(outputs: object) -> list[int]:
    return [o.chat_id for o in outputs if isinstance(o, Reply)]  # type: ignore[attr-defined]


def test_a_wake_calls_only_the_chats_that_are_due() -> None:
    clock, runner = Clock(), ManualRunner()
    chats = CountingChats(runner, clock)
    shard = ShardTurns(chats, None, clock=clock)
    shard.on_batch([said(chat, chat) for chat in range(1, 101)])  # 100 chats, 100 jobs running
    for index in range(100):
        runner.answer(index)
    runner.jobs.clear()
    clock.now += 1.0
    out, _ = shard.on_notify()  # every chat answered: now all are idle until their TTL
    assert sorted(replies(out)) == list(range(1, 101))
    chats.notified.clear()

    shard.on_batch([said(7, 1007)])
    clock.now += 1.0
    runner.answer()
    out, discard = shard.on_notify()

    assert replies(out) == [7]
    assert chats.notified == {7: 1}, "idle chats must not be woken for another chat's turn"
    assert discard is StatefulBatchLogic.RETAIN
    wake = shard.notify_at()
    assert wake is not None
    assert wake.timestamp() == 1_000.0 + TTL_S, "the next wake is the first idle chats' expiry"


def test_jobs_done_collects_exactly_the_announced_chats_without_waiting_for_a_poll() -> None:
    clock, runner = Clock(), ManualRunner(announced=True)
    chats = CountingChats(runner, clock)
    shard = ShardTurns(chats, None, clock=clock)
    shard.on_batch([said(1, 1), said(2, 2), said(3, 3)])
    runner.answer(0)
    runner.answer(1)  # chats 1 and 2 finished; 3 still running
    clock.now += 0.01  # long before any poll is due
    assert shard.on_notify()[0] == []

    out, discard = shard.on_batch([JobsDone(shard_key(1), (1, 3)), JobsDone(shard_key(9), (9,))])

    assert replies(out) == [1], "only an announced chat whose job is done is collected"
    assert chats.notified == {1: 1, 3: 1}, "unknown chats (9) are ignored"
    assert discard is StatefulBatchLogic.RETAIN
    assert [chat for chat in (1, 2, 3) if shard.chats[chat].running] == [2, 3]
    assert [done.chat_ids for done in jobs_done([2])] == [(2,)]
    announced: list[Admitted | JobsDone] = [*jobs_done([2])]
    out, _ = shard.on_batch(announced)
    assert replies(out) == [2]


def test_idle_chats_are_discarded_at_their_ttl_and_the_shard_with_the_last() -> None:
    clock, runner = Clock(), ManualRunner()
    shard = ShardTurns(CountingChats(runner, clock), None, clock=clock)
    shard.on_batch([said(1, 1)])
    runner.answer()
    clock.now += 1.0
    shard.on_notify()
    clock.now += 100.0
    shard.on_batch([said(2, 2)])
    runner.answer()
    clock.now += 1.0
    shard.on_notify()

    wake = shard.notify_at()
    assert wake is not None
    assert wake.timestamp() == 1_000.0 + TTL_S
    clock.now = 1_000.0 + TTL_S + 1.0  # chat 1 expired, chat 2 (active at 1101) not yet
    _, discard = shard.on_notify()
    assert set(shard.chats) == {2}
    assert discard is StatefulBatchLogic.RETAIN
    wake = shard.notify_at()
    assert wake is not None
    assert wake.timestamp() == 1_101.0 + TTL_S
    clock.now += 200.0
    _, discard = shard.on_notify()
    assert shard.chats == {}
    assert discard is StatefulBatchLogic.DISCARD


def test_snapshot_pickles_a_chat_again_only_when_it_changed() -> None:
    clock, runner = Clock(), ManualRunner()
    shard = ShardTurns(CountingChats(runner, clock), None, clock=clock)
    shard.on_batch([said(1, 1), said(2, 2)])
    first = shard.snapshot()
    second = shard.snapshot()
    assert all(first[chat] is second[chat] for chat in (1, 2)), "unchanged chats must reuse their bytes"

    runner.answer(0)
    clock.now += 1.0
    shard.on_notify()
    third = shard.snapshot()
    changed = [chat for chat in (1, 2) if third[chat] is not second[chat]]
    assert changed == [1]
    assert len(restore(third[1]).history) == 1


def test_resumes_from_pickled_and_from_older_object_snapshots() -> None:
    clock, runner = Clock(), ManualRunner()
    shard = ShardTurns(CountingChats(runner, clock), None, clock=clock)
    shard.on_batch([said(1, 1), said(2, 2)])
    saved = pickle.loads(pickle.dumps(shard.snapshot()))
    old_style = {chat: restore(blob) for chat, blob in saved.items()}

    for resume in (saved, old_style):
        again = ManualRunner()
        resumed = ShardTurns(CountingChats(again, clock), resume, clock=clock)
        assert set(resumed.chats) == {1, 2}
        resumed.on_notify()  # the unanswered inputs are started again
        assert sorted(job.chat_id for job, _ in again.jobs) == [1, 2]


def test_fast_pickled_state_round_trips_exactly() -> None:
    from tgstream.dataflows.chat_state import GateSnapshot
    from tgstream.steps.rate_limit import RateState, WindowCount
    from tgstream.steps.spam import SpamEntry, SpamHistory

    gate = GateSnapshot(
        rates=((5, RateState((WindowCount(0, 3), WindowCount(60, 1)), last_seen=9.5, rejected_total=2)),),
        spam=SpamHistory((SpamEntry(5, 1.0, "hello"),)),
        spam_noticed_at=float("-inf"),
        last_seen=9.5,
    )
    assert pickle.loads(pickle.dumps(gate)) == gate
    snapshot = TurnsSnapshot(3, (), (said(3, 30),), 12.0, "a summary")
    assert pickle.loads(pickle.dumps(snapshot)) == snapshot
