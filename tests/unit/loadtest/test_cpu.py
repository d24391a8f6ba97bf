from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tgstream.devstack.supervisor import ProcessRecord
from tgstream.loadtest.cpu import (
    CpuMeter,
    ProcessGroup,
    dev_service_groups,
    group_cpu,
    idle_baseline,
    merge_groups,
    usage_between,
)

BURN = "import time\nwhile time.process_time() < 0.3:\n    pass\n"


def test_usage_is_the_difference_per_group_and_never_negative() -> None:
    readings = iter([{"gw": 1.0, "kafka": 5.0}, {"gw": 1.6, "kafka": 4.0}])
    groups = (ProcessGroup("gw", "pipeline", (1,)), ProcessGroup("kafka", "pipeline", (2,)))
    current: dict[str, float] = {}

    def reader(group: ProcessGroup) -> float:
        return current[group.name]

    clock = iter([10.0, 12.0])
    meter = CpuMeter(groups, clock=lambda: next(clock), reader=reader)
    current.update(next(readings))
    start = meter.sample()
    current.update(next(readings))
    end = meter.sample()
    usage = usage_between(start, end, meter.roles())
    assert usage.seconds == {"gw": pytest.approx(0.6), "kafka": 0.0}
    assert usage.wall_s == 2.0
    assert usage.cores("pipeline") == pytest.approx(0.3)
    assert usage.per_message_ms(300) == {"gw": pytest.approx(2.0), "kafka": 0.0}
    assert usage.per_message_ms(0) == {}


def test_roles_are_summed_separately() -> None:
    groups = (
        ProcessGroup("gw", "pipeline", (1,)),
        ProcessGroup("fake-telegram", "double", (2,)),
        ProcessGroup("loadtest", "generator", (3,), tree=False),
    )
    values = {"gw": 2.0, "fake-telegram": 3.0, "loadtest": 4.0}
    meter = CpuMeter(groups, clock=lambda: 0.0, reader=lambda g: values[g.name])
    zero = meter.sample()
    values = {name: value * 2 for name, value in values.items()}
    usage = usage_between(zero, meter.sample(), meter.roles())
    assert usage.role_seconds("pipeline") == 2.0
    assert usage.role_seconds("double") == 3.0
    assert usage.role_seconds("generator") == 4.0


def test_idle_baseline_uses_the_injected_sleep() -> None:
    slept: list[float] = []
    meter = CpuMeter((ProcessGroup("x", "pipeline", (1,)),), clock=lambda: 0.0, reader=lambda g: 1.0)
    usage = idle_baseline(meter, 3.0, sleep=slept.append)
    assert slept == [3.0]
    assert usage.seconds == {"x": 0.0}


def test_a_tree_counts_cpu_of_children_that_already_exited() -> None:
    me = ProcessGroup("me", "pipeline", (os.getpid(),))
    before = group_cpu(me)
    subprocess.run([sys.executable, "-c", BURN], check=True)
    assert group_cpu(me) - before >= 0.25


def test_a_root_only_group_ignores_its_children() -> None:
    me = ProcessGroup("me", "generator", (os.getpid(),), tree=False)
    before = group_cpu(me)
    subprocess.run([sys.executable, "-c", BURN], check=True)
    own = psutil.Process().cpu_times()
    assert group_cpu(me) - before < 0.25
    assert group_cpu(me) == pytest.approx(own.user + own.system, abs=0.05)


def test_a_vanished_pid_counts_as_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert group_cpu(ProcessGroup("gone", "pipeline", (proc.pid,))) == 0.0


def test_dev_service_groups_only_lists_live_recorded_services(tmp_path: Path) -> None:
    me = psutil.Process()
    (tmp_path / "redis.pid").write_text(ProcessRecord(me.pid, me.create_time(), 1, ("redis",)).to_json())
    (tmp_path / "kafka.pid").write_text(ProcessRecord(me.pid, me.create_time() - 100, 2, ("java",)).to_json())
    (tmp_path / "postgres.pid").write_text("not json")
    groups = dev_service_groups(tmp_path)
    assert [(g.name, g.role, g.pids) for g in groups] == [("redis", "pipeline", (me.pid,))]


def test_merge_groups_pools_pids_of_the_same_name() -> None:
    merged = merge_groups(
        [ProcessGroup("dataflow", "pipeline", (1,)), ProcessGroup("dataflow", "pipeline", (2,))]
    )
    assert merged == (ProcessGroup("dataflow", "pipeline", (1, 2)),)


def test_member_groups_count_each_process_from_when_it_joined() -> None:
    readings = [
        {(1, 100.0): 5.0, (2, 100.0): 7.0},
        {(1, 100.0): 5.5, (3, 250.0): 0.4, (4, 150.0): 9.0},
    ]
    walls = iter([200.0, 300.0])
    group = ProcessGroup("postgres", "pipeline", (99,), members=lambda: [1, 2])
    meter = CpuMeter(
        (group,),
        clock=lambda: 0.0,
        wall_clock=lambda: next(walls),
        member_reader=lambda pids: readings.pop(0),
    )
    start, end = meter.sample(), meter.sample()
    usage = usage_between(start, end, meter.roles())
    # pid 1 grew 0.5 s; pid 3 started after the first sample (all 0.4 s count); pid 4 was running
    # before but unseen (unknown share: nothing); pid 2 exited (nothing after the first sample).
    assert usage.seconds["postgres"] == pytest.approx(0.9)


def test_connection_owners_finds_this_process() -> None:
    import socket

    from tgstream.loadtest.pg_backends import connection_owners

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        owners = connection_owners(port)
        assert owners[client.getsockname()[1]] == os.getpid()
    finally:
        client.close()
        server.close()
