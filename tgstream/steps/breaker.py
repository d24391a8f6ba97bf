"""A circuit breaker for the LLM provider, with an injected clock, plus the in-persona fallback reply.

Hand-written (about 100 lines) rather than taken from a library, because none of the candidates
takes a clock: ``pybreaker`` and ``aiobreaker`` read ``datetime.now()`` inside, ``purgatory`` works
through an async unit-of-work and message bus built for shared Redis state, and each counts
*consecutive* failures. We need time passed in (tests without sleeps; the dataflow's own clock)
and a failure *rate* over a rolling window: at 500 calls/s, five failures in 30 s is noise, not an
outage, while the seed's "5 failures ever" would trip on it.

States::

    CLOSED --(>= failure_threshold failures AND >= min_failure_ratio of calls, within window_s)--> OPEN
    OPEN --(reset_s elapsed, checked by allow())--> HALF_OPEN
    HALF_OPEN --(success_threshold probe successes)--> CLOSED
    HALF_OPEN --(any probe failure)--> OPEN (the reset_s clock restarts)

The rolling window is ``buckets`` fixed slots of ``window_s / buckets`` seconds each holding
(successes, failures), so memory is constant whatever the call rate. Results that arrive while
OPEN (calls started before it opened) are ignored. A probe that never reports (its task was
cancelled) does not wedge the breaker in HALF_OPEN: after ``reset_s`` another probe is let through.

Note: not thread-safe; use one breaker per event loop (the LLM stage's background loop).

>>> breaker = CircuitBreaker(failure_threshold=2, reset_s=10.0, min_failure_ratio=0.0)
>>> breaker.record_failure(0.0), breaker.record_failure(1.0)
(<BreakerState.CLOSED: 'closed'>, <BreakerState.OPEN: 'open'>)
>>> breaker.allow(5.0), breaker.allow(11.0), breaker.allow(11.5)
(False, True, False)
>>> breaker.record_success(12.0)
<BreakerState.CLOSED: 'closed'>
"""

from __future__ import annotations

import enum
import zlib


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed/open/half-open breaker; every method takes ``now`` (seconds, any monotonic origin)."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window_s: float = 30.0,
        min_failure_ratio: float = 0.5,
        reset_s: float = 10.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        buckets: int = 10,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or success_threshold < 1 or buckets < 1:
            raise ValueError("breaker thresholds, probe count and bucket count must be >= 1")
        if window_s <= 0 or reset_s <= 0:
            raise ValueError("breaker window_s and reset_s must be positive")
        if not 0.0 <= min_failure_ratio <= 1.0:
            raise ValueError("min_failure_ratio must be within 0..1")
        self.failure_threshold = failure_threshold
        self.min_failure_ratio = min_failure_ratio
        self.reset_s = reset_s
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self._bucket_s = window_s / buckets
        self._buckets: list[tuple[int, int, int]] = [(-1, 0, 0)] * buckets  # (slot, successes, failures)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probes = 0
        self._probe_successes = 0
        self._probe_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The state as of the last call; OPEN turns HALF_OPEN only when :meth:`allow` sees the time."""
        return self._state

    def state_at(self, now: float) -> BreakerState:
        """The state a call at ``now`` would see, without taking a probe slot (for gauges and logs)."""
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.reset_s:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_at(self) -> float | None:
        """When an OPEN breaker will let a probe through, else None."""
        return self._opened_at + self.reset_s if self._state is BreakerState.OPEN else None

    def _record(self, now: float, *, failed: bool) -> None:
        slot = int(now // self._bucket_s)
        i = slot % len(self._buckets)
        old_slot, ok, bad = self._buckets[i]
        if old_slot != slot:
            ok = bad = 0
        self._buckets[i] = (slot, ok + (not failed), bad + failed)

    def _window_counts(self, now: float) -> tuple[int, int]:
        current = int(now // self._bucket_s)
        oldest = current - len(self._buckets) + 1
        live = [(ok, bad) for slot, ok, bad in self._buckets if oldest <= slot <= current]
        return sum(ok for ok, _ in live), sum(bad for _, bad in live)

    def _open(self, now: float) -> BreakerState:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._probes = self._probe_successes = 0
        return self._state

    def allow(self, now: float) -> bool:
        """May a call start now? In HALF_OPEN this hands out at most ``half_open_max_calls`` probes."""
        if self._state is BreakerState.OPEN:
            if now < self._opened_at + self.reset_s:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probes = self._probe_successes = 0
        if self._state is BreakerState.HALF_OPEN:
            if self._probes >= self.half_open_max_calls:
                if now < self._probe_at + self.reset_s:
                    return False
                self._probes = 0  # the probes never reported (cancelled?): do not stay stuck
            self._probes += 1
            self._probe_at = now
        return True

    def record_success(self, now: float) -> BreakerState:
        if self._state is BreakerState.HALF_OPEN:
            self._probe_successes += 1
            if self._probe_successes >= self.success_threshold:
                self._state = BreakerState.CLOSED
                self._buckets = [(-1, 0, 0)] * len(self._buckets)
            else:
                self._probes = max(0, self._probes - 1)
        elif self._state is BreakerState.CLOSED:
            self._record(now, failed=False)
        return self._state

    def record_failure(self, now: float) -> BreakerState:
        if self._state is BreakerState.HALF_OPEN:
            return self._open(now)
        if self._state is BreakerState.CLOSED:
            self._record(now, failed=True)
            ok, bad = self._window_counts(now)
            if bad >= self.failure_threshold and bad / (ok + bad) >= self.min_failure_ratio:
                return self._open(now)
        return self._state


_FALLBACKS = (
    "{who}I'm a bit slow right now — give me a moment and write to me again? 🙏",
    "{who}my thoughts are stuck in traffic for a minute. Try me again shortly!",
    "{who}sorry, I can't think straight right this second. Give me a little while, okay?",
    "{who}I need a short breather — send that again in a minute and I'll be all yours.",
)


def fallback_reply(persona_name: str | None, chat_id: int, attempt: int = 0) -> str:
    """A short in-persona "give me a moment" text, the same for the same chat and attempt.

    Deterministic (crc32, never ``hash()``, which is salted per process) so a replayed turn after a
    crash produces the same text as the first try.

    >>> fallback_reply("Luna", 42) == fallback_reply("Luna", 42)
    True
    >>> fallback_reply(None, 42).startswith(("I'm", "My", "Sorry", "I need"))
    True
    """
    index = (zlib.crc32(str(chat_id).encode()) + attempt) % len(_FALLBACKS)
    who = f"{persona_name} here — " if persona_name else ""
    text = _FALLBACKS[index].format(who=who)
    return text[0].upper() + text[1:]
