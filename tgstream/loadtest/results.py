"""The outcome of a load test run as plain data: what `report` renders and the JSON file holds.

Building it is separate from measuring (the driver) and from rendering (the report), so the
arithmetic — rates, lost messages, CPU per message, added latency — is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tgstream.loadtest.cpu import CpuUsage
from tgstream.loadtest.schedule import Phase
from tgstream.loadtest.stats import LatencyLog, Summary, summarize
from tgstream.loadtest.tracker import Pending


@dataclass
class PhaseCounters:
    """What the driver counted while a phase was running."""

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    skipped: int = 0
    max_lag_s: float = 0.0
    ack_s: list[float] = field(default_factory=list)
    answered_in_window: int = 0
    start_at: float = 0.0
    end_at: float = 0.0


@dataclass(frozen=True)
class CpuResult:
    seconds: Mapping[str, float]
    roles: Mapping[str, str]
    ms_per_message: Mapping[str, float]
    pipeline_ms_per_message: float | None
    pipeline_cores: float
    messages_per_pipeline_core_s: float | None
    """Messages per second one fully busy core of pipeline CPU sustains: sizing is one division."""
    pipeline_net_ms_per_message: float | None = None
    """Pipeline CPU per message minus the processes' idle burn measured before the run."""


@dataclass(frozen=True)
class PhaseResult:
    name: str
    target_rate: float
    duration_s: float
    sent: int
    accepted: int
    rejected: int
    errors: int
    answered: int
    lost: int
    skipped: int
    max_lag_ms: float
    offered_rate: float
    answered_rate: float
    latency_ms: Mapping[str, float] | None
    added_ms: Mapping[str, float] | None
    """End-to-end minus the model's fixed latency, over LLM turns (commands excluded)."""
    command_ms: Mapping[str, float] | None
    """End-to-end latency of bot commands (/start...), which make no LLM call."""
    ack_ms: Mapping[str, float] | None
    cpu: CpuResult | None


@dataclass(frozen=True)
class Conversation:
    chat_id: int
    turns: tuple[tuple[str, str, float], ...]
    """(user text, bot reply, latency in ms) in order."""


@dataclass(frozen=True)
class RunResult:
    meta: Mapping[str, Any]
    phases: tuple[PhaseResult, ...]
    totals: Mapping[str, int]
    cpu_idle_cores: Mapping[str, float]
    timeline: tuple[Mapping[str, float | None], ...]
    conversations: tuple[Conversation, ...] = ()

    @property
    def zero_loss(self) -> bool:
        return self.totals["lost"] == 0 and self.totals["extra"] == 0 and self.totals["errors"] == 0


def _ms(summary: Summary | None) -> dict[str, float] | None:
    return summary.as_ms() if summary is not None else None


def cpu_result(usage: CpuUsage, messages: int, idle_cores: Mapping[str, float] | None = None) -> CpuResult:
    """CPU figures for ``messages`` answered in the interval.

    ``idle_cores`` (what each process burned with no load, measured before the run) gives the
    net figure: on a shared machine, a broker also serving someone else's tests is not our cost.
    """
    pipeline_s = usage.role_seconds("pipeline")
    idle_s = sum(
        cores * usage.wall_s
        for name, cores in (idle_cores or {}).items()
        if usage.roles.get(name) == "pipeline"
    )
    net_s = max(0.0, pipeline_s - idle_s)
    return CpuResult(
        seconds=dict(usage.seconds),
        roles=dict(usage.roles),
        ms_per_message=usage.per_message_ms(messages),
        pipeline_ms_per_message=pipeline_s * 1000 / messages if messages else None,
        pipeline_cores=usage.cores("pipeline"),
        messages_per_pipeline_core_s=messages / pipeline_s if messages and pipeline_s > 0 else None,
        pipeline_net_ms_per_message=net_s * 1000 / messages if messages and idle_cores else None,
    )


def phase_result(
    index: int,
    phase: Phase,
    counters: PhaseCounters,
    log: LatencyLog,
    *,
    lost: int,
    model_latency_s: float | None,
    cpu: CpuUsage | None,
    idle_cores: Mapping[str, float] | None = None,
) -> PhaseResult:
    """One phase's figures; latencies belong to the phase the message was *sent* in.

    Added latency is end-to-end minus the model's fixed latency, over LLM turns only (commands
    make no LLM call); it is None when the model's latency is not known (a real model).
    """
    latencies = log.phase_latencies(index)
    turns = log.phase_latencies(index, commands=False)
    window = max(counters.end_at - counters.start_at, 1e-9)
    return PhaseResult(
        name=phase.name,
        target_rate=phase.rate,
        duration_s=phase.duration_s,
        sent=counters.sent,
        accepted=counters.accepted,
        rejected=counters.rejected,
        errors=counters.errors,
        answered=len(latencies),
        lost=lost,
        skipped=counters.skipped,
        max_lag_ms=counters.max_lag_s * 1000,
        offered_rate=counters.sent / window,
        answered_rate=counters.answered_in_window / window,
        latency_ms=_ms(summarize(latencies)),
        added_ms=_ms(summarize(lat - model_latency_s for lat in turns))
        if model_latency_s is not None
        else None,
        command_ms=_ms(summarize(log.phase_latencies(index, commands=True))),
        ack_ms=_ms(summarize(counters.ack_s)),
        cpu=cpu_result(cpu, counters.answered_in_window, idle_cores) if cpu is not None else None,
    )


def lost_by_phase(outstanding: Sequence[Pending], phases: int) -> list[int]:
    """Accepted messages never answered, by the phase they were sent in."""
    lost = [0] * phases
    for pending in outstanding:
        if pending.accepted:
            lost[pending.phase] += 1
    return lost


def timeline_rows(log: LatencyLog, width: float, until: float | None) -> tuple[dict[str, float | None], ...]:
    """Rows of the timeline plots; ``until=None`` runs to the last answer, drain included."""
    rows = []
    for bucket in log.timeline(width, until=until):
        latency = bucket.latency
        rows.append(
            {
                "t": bucket.start,
                "sent_rate": bucket.sent_rate,
                "answered_rate": bucket.answered_rate,
                "p50_ms": latency.p50 * 1000 if latency else None,
                "p95_ms": latency.p95 * 1000 if latency else None,
                "p99_ms": latency.p99 * 1000 if latency else None,
            }
        )
    return tuple(rows)
