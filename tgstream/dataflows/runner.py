"""The bridge between the Bytewax thread and the event loop: starts jobs, tracks them, answers failures.

:class:`TurnRunner` is what :class:`~tgstream.dataflows.turns.ChatTurns` talks to. It submits
each job's coroutine to the process's background loop and hands back a future to poll. It also
keeps the two numbers the rest of the flow steers by:

* the running latency estimates (EWMAs of job durations, one for LLM turns and one for
  commands), which set when a chat first polls: a command is done in milliseconds and must not
  wait for a poll timed for an LLM call;
* the backlog (jobs not finished), which pauses the Kafka source above its high-water mark.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from tgstream.dataflows import metrics
from tgstream.dataflows.doorbell import Doorbell
from tgstream.dataflows.event_loop import BackgroundLoop
from tgstream.dataflows.items import ContextTurn
from tgstream.dataflows.pipeline import slide_window
from tgstream.dataflows.records import Records
from tgstream.dataflows.replay_guard import EMPTY_INDEX, AnsweredIndex
from tgstream.dataflows.turns import Job, JobResult, TurnOutput
from tgstream.observability.logging import correlated
from tgstream.schemas.events import Reply
from tgstream.steps.breaker import fallback_reply
from tgstream.steps.burst import merge_burst
from tgstream.steps.commands import interpret

log = structlog.get_logger(__name__)

JobFn = Callable[[Job], Awaitable[JobResult]]

EWMA_WEIGHT = 0.1
INITIAL_COMMAND_LATENCY_S = 0.02


class TurnRunner:
    """Runs jobs on ``loop`` with ``run_turn``/``run_command``; thread-safe for several workers."""

    def __init__(
        self,
        loop: BackgroundLoop,
        *,
        run_turn: JobFn,
        run_command: JobFn,
        records: Records,
        high_water: int,
        typing_after_s: float | None = 1.0,
        initial_latency_s: float = 0.3,
        initial_command_latency_s: float = INITIAL_COMMAND_LATENCY_S,
        answered: AnsweredIndex = EMPTY_INDEX,
        context_turns: int = 12,
    ) -> None:
        self._loop = loop
        self.doorbell = Doorbell()
        self._run_turn = run_turn
        self._run_command = run_command
        self._records = records
        self._high_water = high_water
        self._typing_after_s = typing_after_s
        self._lock = threading.Lock()
        self._backlog = 0
        self._latency_s = initial_latency_s
        self._command_latency_s = initial_command_latency_s
        self._answered = answered
        self._context_turns = context_turns

    def start(self, job: Job) -> concurrent.futures.Future[JobResult]:
        fn = self._run_command if job.is_command else self._run_turn
        started = time.perf_counter()
        with self._lock:
            self._backlog += 1
        metrics.JOBS_IN_FLIGHT.inc()
        future = self._loop.submit(_awaited(fn, job))

        def done(_: concurrent.futures.Future[JobResult]) -> None:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._backlog -= 1
                if job.is_command:
                    self._command_latency_s += EWMA_WEIGHT * (elapsed - self._command_latency_s)
                else:
                    self._latency_s += EWMA_WEIGHT * (elapsed - self._latency_s)
            metrics.JOBS_IN_FLIGHT.dec()
            self.doorbell.ring(job.chat_id)

        future.add_done_callback(done)
        return future

    def expected_latency_s(self, command: bool = False) -> float:
        return self._command_latency_s if command else self._latency_s

    def completions_announced(self) -> bool:
        return self.doorbell.answered

    def backlog(self) -> int:
        return self._backlog

    def saturated(self) -> bool:
        """True while the Kafka source should stop taking new messages."""
        saturated = self._backlog >= self._high_water
        if saturated:
            metrics.SOURCE_PAUSED.inc()
        return saturated

    def recover(self, job: Job, error: BaseException) -> JobResult:
        """A job crashed or hung: answer with the fallback so the user is never left hanging."""
        messages = [item.message for item in job.items]
        reply = self._records.reply(messages, fallback_reply(None, job.chat_id), kind="fallback")
        event = self._records.event(
            "llm_error",
            messages,
            processed_at=min(item.gated_at for item in job.items),
            reply=reply,
            degraded=(f"job:{type(error).__name__}",),
        )
        metrics.LLM_ERRORS.labels("job_failed").inc()
        return JobResult((reply, event), job.history)

    def answered(self, update_id: int) -> Reply | None:
        return self._answered.get(update_id)

    def replayed(self, job: Job, reply: Reply) -> JobResult:
        """Re-emit a reply a previous run already sent (same key) and rebuild the context it left."""
        messages = [item.message for item in job.items]
        event = self._records.event(
            "command" if reply.kind == "command" else "reply_out" if reply.kind == "reply" else "llm_error",
            messages,
            processed_at=min(item.gated_at for item in job.items),
            reply=reply,
            degraded=("replayed",),
        )
        metrics.REPLAYED.inc()
        history = job.history
        summary: str | None = None
        command = job.items[0].command
        if reply.kind == "reply":
            merged = merge_burst(messages)
            turn = ContextTurn(merged.text, reply.text, reply.emitted_at, merged.user_ids)
            history, summary = slide_window(history, job.summary, turn, self._context_turns)
        elif command is not None and interpret(command).kind in ("reset", "forget"):
            history, summary = (), ""
        return JobResult((reply, event), history, summary)

    def typing_after_s(self) -> float | None:
        return self._typing_after_s

    def typing(self, job: Job) -> TurnOutput | None:
        if self._typing_after_s is None:
            return None
        return self._records.reply([item.message for item in job.items], "", kind="typing")


async def _awaited(fn: JobFn, job: Job) -> JobResult:
    """Run ``fn`` with the job's update ids bound, so every line it logs can be traced to them."""
    with correlated([item.message.update_id for item in job.items], chat_id=job.chat_id):
        return await fn(job)


@dataclass
class ProcessServices:
    """The process's background loop and the runner that uses it; :meth:`close` releases both."""

    loop: BackgroundLoop
    runner: TurnRunner
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close every resource on the loop, then stop it; a second call does nothing."""
        if not self.loop.running:
            return
        for closer in reversed(self.closers):
            try:
                self.loop.call(closer, timeout=timeout_s)
            except Exception as exc:
                log.warning("services.close_failed", error=repr(exc))
        self.loop.stop()
