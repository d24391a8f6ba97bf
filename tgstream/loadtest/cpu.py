"""CPU seconds spent by each process of the system during a run, to price a message in CPU.

Each *group* (gateway, Kafka, Postgres with all its backends...) is a set of root pids; a group's
CPU time is the sum over the roots and all their live descendants of user + system time, plus the
time of descendants that already exited (``children_user/system``, which a parent accumulates when
it reaps a child). Sampling that sum at the start and the end of a phase and subtracting counts a
short-lived Postgres backend exactly once, whether it lived through the sample or not.

Groups have a *role*: ``pipeline`` (what production runs and the targets are about), ``double``
(the fake Telegram server and the LLM stub), ``generator`` (the load test itself) and ``model``
(a local LLM server). Only ``pipeline`` counts toward "CPU per message".

Note:
    CPU that another workload on the same box spends in a shared service (a test suite using the
    same Kafka broker, say) is counted too; :func:`idle_baseline` measures that background so the
    report can show it next to the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from tgstream.devstack import supervisor

Role = Literal["pipeline", "double", "generator", "model"]
DEV_SERVICE_ROLES: Mapping[str, Role] = {
    "kafka": "pipeline",
    "redis": "pipeline",
    "postgres": "pipeline",
    "llama": "model",
    "llm-stub": "double",
}


@dataclass(frozen=True)
class ProcessGroup:
    """Named root pids whose process trees are measured together."""

    name: str
    role: Role
    pids: tuple[int, ...]
    tree: bool = True
    """False measures the roots alone: the load generator is the parent of the stack it launched."""
    members: Callable[[], Sequence[int]] | None = field(default=None, compare=False)
    """Instead of ``pids``: the group's processes now, each measured alone (Postgres backends)."""


MemberKey = tuple[int, float]
"""A process by pid and start time, so a recycled pid is a different process."""


def member_cpu(pids: Sequence[int]) -> dict[MemberKey, float]:
    """CPU seconds of each live process (no children), keyed by (pid, start time)."""
    found = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            found[(pid, proc.create_time())] = t.user + t.system
        except psutil.Error:
            continue
    return found


def _tree_cpu(pid: int, seen: set[int], *, tree: bool) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if tree else [root]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        if proc.pid in seen:
            continue
        seen.add(proc.pid)
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
        if tree:
            total += t.children_user + t.children_system
    return total


def group_cpu(group: ProcessGroup) -> float:
    """CPU seconds the group's trees have used so far (each pid counted once)."""
    seen: set[int] = set()
    return sum(_tree_cpu(pid, seen, tree=group.tree) for pid in group.pids)


def dev_service_groups(run_dir: Path) -> list[ProcessGroup]:
    """Groups for the services `tgstream dev up` recorded in ``.dev/run/*.pid`` that are alive."""
    groups = []
    for name, role in DEV_SERVICE_ROLES.items():
        record = supervisor.read_record(run_dir / f"{name}.pid")
        if record is not None and supervisor.is_alive(record):
            groups.append(ProcessGroup(name, role, (record.pid,)))
    return groups


@dataclass(frozen=True)
class CpuSample:
    at: float
    seconds: Mapping[str, float]
    wall: float = 0.0
    members: Mapping[str, Mapping[MemberKey, float]] = field(default_factory=dict)


@dataclass
class CpuMeter:
    """Samples every group's CPU time; differences between samples give CPU per phase."""

    groups: tuple[ProcessGroup, ...]
    clock: Callable[[], float] = time.monotonic
    reader: Callable[[ProcessGroup], float] = group_cpu
    member_reader: Callable[[Sequence[int]], dict[MemberKey, float]] = member_cpu
    wall_clock: Callable[[], float] = time.time
    samples: list[CpuSample] = field(default_factory=list)

    def sample(self) -> CpuSample:
        members = {g.name: self.member_reader(g.members()) for g in self.groups if g.members is not None}
        seconds = {
            g.name: sum(members[g.name].values()) if g.members is not None else self.reader(g)
            for g in self.groups
        }
        taken = CpuSample(self.clock(), seconds, self.wall_clock(), members)
        self.samples.append(taken)
        return taken

    def roles(self) -> dict[str, Role]:
        return {g.name: g.role for g in self.groups}


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds per group over one interval, with what it means per message and per core."""

    wall_s: float
    seconds: Mapping[str, float]
    roles: Mapping[str, Role]

    def role_seconds(self, role: Role) -> float:
        return sum(s for name, s in self.seconds.items() if self.roles.get(name) == role)

    def per_message_ms(self, messages: int) -> dict[str, float]:
        if messages <= 0:
            return {}
        return {name: s * 1000 / messages for name, s in self.seconds.items()}

    def cores(self, role: Role) -> float:
        """Average cores the role kept busy over the interval."""
        return self.role_seconds(role) / self.wall_s if self.wall_s > 0 else 0.0


def usage_between(start: CpuSample, end: CpuSample, roles: Mapping[str, Role]) -> CpuUsage:
    """CPU used between two samples; a group that vanished (restarted) counts as zero, not negative.

    For member groups each process counts on its own: its growth if it was in both samples, all
    of its time if it started after the first sample, and nothing if it was already running but
    only joined the group later (what it did before joining is unknown) or has exited.
    """
    seconds = {name: max(0.0, end.seconds.get(name, 0.0) - before) for name, before in start.seconds.items()}
    for name, now in end.members.items():
        before = start.members.get(name, {})
        total = 0.0
        for key, value in now.items():
            if key in before:
                total += max(0.0, value - before[key])
            elif key[1] >= start.wall:
                total += value
        seconds[name] = total
    return CpuUsage(end.at - start.at, seconds, roles)


def idle_baseline(meter: CpuMeter, seconds: float, sleep: Callable[[float], None] = time.sleep) -> CpuUsage:
    """What the groups burn with no load (background, other users of shared services) over ``seconds``."""
    start = meter.sample()
    sleep(seconds)
    return usage_between(start, meter.sample(), meter.roles())


def merge_groups(groups: Iterable[ProcessGroup]) -> tuple[ProcessGroup, ...]:
    """One group per name; pids of same-named groups (two dataflow processes, say) are pooled."""
    merged: dict[str, ProcessGroup] = {}
    for group in groups:
        if group.name in merged:
            old = merged[group.name]
            merged[group.name] = ProcessGroup(group.name, old.role, old.pids + group.pids, old.tree)
        else:
            merged[group.name] = group
    return tuple(merged.values())
