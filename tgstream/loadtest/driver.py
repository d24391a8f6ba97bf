"""The load generator: posts simulated users' updates to the gateway and collects the replies.

Three tasks share one event loop:

* the *sender* walks the arrival schedule, gives each arrival to a free user (see `schedule`)
  and POSTs the update to the gateway's webhook like Telegram would, retrying 5xx and connection
  errors with backoff (Telegram retries those; a 4xx is final);
* the *collector* polls the fake Telegram server's record of what the bot sent and matches each
  bot message to the user message it answers (see `tracker`);
* the *ticker* releases users whose reply is overdue, samples CPU at phase boundaries and feeds
  the live display.

Latency is measured on ``time.monotonic()``, which on Linux is one system-wide clock: the fake
Telegram server stamps each record with it too, so "POST started" and "reply received" are
compared on the same clock without any wall-clock skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from tgstream.doubles.telegram_api.client import ControlError, FakeTelegramControl
from tgstream.loadtest.collector import Collector
from tgstream.loadtest.cpu import CpuMeter, CpuSample, CpuUsage, usage_between
from tgstream.loadtest.display import Snapshot
from tgstream.loadtest.results import PhaseCounters
from tgstream.loadtest.scenario import Population, RunIds, SimUser, UpdateFactory
from tgstream.loadtest.schedule import ArrivalProcess, Phase, ThinkTime, UserPool, arrivals
from tgstream.loadtest.stats import LatencyLog
from tgstream.loadtest.tracker import Pending, ReplyTracker
from tgstream.loadtest.webhook_client import FAILED, GatewayUnreachableError, WebhookPoster

TICK_S = 0.25
MAX_LAG_S = 1.0
"""An arrival that cannot be sent within this long (every user busy, every request slot taken) is
skipped and counted: the offered load drops visibly instead of the plan stretching past its end."""


class DriverError(RuntimeError):
    """The system under test could not be reached at all; the message says which part."""


@dataclass(frozen=True)
class DriverConfig:
    webhook_url: str
    secret: str = field(repr=False)
    telegram_url: str
    phases: tuple[Phase, ...]
    max_users: int
    seed: int = 1
    process: ArrivalProcess = "poisson"
    think: ThinkTime = field(default_factory=ThinkTime)
    concurrency: int = 256
    reply_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    poll_interval_s: float = 0.05
    sample_chats: int = 3
    max_turns: int | None = None
    """End every session after this many messages (default: when its script ends)."""
    keep_answers: bool = False
    """Keep every answered message with its reply time (``Driver.answers``), for stage breakdowns."""


@dataclass
class PhaseWindow:
    """Where the run is on the phase plan and what each phase's window counted."""

    starts: list[float]
    cpu: list[CpuUsage | None]

    def index_at(self, rel: float) -> int:
        index = 0
        for i, start in enumerate(self.starts):
            if rel >= start:
                index = i
        return index


class Driver:
    """One run: ``await Driver(config, ids=...).run()`` then read ``log``, ``tracker`` and ``counters``."""

    def __init__(
        self,
        config: DriverConfig,
        *,
        ids: RunIds,
        cpu: CpuMeter | None = None,
        on_progress: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.config = config
        self.log = LatencyLog(len(config.phases))
        self.tracker = ReplyTracker()
        self.collector = Collector(self.tracker, clock_origin=lambda: self.t0, on_answer=self.answered)
        self.pool = UserPool(max_users=config.max_users, think=config.think, rng=random.Random(config.seed))
        self._population = Population(seed=config.seed, ids=ids)
        self._factory = UpdateFactory(ids)
        self._users: dict[int, tuple[SimUser, int]] = {}
        self._cpu = cpu
        self._on_progress = on_progress
        self._slots = asyncio.Semaphore(config.concurrency)
        self._posts: set[asyncio.Task[None]] = set()
        self._user_freed = asyncio.Event()
        self.t0 = 0.0
        self.sending_done = False
        starts, at = [], 0.0
        for phase in config.phases:
            starts.append(at)
            at += phase.duration_s
        self.windows = PhaseWindow(starts, [None] * len(config.phases))
        self.end_of_plan = at
        self.counters = [
            PhaseCounters(start_at=s, end_at=s + p.duration_s)
            for s, p in zip(starts, config.phases, strict=True)
        ]
        self.conversations: dict[int, list[tuple[str, str, float]]] = {}
        self.answers: list[tuple[Pending, float]] = []
        self.t0_wall = 0.0

    def now(self) -> float:
        """Seconds since the run started, on the monotonic clock."""
        return time.monotonic() - self.t0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.config.concurrency, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=15)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            FakeTelegramControl(self.config.telegram_url) as control,
        ):
            poster = WebhookPoster(
                session, self.config.webhook_url, self.config.secret, stopped=lambda: self.sending_done
            )
            await self._check_reachable(poster, control)
            self.t0, self.t0_wall = time.monotonic(), time.time()
            ticker = asyncio.create_task(self._tick(), name="loadtest-ticker")
            collector = asyncio.create_task(
                self.collector.run(control, self.config.poll_interval_s), name="loadtest-collector"
            )
            try:
                await self._send_all(poster)
                await self._drain()
            finally:
                self.sending_done = True
                for task in (ticker, collector):
                    task.cancel()
                await asyncio.gather(ticker, collector, *self._posts, return_exceptions=True)
            await self.collector.poll_once(control)

    async def _check_reachable(self, poster: WebhookPoster, control: FakeTelegramControl) -> None:
        telegram = self.config.telegram_url
        try:
            await control.stats()
        except (aiohttp.ClientError, ControlError, OSError) as exc:
            raise DriverError(f"fake Telegram server not reachable at {telegram}: {exc}") from exc
        try:
            await poster.check()
        except GatewayUnreachableError as exc:
            raise DriverError(str(exc)) from exc

    async def _send_all(self, poster: WebhookPoster) -> None:
        rng = random.Random(self.config.seed + 1)
        for arrival in arrivals(self.config.phases, process=self.config.process, rng=rng):
            delay = arrival.at - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            counters = self.counters[arrival.phase]
            give_up_at = arrival.at + MAX_LAG_S
            if not await self._take_slot(give_up_at):
                counters.skipped += 1
                continue
            user = self.pool.acquire(self.now())
            if user is None:
                user = await self._wait_for_user(give_up_at)
            if user is None:
                self._slots.release()
                counters.skipped += 1
                continue
            counters.max_lag_s = max(counters.max_lag_s, self.now() - arrival.at)
            task = asyncio.create_task(self._post(poster, user, arrival.phase))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)
        remaining = self.end_of_plan - self.now()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _take_slot(self, give_up_at: float) -> bool:
        """One of ``concurrency`` request slots, unless the arrival would be sent too late."""
        try:
            await asyncio.wait_for(self._slots.acquire(), max(0.0, give_up_at - self.now()))
        except TimeoutError:
            return False
        return True

    async def _wait_for_user(self, give_up_at: float) -> int | None:
        """A user who becomes free before ``give_up_at``, or None (every user is busy)."""
        while (now := self.now()) < give_up_at:
            self._user_freed.clear()
            user = self.pool.acquire(now)
            if user is not None:
                return user
            ready_at = self.pool.next_ready_at()
            wait = min(TICK_S, give_up_at - now)
            if ready_at is not None:
                wait = min(wait, max(0.0, ready_at - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._user_freed.wait(), wait)
        return None

    async def _post(self, poster: WebhookPoster, user_index: int, phase: int) -> None:
        try:
            user, turn = self._users.get(user_index) or (self._population.user(user_index), 0)
            self._users[user_index] = (user, turn)
            update = self._factory.message(user, turn, date=time.time())
            body = orjson.dumps(update)
            sent_at = self.now()
            pending = Pending(
                user.chat_id, turn + 1, user_index, phase, sent_at, text=user.script[turn],
                update_id=int(update["update_id"]),
            )  # fmt: skip
            self.tracker.sent(pending)
            self.log.sent(sent_at, phase)
            self.counters[phase].sent += 1
            status = await poster.post(body)
            if 200 <= status < 300:
                self.counters[phase].accepted += 1
                ack_s = self.now() - sent_at
                self.counters[phase].ack_s.append(ack_s)
                self.tracker.accepted(user.chat_id, turn + 1, ack_s)
                return
            if status == FAILED:
                self.counters[phase].errors += 1
            else:
                self.counters[phase].rejected += 1
            if self.tracker.rejected(user.chat_id, turn + 1) is not None:
                self.release(pending)
        finally:
            self._slots.release()

    def release(self, pending: Pending) -> None:
        """``pending``'s user may write again (answered, refused or given up on)."""
        if pending.released:
            return
        pending.released = True
        user, turn = self._users[pending.user]
        limit = min(len(user.script), self.config.max_turns or len(user.script))
        session_over = turn + 1 >= limit
        if session_over:
            del self._users[pending.user]
        else:
            self._users[pending.user] = (user, turn + 1)
        self.pool.release(pending.user, self.now(), session_over=session_over)
        self._user_freed.set()

    def answered(self, pending: Pending, received_mono: float, reply: str) -> None:
        """A bot message received at ``received_mono`` answers ``pending``."""
        at = received_mono - self.t0
        latency = at - pending.sent_at
        self.log.answered(at, latency, pending.phase, command=pending.is_command)
        if at < self.end_of_plan:
            self.counters[self.windows.index_at(at)].answered_in_window += 1
        if self.config.keep_answers:
            self.answers.append((pending, at))
        if pending.user < self.config.sample_chats:
            self.conversations.setdefault(pending.chat_id, []).append((pending.text, reply, latency * 1000))
        self.release(pending)

    async def _drain(self) -> None:
        deadline = self.now() + self.config.drain_timeout_s
        while self.now() < deadline and (self._posts or any(p.accepted for p in self.tracker.outstanding())):
            self._user_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._user_freed.wait(), TICK_S)

    async def _tick(self) -> None:
        samples: list[CpuSample] = []
        next_boundary = 0
        while True:
            now = self.now()
            while next_boundary <= len(self.config.phases) and (
                (next_boundary == len(self.config.phases) and now >= self.end_of_plan)
                or (next_boundary < len(self.config.phases) and now >= self.windows.starts[next_boundary])
            ):
                if self._cpu is not None:
                    samples.append(await asyncio.to_thread(self._cpu.sample))
                    if len(samples) >= 2:
                        self.windows.cpu[next_boundary - 1] = usage_between(
                            samples[-2], samples[-1], self._cpu.roles()
                        )
                next_boundary += 1
            for pending in self.tracker.overdue(now, self.config.reply_timeout_s):
                self.release(pending)
            if self._on_progress is not None:
                self._on_progress(self.snapshot())
            await asyncio.sleep(TICK_S)

    def snapshot(self) -> Snapshot:
        now = self.now()
        index = self.windows.index_at(now)
        phase = self.config.phases[index]
        recent, sent_rate, answered_rate = self.log.recent(now, 5.0)
        return Snapshot(
            phase=phase.name,
            phase_index=index,
            phases=len(self.config.phases),
            target_rate=phase.rate,
            phase_elapsed_s=min(now - self.windows.starts[index], phase.duration_s),
            phase_duration_s=phase.duration_s,
            sent=self.log.sent_count,
            answered=self.log.answered_count,
            in_flight=self.tracker.in_flight,
            errors=sum(c.errors + c.rejected for c in self.counters),
            users_active=self.pool.active,
            recent=recent,
            sent_rate=sent_rate,
            answered_rate=answered_rate,
            draining=now >= self.end_of_plan,
        )
