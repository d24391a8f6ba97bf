"""Start, find and stop background service processes that outlive the command that started them.

Every process gets its own session (so a Ctrl-C or a CI job's process-group kill of `tgstream dev up`
does not reach it), stdin from /dev/null, and stdout/stderr into its own log file: a daemon that held
our pipes open would make CI wait on it until it timed out. A pid file records the pid together with
the process start time, so a recycled pid is never mistaken for our service.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil


class SupervisorError(Exception):
    """A process could not be started or stopped."""


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: enough to recognise the exact process later.

    ``since_boot`` is the start time counted from boot, which identifies the process even when the
    wall clock steps (psutil's ``create_time`` moves with the clock: a VM here jumped 8 s and every
    running service looked like a stranger to ``dev down``). ``create_time`` stays for older files.
    """

    pid: int
    create_time: float
    port: int
    command: tuple[str, ...]
    since_boot: float = -1.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "command": list(self.command)})

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            port=int(data["port"]),
            command=tuple(data["command"]),
            since_boot=float(data.get("since_boot", -1.0)),
        )


def started_since_boot(pid: int) -> float:
    """Seconds from boot to the process start; -1 when the process cannot be read."""
    try:
        return float(psutil.Process(pid).create_time() - psutil.boot_time())
    except psutil.Error:
        return -1.0


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a service as (Postgres refuses to run as root)."""

    user: str
    group: str


def spawn(
    command: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached, logging to ``log_path``, and record it in ``pid_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with log_path.open("ab") as log:
        log.write(f"\n==> {stamp} tgstream dev: starting {' '.join(command)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=run_as.user if run_as else None,
                group=run_as.group if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except OSError as exc:
            raise SupervisorError(f"could not start {command[0]}: {exc}") from exc
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        create_time = 0.0
    record = ProcessRecord(proc.pid, create_time, port, tuple(command), started_since_boot(proc.pid))
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(record.to_json())
    return proc


def read_record(pid_path: Path) -> ProcessRecord | None:
    """The recorded process, or None when there is no usable pid file."""
    try:
        return ProcessRecord.from_json(pid_path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_alive(record: ProcessRecord) -> bool:
    """True only for the very process we started: same pid, same start time, not a zombie."""
    try:
        proc = psutil.Process(record.pid)
        if record.since_boot >= 0:
            if abs(proc.create_time() - psutil.boot_time() - record.since_boot) > 1.0:
                return False
        elif record.create_time and abs(proc.create_time() - record.create_time) > 1.0:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop(record: ProcessRecord, *, sig: signal.Signals, timeout_s: float) -> bool:
    """Signal the process, wait for it to exit, and kill it if it will not. True if it was running."""
    if not is_alive(record):
        return False
    try:
        proc = psutil.Process(record.pid)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    except psutil.Error as exc:
        raise SupervisorError(f"could not stop pid {record.pid}: {exc}") from exc
    return True


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file, without reading a huge file into memory."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        kept = deque(handle, maxlen=lines)
    return [line.decode("utf-8", "replace").rstrip("\n") for line in kept]


def port_in_use(host: str, port: int, *, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def file_lock(path: Path, *, on_wait: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock so concurrent `dev up`/`dev down` calls run one after another."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                print(on_wait, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or the timeout passes (bounded; never loops forever)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
