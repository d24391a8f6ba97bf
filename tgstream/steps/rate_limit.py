"""Per-user windowed rate limiting (10/min, 100/h, 1000/day by default) as pure, snapshot-able state.

Windows are **fixed and calendar-aligned** on the Unix epoch (a minute window is ``[k*60, (k+1)*60)``,
a day window is a UTC day). Why not sliding windows:

* State stays O(number of windows): three ``(index, count, notified)`` triples per user, where a
  sliding log would keep up to 1000 timestamps per user for the day window.
* Restarts are exact: a window instance is identified by ``floor(now / seconds)``, a pure function of
  absolute time, so a snapshot restored hours later simply finds its indices stale and starts fresh.
* "One polite notice per window" needs a *window instance* to attach the notice to; a fixed window
  has one, and its end gives an honest ``retry_after_s`` ("you can write again at 14:00").

The known cost is the boundary burst: up to ``2 * limit`` messages across a window edge (10 at
00:59, 10 at 01:00). The longer windows bound it, and the spam step's flood signal sees it.

Rejected messages are **not counted** in any window. Counting them would let a user who keeps
typing while limited by the minute window run up the hour and day counters and lock themselves
out for the day; with this rule the counters mean "messages the bot accepted".

API, shaped for Bytewax's ``stateful_map`` (but free of it)::

    limiter = RateLimiter(DEFAULT_WINDOWS)
    state, decision = limiter.check(state_or_None, now)

``check`` never mutates: it returns a new frozen :class:`RateState`. For chats where several users
share one key (groups), :meth:`RateLimiter.check_user` keeps a capped ``dict[user_id, RateState]``.

>>> limiter = RateLimiter((Window("minute", 60, 2),))
>>> state, d = limiter.check(None, now=0.0)
>>> state, d = limiter.check(state, now=1.0)
>>> state, d = limiter.check(state, now=2.0)
>>> (d.allowed, d.window, d.notify, d.retry_after_s)
(False, 'minute', True, 58.0)
>>> state, d = limiter.check(state, now=3.0)
>>> (d.allowed, d.notify)
(False, False)
>>> limiter.check(state, now=60.0)[1].allowed
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tgstream.schemas.pickling import fast_pickle

MAX_WINDOWS = 8
DEFAULT_MAX_USERS_PER_KEY = 512


@dataclass(frozen=True, slots=True)
class Window:
    """One limit: at most ``limit`` accepted messages per calendar-aligned ``seconds`` span."""

    name: str
    seconds: int
    limit: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a rate window needs a name")
        if self.seconds <= 0 or self.limit <= 0:
            raise ValueError(f"window {self.name!r}: seconds and limit must be positive")

    def index(self, now: float) -> int:
        return int(now // self.seconds)

    def end(self, index: int) -> float:
        return float((index + 1) * self.seconds)


DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window("minute", 60, 10),
    Window("hour", 3600, 100),
    Window("day", 86_400, 1000),
)


def windows_from_limits(per_minute: int, per_hour: int, per_day: int) -> tuple[Window, ...]:
    """The usual three windows from the ``RATE_PER_*`` settings."""
    return (Window("minute", 60, per_minute), Window("hour", 3600, per_hour), Window("day", 86_400, per_day))


@fast_pickle
@dataclass(frozen=True, slots=True)
class WindowCount:
    """Accepted messages in one window instance, and whether its notice was already sent."""

    index: int
    count: int = 0
    notified: bool = False


@fast_pickle
@dataclass(frozen=True, slots=True)
class RateState:
    """One user's counters, one per configured window, in the limiter's window order."""

    counts: tuple[WindowCount, ...]
    last_seen: float = 0.0
    rejected_total: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one message.

    ``notify`` is True only for the first rejection in the exceeded window's instance, so the user
    gets one "slow down" per window. ``retry_after_s`` is when every exceeded window has reset.
    """

    allowed: bool
    window: str | None = None
    notify: bool = False
    retry_after_s: float = 0.0


ALLOWED = Decision(allowed=True)


class RateLimiter:
    """Applies a fixed set of windows to :class:`RateState` values; holds no per-user data itself."""

    def __init__(self, windows: Sequence[Window] = DEFAULT_WINDOWS) -> None:
        if not windows:
            raise ValueError("at least one rate window is required")
        if len(windows) > MAX_WINDOWS:
            raise ValueError(f"at most {MAX_WINDOWS} rate windows are supported")
        names = [w.name for w in windows]
        if len(set(names)) != len(names):
            raise ValueError(f"rate window names must be unique, got {names}")
        self.windows: tuple[Window, ...] = tuple(windows)

    def fresh(self, now: float) -> RateState:
        return RateState(counts=tuple(WindowCount(w.index(now)) for w in self.windows), last_seen=now)

    def _current(self, state: RateState | None, now: float) -> list[WindowCount]:
        """Counters rolled forward to ``now``; a state from another config starts over."""
        if state is None or len(state.counts) != len(self.windows):
            return list(self.fresh(now).counts)
        rolled = []
        for window, count in zip(self.windows, state.counts, strict=True):
            index = window.index(now)
            rolled.append(count if count.index == index else WindowCount(index))
        return rolled

    def check(self, state: RateState | None, now: float) -> tuple[RateState, Decision]:
        """Count one message at ``now`` if every window has room, else reject it without counting."""
        counts = self._current(state, now)
        rejected_total = state.rejected_total if state is not None else 0
        exceeded = [
            i for i, (w, c) in enumerate(zip(self.windows, counts, strict=True)) if c.count >= w.limit
        ]
        if not exceeded:
            counts = [WindowCount(c.index, c.count + 1, c.notified) for c in counts]
            return RateState(tuple(counts), now, rejected_total), ALLOWED
        # Report the window that reopens last: that is when the user can really write again.
        worst = max(exceeded, key=lambda i: self.windows[i].end(counts[i].index))
        window, count = self.windows[worst], counts[worst]
        notify = not count.notified
        counts[worst] = WindowCount(count.index, count.count, True)
        decision = Decision(
            allowed=False, window=window.name, notify=notify, retry_after_s=window.end(count.index) - now
        )
        return RateState(tuple(counts), now, rejected_total + 1), decision

    def is_idle(self, state: RateState, now: float) -> bool:
        """True when every window has rolled over since ``state``; such a state can be discarded."""
        return all(c.index != w.index(now) for w, c in zip(self.windows, state.counts, strict=True))

    def check_user(
        self,
        book: dict[int, RateState],
        user_id: int,
        now: float,
        *,
        max_users: int = DEFAULT_MAX_USERS_PER_KEY,
    ) -> tuple[dict[int, RateState], Decision]:
        """Like :meth:`check` for one user inside a key shared by many users (a group chat).

        Returns a new dict capped at ``max_users``: idle users go first, then the least recently
        seen. Dropping a non-idle user forgets their counts (they get a fresh allowance), which is
        the safe direction for a cap.
        """
        new_state, decision = self.check(book.get(user_id), now)
        updated = dict(book)
        updated[user_id] = new_state
        if len(updated) > max_users:
            idle = [uid for uid, s in updated.items() if uid != user_id and self.is_idle(s, now)]
            for uid in idle[: len(updated) - max_users]:
                del updated[uid]
            if len(updated) > max_users:
                oldest = sorted((s.last_seen, uid) for uid, s in updated.items() if uid != user_id)
                for _, uid in oldest[: len(updated) - max_users]:
                    del updated[uid]
        return updated, decision


_WINDOW_WORDS = {"minute": "this minute", "hour": "this hour", "day": "today"}


def _humanize(seconds: float) -> str:
    """Round up to a unit a person would say; never "0 seconds"."""
    s = max(1, int(-(-seconds // 1)))
    if s < 60:
        return f"{s} second{'s' if s != 1 else ''}"
    minutes = -(-s // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    if rest == 0:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if hours < 2:
        return f"{hours} h {rest} min"
    return f"about {round(minutes / 60)} hours"


def polite_notice(window: str | None, retry_after_s: float, persona_name: str | None = None) -> str:
    """The one "slow down" message per window, worded as the persona, saying when to come back.

    >>> polite_notice("minute", 42.3, "Luna")
    "Luna here — you're typing faster than I can keep up with! Give me 43 seconds and write again. 💛"
    """
    who = f"{persona_name} here — " if persona_name else ""
    wait = _humanize(retry_after_s)
    if window == "minute" or retry_after_s < 60:
        return f"{who}you're typing faster than I can keep up with! Give me {wait} and write again. 💛"
    span = _WINDOW_WORDS.get(window or "", "for now")
    return (
        f"{who}we've talked a lot {span} and I need a little break. "
        f"I'll be able to answer again in {wait}. Messages until then won't reach me."
    )
