"""The LLM turn step: one ``StatefulBatchLogic`` per chat that never blocks the Bytewax worker.

Each chat is a small state machine, ``idle -> running -> idle``:

* ``on_batch`` queues the admitted messages and, when the chat is idle, starts a job on the
  background event loop (see :mod:`tgstream.dataflows.runner`); it returns at once.
* A turn still running after the runner's ``typing_after_s`` emits one "typing..." record; a
  reply that comes sooner needs none (and the sender is spared a Bot API call per message).
* While a job runs, ``notify_at`` asks Bytewax to poll again soon. The first poll comes when
  the job is expected to be done (from the runner's running latency estimate for its kind, so a
  command is polled after milliseconds, not after an LLM call's time); later polls
  come every 5 % of the time already waited, clamped to 10-250 ms, so a turn costs a handful of
  polls and the added latency stays within about 5 %.
* ``on_notify`` emits the finished job's records, takes its new context window, and starts
  the next job. Messages that arrived meanwhile become ONE merged turn; a command is always a
  job of its own, so order between commands and messages is kept.
* ``snapshot`` holds the context window, its rolling summary and the unanswered inputs (the
  running job's inputs first), so a resumed dataflow answers everything that was not yet emitted.
* ``on_eof`` drains: after EOF Bytewax calls nothing else, so it waits for the running jobs.
* An idle chat is discarded after ``idle_ttl_s``, the same TTL as its Redis mirror.

Per-chat keys (not shards of chats) because Bytewax snapshots only the keys touched in an
epoch: a shard would re-pickle every chat it holds whenever any of them speaks. The per-key
polling overhead that sharding avoids is kept small by the latency-aware poll schedule.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from bytewax.operators import StatefulBatchLogic

from tgstream.dataflows.items import Admitted, ContextTurn
from tgstream.schemas.events import ConversationEvent, Reply
from tgstream.schemas.pickling import fast_pickle

log = structlog.get_logger(__name__)

TurnOutput = Reply | ConversationEvent

MIN_POLL_S = 0.01
MAX_POLL_S = 0.25
POLL_FRACTION = 0.05
SAFETY_POLL_MIN_S = 1.0
SAFETY_POLL_FACTOR = 3.0
MAX_BURST = 20
MAX_PENDING = 200
REPLAY_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work for a chat: a single command, or a burst of messages merged into one turn."""

    chat_id: int
    items: tuple[Admitted, ...]
    history: tuple[ContextTurn, ...]
    summary: str = ""

    @property
    def is_command(self) -> bool:
        return self.items[0].command is not None


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a finished job emits and the chat's context window after it.

    ``summary`` is the chat's new rolling summary, or None to keep the current one (so a
    fallback or a command cannot lose it by accident; ``/reset`` passes ``""``).
    """

    outputs: tuple[TurnOutput, ...]
    history: tuple[ContextTurn, ...]
    summary: str | None = None


class JobRunner(Protocol):
    """Runs jobs off the worker thread. The real one lives in :mod:`tgstream.dataflows.runner`."""

    def start(self, job: Job) -> concurrent.futures.Future[JobResult]: ...

    def expected_latency_s(self, command: bool = False) -> float: ...

    def completions_announced(self) -> bool:
        """True once finished jobs are announced to the shards (doorbell.py): polls are then a safety net."""
        ...

    def recover(self, job: Job, error: BaseException) -> JobResult:
        """A result for a job whose future failed or timed out, so no input goes unanswered."""
        ...

    def typing_after_s(self) -> float | None:
        """How long a turn runs before its "typing..." record is emitted; None: never."""
        ...

    def typing(self, job: Job) -> TurnOutput | None:
        """The "typing..." record for a turn that is taking a while, if the runner makes one."""
        ...

    def answered(self, update_id: int) -> Reply | None:
        """The reply a previous run already emitted for this update (see replay_guard.py)."""
        ...

    def replayed(self, job: Job, reply: Reply) -> JobResult:
        """The result of a job that a previous run already answered with ``reply``."""
        ...


@fast_pickle
@dataclass(frozen=True, slots=True)
class TurnsSnapshot:
    """Recovery state of one chat; shares nothing mutable with the live logic."""

    chat_id: int
    history: tuple[ContextTurn, ...]
    pending: tuple[Admitted, ...]
    last_active: float
    summary: str = ""


def next_poll(started: float, now: float, expected_s: float) -> float:
    """When to look at a running job again.

    >>> next_poll(started=0.0, now=0.0, expected_s=0.3)
    0.27
    >>> round(next_poll(started=0.0, now=0.5, expected_s=0.3), 3)
    0.525
    >>> round(next_poll(started=0.0, now=60.0, expected_s=0.3), 3)
    60.25
    """
    first = started + max(MIN_POLL_S, 0.9 * expected_s)
    if now < first:
        return first
    return now + min(MAX_POLL_S, max(MIN_POLL_S, POLL_FRACTION * (now - started)))


def safety_poll(started: float, now: float, expected_s: float) -> float:
    """When to look at a running job whose end will be announced: late, in case it never is.

    >>> safety_poll(started=0.0, now=0.0, expected_s=0.3)
    1.0
    >>> safety_poll(started=0.0, now=2.0, expected_s=0.5)
    2.25
    """
    first = started + max(SAFETY_POLL_MIN_S, SAFETY_POLL_FACTOR * expected_s)
    return first if now < first else now + MAX_POLL_S


def take_job(pending: list[Admitted]) -> list[Admitted]:
    """Remove and return the next job's items: one command, or the run of messages before the next one.

    >>> from tgstream.steps.commands import Command
    >>> def m(i, cmd=None):
    ...     from tgstream.schemas.events import InboundMessage
    ...     msg = InboundMessage(update_id=i, update_kind="message", chat_id=1, chat_type="private",
    ...                          user_id=1, text=str(i), sent_at=0, received_at=0)
    ...     return Admitted(msg, gated_at=0, command=cmd)
    >>> queue = [m(1), m(2), m(3, Command("reset")), m(4)]
    >>> [a.message.update_id for a in take_job(queue)], [a.message.update_id for a in queue]
    ([1, 2], [3, 4])
    >>> [a.message.update_id for a in take_job(queue)]
    [3]
    """
    if pending[0].command is not None:
        return [pending.pop(0)]
    count = 1
    while count < len(pending) and count < MAX_BURST and pending[count].command is None:
        count += 1
    taken = pending[:count]
    del pending[:count]
    return taken


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class ChatTurns(StatefulBatchLogic[Admitted, TurnOutput, TurnsSnapshot]):
    """The turn state machine of one chat; see the module docstring."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        resume: TurnsSnapshot | None = None,
        idle_ttl_s: float = 3600.0,
        drain_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chat_id = resume.chat_id if resume else 0
        self._runner = runner
        self._idle_ttl_s = idle_ttl_s
        self._drain_timeout_s = drain_timeout_s
        self._clock = clock
        now = clock()
        self.history: tuple[ContextTurn, ...] = resume.history if resume else ()
        # getattr: snapshots written before the summary existed restore without one
        self.summary: str = getattr(resume, "summary", "") if resume else ""
        self.pending: list[Admitted] = list(resume.pending) if resume else []
        self.last_active = resume.last_active if resume else now
        self._job: Job | None = None
        self._future: concurrent.futures.Future[JobResult] | None = None
        self._started = 0.0
        self._typing_at: float | None = None
        self._poll_at: float | None = now if self.pending else None
        self.dropped = 0

    @property
    def running(self) -> bool:
        return self._job is not None

    def on_batch(self, values: list[Admitted]) -> tuple[Iterable[TurnOutput], bool]:
        self.last_active = self._clock()
        if values:
            self.chat_id = values[0].chat_id  # Bytewax gives the builder no key; the items carry it
        self.pending.extend(values)
        if len(self.pending) > MAX_PENDING:
            # Rate limits keep this from happening; if it does, the oldest queued inputs go.
            overflow = len(self.pending) - MAX_PENDING
            del self.pending[:overflow]
            self.dropped += overflow
            log.warning("turns.queue_overflow", dropped=overflow)
        return self._advance(), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[TurnOutput], bool]:
        outputs = self._advance()
        idle_for = self._clock() - self.last_active
        if not self.running and not self.pending and idle_for >= self._idle_ttl_s:
            return outputs, StatefulBatchLogic.DISCARD
        return outputs, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[TurnOutput], bool]:
        outputs: list[TurnOutput] = []
        while self.running or self.pending:
            if self._future is not None and self._job is not None:
                try:
                    self._future.result(timeout=self._drain_timeout_s)
                except concurrent.futures.TimeoutError as exc:
                    self._future.cancel()
                    outputs.extend(self._finish(self._runner.recover(self._job, exc)))
                    continue
                except BaseException:  # noqa: S110 - _advance turns it into a recovered result
                    pass
            outputs.extend(self._advance())
        return outputs, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return _utc(self.next_wake())

    def next_wake(self) -> float:
        """When this chat next needs a call: its next poll while busy, else its idle expiry."""
        if self.running or self.pending:
            return self._poll_at if self._poll_at is not None else self._clock()
        return self.last_active + self._idle_ttl_s

    def snapshot(self) -> TurnsSnapshot:
        in_flight = self._job.items if self._job is not None else ()
        return TurnsSnapshot(
            self.chat_id, self.history, (*in_flight, *self.pending), self.last_active, self.summary
        )

    def _advance(self) -> list[TurnOutput]:
        """Collect a finished job and start the next one; never blocks."""
        outputs: list[TurnOutput] = []
        while True:
            if self._future is not None and self._job is not None:
                if not self._future.done():
                    now = self._clock()
                    if self._typing_at is not None and now >= self._typing_at:
                        self._typing_at = None
                        typing = self._runner.typing(self._job)
                        if typing is not None:
                            outputs.append(typing)
                    expected = self._runner.expected_latency_s(command=self._job.is_command)
                    poll = safety_poll if self._runner.completions_announced() else next_poll
                    self._poll_at = poll(self._started, now, expected)
                    if self._typing_at is not None:
                        self._poll_at = min(self._poll_at, self._typing_at)
                    return outputs
                try:
                    result = self._future.result()
                except BaseException as exc:
                    log.error("turns.job_failed", error=repr(exc), command=self._job.is_command)
                    result = self._runner.recover(self._job, exc)
                outputs.extend(self._finish(result))
            if not self.pending:
                self._poll_at = None
                return outputs
            earlier = self._runner.answered(self.pending[0].message.update_id)
            if earlier is not None:
                group = earlier.update_ids
                head = tuple(item.message.update_id for item in self.pending[: len(group)])
                if head == group:
                    job = Job(self.chat_id, tuple(self.pending[: len(group)]), self.history, self.summary)
                    del self.pending[: len(group)]
                    outputs.extend(self._finish(self._runner.replayed(job, earlier)))
                    continue
                if group[: len(head)] == head:  # the rest of that burst is still being replayed
                    self._poll_at = self._clock() + REPLAY_WAIT_S
                    return outputs
            job = Job(self.chat_id, tuple(take_job(self.pending)), self.history, self.summary)
            self._job = job
            self._started = self._clock()
            self._future = self._runner.start(job)
            delay = None if job.is_command else self._runner.typing_after_s()
            self._typing_at = None if delay is None else self._started + delay

    def _finish(self, result: JobResult) -> tuple[TurnOutput, ...]:
        self.history = result.history
        if result.summary is not None:
            self.summary = result.summary
        self._job = None
        self._future = None
        self._typing_at = None
        return result.outputs
