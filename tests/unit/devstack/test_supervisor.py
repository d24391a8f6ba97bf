from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

from tgstream.devstack import supervisor


def test_port_in_use_sees_a_listener_and_not_a_closed_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert supervisor.port_in_use("127.0.0.1", port)
    assert not supervisor.port_in_use("127.0.0.1", port)


def test_spawned_process_is_detached_logged_recorded_and_stoppable(tmp_path: Path) -> None:
    log, pid_file = tmp_path / "svc.log", tmp_path / "svc.pid"
    script = (
        "import os, sys, time; "
        "print('REA' + 'DY', os.getsid(0), sys.stdin.read() == '', flush=True); time.sleep(60)"
    )

    proc = supervisor.spawn([sys.executable, "-c", script], log_path=log, pid_path=pid_file, port=1234)
    record = supervisor.read_record(pid_file)
    assert record is not None
    try:
        assert record.pid == proc.pid
        assert record.port == 1234
        assert supervisor.is_alive(record)
        assert supervisor.wait_until(lambda: "\nREADY" in log.read_text(), timeout_s=10)
        ready = next(line for line in log.read_text().splitlines() if line.startswith("READY"))
        _, session, stdin_empty = ready.split()
        assert int(session) != os.getsid(0), "service must run in its own session"
        assert stdin_empty == "True", "stdin must be /dev/null"
    finally:
        assert supervisor.stop(record, sig=signal.SIGTERM, timeout_s=10)
        proc.wait(timeout=10)
    assert not supervisor.is_alive(record)
    assert not supervisor.stop(record, sig=signal.SIGTERM, timeout_s=1)


def test_a_recycled_pid_is_not_mistaken_for_our_process() -> None:
    me = supervisor.ProcessRecord(pid=os.getpid(), create_time=1.0, port=1, command=("x",))

    assert not supervisor.is_alive(me)


def test_a_wall_clock_step_does_not_make_our_process_a_stranger(tmp_path: Path) -> None:
    """The start time counted from boot survives a clock step; the wall-clock one moved 8 s here."""
    since_boot = supervisor.started_since_boot(os.getpid())
    stepped = supervisor.ProcessRecord(
        pid=os.getpid(), create_time=1.0, port=1, command=("x",), since_boot=since_boot
    )
    assert supervisor.is_alive(stepped)
    (tmp_path / "x.pid").write_text(stepped.to_json())
    assert supervisor.read_record(tmp_path / "x.pid") == stepped
    other = supervisor.ProcessRecord(
        pid=os.getpid(), create_time=1.0, port=1, command=("x",), since_boot=since_boot - 30
    )
    assert not supervisor.is_alive(other)


def test_unreadable_pid_file_means_no_record(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    assert supervisor.read_record(pid_file) is None
    pid_file.write_text("12345")
    assert supervisor.read_record(pid_file) is None


def test_tail_returns_only_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert supervisor.tail(log, 3) == ["line 97", "line 98", "line 99"]
    assert supervisor.tail(tmp_path / "missing.log", 3) == []
