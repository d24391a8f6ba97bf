"""Latency percentiles, per phase and over time, computed exactly from every sample.

A run keeps one record per answered message (a few floats), so even a million messages is a few
tens of MB; exact nearest-rank percentiles from sorted samples are simpler to trust than a
histogram's bucket error, and sorting a phase's samples once at the end is cheap.

>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.0
>>> summarize([]) is None
True
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(sorted_samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``p`` % of samples at or below it."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(p / 100 * len(sorted_samples))
    return sorted_samples[max(rank, 1) - 1]


@dataclass(frozen=True)
class Summary:
    """Distribution of a latency, in seconds."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_ms(self) -> dict[str, float]:
        return {key: (value * 1000 if key != "count" else value) for key, value in asdict(self).items()}


def summarize(samples: Iterable[float]) -> Summary | None:
    """Percentiles of ``samples``, or None when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return None
    return Summary(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


@dataclass(frozen=True)
class Bucket:
    """One slice of the run's timeline: what was sent and answered in ``[start, start + width)``."""

    start: float
    width: float
    sent: int
    answered: int
    latency: Summary | None

    @property
    def sent_rate(self) -> float:
        return self.sent / self.width

    @property
    def answered_rate(self) -> float:
        return self.answered / self.width


class LatencyLog:
    """Every send and every answer of a run, by phase, with times relative to the run's start."""

    def __init__(self, phases: int) -> None:
        self._sent_at = array("d")
        self._answered_at = array("d")
        self._latency = array("d")
        self._latency_phase = array("i")
        self._latency_command = array("b")
        self._sent_phase = array("i")
        self._phases = phases
        self._recent: deque[tuple[float, float]] = deque()

    def sent(self, at: float, phase: int) -> None:
        self._sent_at.append(at)
        self._sent_phase.append(phase)

    def answered(self, at: float, latency: float, phase: int, *, command: bool = False) -> None:
        """A reply arrived at ``at`` for a message of ``phase`` sent ``latency`` seconds earlier.

        ``command`` marks a bot command (/start...), answered without an LLM call, so that the
        latency the pipeline adds to LLM turns can be computed over turns alone.
        """
        self._answered_at.append(at)
        self._latency.append(latency)
        self._latency_phase.append(phase)
        self._latency_command.append(1 if command else 0)
        self._recent.append((at, latency))

    @property
    def sent_count(self) -> int:
        return len(self._sent_at)

    @property
    def answered_count(self) -> int:
        return len(self._answered_at)

    def phase_latencies(self, phase: int, *, commands: bool | None = None) -> list[float]:
        """Latencies of ``phase``'s messages: all, only commands (True) or only LLM turns (False)."""
        rows = zip(self._latency, self._latency_phase, self._latency_command, strict=True)
        return [lat for lat, p, c in rows if p == phase and (commands is None or bool(c) == commands)]

    def phase_sent(self, phase: int) -> int:
        return sum(1 for p in self._sent_phase if p == phase)

    def recent(self, now: float, window_s: float) -> tuple[Summary | None, float, float]:
        """Latency summary and sent/answered rates over the last ``window_s`` — the live display's view."""
        horizon = now - window_s
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        latency = summarize(lat for _, lat in self._recent)
        sent = len(self._sent_at) - bisect.bisect_left(self._sent_at, horizon)
        return latency, sent / window_s, len(self._recent) / window_s

    def timeline(self, width: float, *, until: float | None = None) -> list[Bucket]:
        """Fixed-width buckets from 0; answers (and their latencies) fall in the bucket they arrived in."""
        if width <= 0:
            raise ValueError("bucket width must be > 0")
        end = until if until is not None else max([0.0, *self._sent_at[-1:], *self._answered_at[-1:]])
        count = max(1, math.ceil(end / width))
        sent = [0] * count
        latencies: list[list[float]] = [[] for _ in range(count)]
        for at in self._sent_at:
            sent[min(int(at // width), count - 1)] += 1
        for at, latency in zip(self._answered_at, self._latency, strict=True):
            latencies[min(int(at // width), count - 1)].append(latency)
        return [
            Bucket(i * width, width, sent[i], len(lats), summarize(lats)) for i, lats in enumerate(latencies)
        ]
