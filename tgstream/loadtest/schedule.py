"""When messages are sent and by whom: phases, open-model arrivals, and users with think time.

The load is an *open* model: arrivals follow the phase's rate whatever the system does, as real
users do — a slow bot does not make people type less. Each arrival is then given to a simulated
user who is free: one whose last message was answered and whose think time has passed. When every
user is busy a new one joins (up to ``max_users``), so a slowing pipeline shows up as more users in
flight, not as a quietly lower offered load. Only when the cap is reached do arrivals wait, and the
driver reports that lag.

Everything here is pure: times are plain floats passed in and randomness comes from an injected
``random.Random``, so the schedule is reproducible and testable without services or sleeps.

>>> [p.name for p in parse_phases("warmup:10:30s,peak:200:2m")]
['warmup', 'peak']
>>> scale_phases(parse_phases("normal:100:1m"), 0.1)[0].rate
10.0
"""

from __future__ import annotations

import heapq
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

ArrivalProcess = Literal["poisson", "uniform"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScheduleError(ValueError):
    """A phase spec or scheduling parameter is malformed; the message says which part."""


@dataclass(frozen=True)
class Phase:
    """A stretch of constant offered load: ``rate`` messages per second for ``duration_s``."""

    name: str
    rate: float
    duration_s: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ScheduleError("a phase needs a name")
        if not math.isfinite(self.rate) or self.rate < 0:
            raise ScheduleError(f"phase {self.name!r}: rate must be a finite number >= 0, got {self.rate}")
        if not math.isfinite(self.duration_s) or self.duration_s <= 0:
            raise ScheduleError(f"phase {self.name!r}: duration must be > 0, got {self.duration_s}")


SEED_PHASES = (
    Phase("warmup", 10, 300),
    Phase("normal", 100, 600),
    Phase("peak", 200, 300),
    Phase("stress", 500, 600),
    Phase("max", 1000, 120),
)
"""The seed document's Artillery plan, verbatim (32 minutes)."""

DEFAULT_PHASES = (
    Phase("warmup", 10, 20),
    Phase("normal", 100, 40),
    Phase("peak", 200, 40),
    Phase("stress", 500, 40),
    Phase("max", 1000, 20),
)
"""The seed's rates with durations short enough to run on every change (about 3 minutes)."""


def parse_duration(text: str) -> float:
    """``"30s"``, ``"2m"``, ``"500ms"``, ``"1.5h"`` or bare seconds, as seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ScheduleError(f"bad duration {text!r}: expected a number with an optional ms/s/m/h unit")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def parse_phases(spec: str) -> tuple[Phase, ...]:
    """Parse ``name:rate:duration[,...]``, the ``--phases`` option's syntax."""
    phases = []
    for part in spec.split(","):
        fields = part.strip().split(":")
        if len(fields) != 3:
            raise ScheduleError(f"bad phase {part!r}: expected name:rate:duration, e.g. warmup:10:30s")
        name, rate, duration = fields
        try:
            rate_value = float(rate)
        except ValueError as exc:
            raise ScheduleError(f"bad phase {part!r}: rate {rate!r} is not a number") from exc
        phases.append(Phase(name.strip(), rate_value, parse_duration(duration)))
    if not phases:
        raise ScheduleError("no phases given")
    return tuple(phases)


def scale_phases(phases: Sequence[Phase], factor: float) -> tuple[Phase, ...]:
    """Multiply every rate by ``factor`` (durations stay), so one plan fits any machine."""
    if not math.isfinite(factor) or factor <= 0:
        raise ScheduleError(f"scale must be > 0, got {factor}")
    return tuple(replace(phase, rate=phase.rate * factor) for phase in phases)


def total_duration(phases: Sequence[Phase]) -> float:
    return sum(phase.duration_s for phase in phases)


@dataclass(frozen=True)
class Arrival:
    """One message to send, ``at`` seconds after the test started, during phase ``phase``."""

    at: float
    phase: int


def arrivals(
    phases: Sequence[Phase], *, process: ArrivalProcess = "poisson", rng: random.Random
) -> Iterator[Arrival]:
    """The arrival times of the whole plan, in order.

    Poisson arrivals restart at each phase boundary with the new rate; because the exponential
    distribution is memoryless this is exactly a piecewise-constant-rate Poisson process. Uniform
    arrivals are evenly spaced at the phase's rate, offset by half a gap.
    """
    start = 0.0
    for index, phase in enumerate(phases):
        end = start + phase.duration_s
        if phase.rate > 0:
            if process == "poisson":
                t = start + rng.expovariate(phase.rate)
                while t < end:
                    yield Arrival(t, index)
                    t += rng.expovariate(phase.rate)
            else:
                gap = 1.0 / phase.rate
                k = 0
                while (t := start + (k + 0.5) * gap) < end:
                    yield Arrival(t, index)
                    k += 1
        start = end


@dataclass(frozen=True)
class ThinkTime:
    """How long a user reads and types before the next message: log-normal, clipped to a range.

    The minimum of 6 s keeps every simulated user under the default rate limit of 10 messages a
    minute, so a load test measures replies, not "slow down" notices.
    """

    min_s: float = 6.0
    median_s: float = 12.0
    max_s: float = 60.0
    sigma: float = 0.6

    def __post_init__(self) -> None:
        if not 0 <= self.min_s <= self.median_s <= self.max_s:
            raise ScheduleError("think time needs 0 <= min <= median <= max")

    def sample(self, rng: random.Random) -> float:
        if self.median_s <= 0:
            return 0.0
        value = rng.lognormvariate(math.log(self.median_s), self.sigma)
        return min(self.max_s, max(self.min_s, value))

    def mean_estimate(self) -> float:
        """The unclipped log-normal mean: a planning figure for sizing the user population."""
        return min(self.max_s, max(self.min_s, self.median_s * math.exp(self.sigma**2 / 2)))


def users_needed(peak_rate: float, think: ThinkTime, expected_latency_s: float) -> int:
    """Users required for ``peak_rate``: each sends at most once per (reply latency + think time)."""
    cycle = think.mean_estimate() + max(0.0, expected_latency_s)
    return max(1, math.ceil(peak_rate * cycle * 1.3) + 10)


class UserPool:
    """Which simulated user sends the next message; users are numbered from 0 as they join.

    A user is *busy* from sending until :meth:`release` (its reply arrived or timed out), then
    *thinking* until its think time has passed, then *ready*. Ready users are reused in the order
    they became ready; when none is, a new user joins if fewer than ``max_users`` are active.
    A user whose session is over leaves, freeing its slot for a newcomer.
    """

    def __init__(self, *, max_users: int, think: ThinkTime, rng: random.Random) -> None:
        if max_users < 1:
            raise ScheduleError(f"max_users must be >= 1, got {max_users}")
        self.max_users = max_users
        self._think = think
        self._rng = rng
        self._ready: list[tuple[float, int]] = []
        self._next_user = 0
        self.active = 0
        self.busy = 0

    @property
    def joined(self) -> int:
        """Users who have ever joined (the next newcomer's number)."""
        return self._next_user

    def acquire(self, now: float) -> int | None:
        """A user to send a message at ``now``, or None when all ``max_users`` are busy or thinking."""
        if self._ready and self._ready[0][0] <= now:
            _, user = heapq.heappop(self._ready)
        elif self.active < self.max_users:
            user = self._next_user
            self._next_user += 1
            self.active += 1
        else:
            return None
        self.busy += 1
        return user

    def release(self, user: int, now: float, *, session_over: bool = False) -> None:
        """``user``'s message was answered (or given up on) at ``now``."""
        self.busy -= 1
        if session_over:
            self.active -= 1
            return
        heapq.heappush(self._ready, (now + self._think.sample(self._rng), user))

    def next_ready_at(self) -> float | None:
        """When the earliest thinking user will be ready, if any."""
        return self._ready[0][0] if self._ready else None
