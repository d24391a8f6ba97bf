"""Start the tgstream processes — and the doubles they talk to — as one unit, and stop them reliably.

Used by the load test, the benchmarks, the demo and end-to-end tests. The shared services
(Kafka, Redis, Postgres, the local LLM) come from `tgstream dev up`; this module starts what a
run needs on top of them: the fake Telegram Bot API, the OpenAI stub (stub mode), the gateway,
the dataflow (one or more processes) and the sender, each on a free loopback port, each logging to
its own file under ``.dev/logs/stack-<run>/``.

Isolation: every run gets its own Kafka topics (deleted at the end), its own recovery and
Parquet directories and its own ports, so runs and parallel test suites never see each other's
messages. Start order follows the data path backwards (Telegram and LLM first, gateway before the
dataflow is fine because Kafka buffers), and each process must answer ``/healthz`` before the
next starts; one that dies or stays silent fails the start with the tail of its log.

Stopping: SIGTERM in reverse order, then SIGKILL after a grace period. Children also get
``PR_SET_PDEATHSIG``, so even a SIGKILLed load test does not leave them running.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import structlog

from tgstream.config import Settings, load_settings
from tgstream.devstack import supervisor
from tgstream.loadtest.cpu import ProcessGroup, Role

log = structlog.get_logger(__name__)

LlmMode = Literal["stub", "local"]
_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0
METRICS_FLAG = "--metrics-port"
RUNNING = "running"


class StackError(RuntimeError):
    """A process of the stack would not start; the message names it and quotes its log."""


@dataclass(frozen=True)
class StackOptions:
    run_id: str
    llm: LlmMode = "stub"
    stub_latency_ms: float = 300.0
    dataflow_processes: int = 1
    gateway_workers: int = 1
    sender: bool = True
    keep_topics: bool = False
    """Keep the run's topics and its recovery directory (deleted by default when the stack stops)."""
    high_send_limits: bool = True
    """Lift the sender's 30 msg/s global Bot API limit: a load test measures the pipeline, not a quota."""
    start_timeout_s: float = 90.0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One process to start: ``tgstream <args> <port_flag> <port>``."""

    name: str
    role: Role
    port: int
    args: tuple[str, ...]
    port_flag: str = "--port"
    ready_phase: str | None = None
    """When set, healthy also means the /healthz JSON has this ``phase`` (the dataflow's "running")."""

    @property
    def command(self) -> tuple[str, ...]:
        return (*self.args, self.port_flag, str(self.port))


@dataclass
class StackProcess:
    name: str
    role: Role
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _healthy(url: str, phase: str | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback http only
            body = response.read()
            ok = bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
    if not ok or phase is None:
        return ok
    try:
        return bool(json.loads(body).get("phase") == phase)
    except (ValueError, AttributeError):
        return False


class Stack:
    """``with Stack(options) as stack:`` — the run's processes, healthy, and stopped on exit."""

    def __init__(self, options: StackOptions, *, settings: Settings | None = None) -> None:
        self.options = options
        self.base = settings or load_settings()
        dev = self.base.dev_dir.resolve()
        self.run_dir = dev / "loadtest" / options.run_id
        self.log_dir = dev / "logs" / f"stack-{options.run_id}"
        self.processes: list[StackProcess] = []
        ports = free_ports(4 + options.dataflow_processes * 2)
        self.telegram_port, self.stub_port, self.gateway_port, self.sender_port = ports[:4]
        self._dataflow_ports = ports[4:]
        self._bot_id = 10**9 + secrets.randbelow(9 * 10**9)
        """A bot of its own: the sender keys its Redis limits and sent-markers by bot id."""
        prefix = f"lt-{options.run_id}"
        self.topics = {
            "TOPIC_MESSAGES": f"{prefix}-messages",
            "TOPIC_RESPONSES": f"{prefix}-responses",
            "TOPIC_EVENTS": f"{prefix}-events",
            "TOPIC_DEAD_LETTER": f"{prefix}-dead-letter",
            "TOPIC_CHAT_ACTIONS": f"{prefix}-chat-actions",
        }
        self.env = self._environment()
        self.settings = load_settings(**{k.lower(): v for k, v in self.env.items() if k.isupper()})

    @property
    def telegram_url(self) -> str:
        return f"http://127.0.0.1:{self.telegram_port}"

    @property
    def stub_url(self) -> str:
        return f"http://127.0.0.1:{self.stub_port}/v1"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/webhook"

    @property
    def parquet_dir(self) -> Path:
        return self.run_dir / "parquet"

    def _environment(self) -> dict[str, str]:
        """Settings for the child processes: env vars, so each process reads them as in production."""
        env = {
            **self.topics,
            "TELEGRAM_BOT_TOKEN": f"{self._bot_id}:loadtest-{self.options.run_id}",
            "TELEGRAM_API_URL": self.telegram_url,
            "WEBHOOK_URL": self.webhook_url,
            "RECOVERY_DIR": str(self.run_dir / "recovery"),
            "PARQUET_DIR": str(self.parquet_dir),
            "LOG_FORMAT": "json",
        }
        if self.options.llm == "stub":
            env |= {
                "OPENAI_BASE_URL": self.stub_url,
                "LLM_STUB_URL": self.stub_url,
                "EMBEDDINGS_BACKEND": "openai",
                "EMBEDDINGS_BASE_URL": self.stub_url,
            }
        if self.options.high_send_limits:
            env["SEND_GLOBAL_PER_S"] = "100000"
        return env | dict(self.options.env)

    def _spawn(self, step: Step) -> StackProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{step.name}.log"
        command = [sys.executable, "-m", "tgstream", *step.command]
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                preexec_fn=_die_with_parent,
            )
        proc = StackProcess(step.name, step.role, popen, step.port, log_path)
        self.processes.append(proc)
        record = supervisor.ProcessRecord(
            popen.pid,
            _create_time(popen.pid),
            step.port,
            tuple(command),
            supervisor.started_since_boot(popen.pid),
        )
        with contextlib.suppress(OSError):
            pid_path = self.run_dir / "run" / f"{step.name}.pid"
            pid_path.parent.mkdir(parents=True, exist_ok=True)
            pid_path.write_text(record.to_json())
        return proc

    def _wait_healthy(self, proc: StackProcess, ready_phase: str | None) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        while not _healthy(proc.health_url, ready_phase):
            if proc.popen.poll() is not None:
                raise StackError(self._failure(proc, f"exited with code {proc.popen.returncode}"))
            if time.monotonic() > deadline:
                raise StackError(
                    self._failure(proc, f"not healthy after {self.options.start_timeout_s:.0f} s")
                )
            time.sleep(0.2)

    def _failure(self, proc: StackProcess, what: str) -> str:
        tail = "\n".join(supervisor.tail(proc.log_path, 15))
        return f"{proc.name} {what} (log {proc.log_path}):\n{tail}"

    def plan(self) -> list[Step]:
        """The processes to start, in order, with their arguments (env comes from :attr:`env`)."""
        o = self.options
        steps = [Step("fake-telegram", "double", self.telegram_port, ("fake-telegram",))]
        if o.llm == "stub":
            stub_args = ("llm-stub", "--latency-ms", str(o.stub_latency_ms), "--seed", "1")
            steps.append(Step("llm-stub", "double", self.stub_port, stub_args))
        gateway_args = ("gateway", "--workers", str(o.gateway_workers))
        steps.append(Step("gateway", "pipeline", self.gateway_port, gateway_args))
        count = o.dataflow_processes
        metrics_ports, cluster_ports = self._dataflow_ports[:count], self._dataflow_ports[count:]
        addresses = ";".join(f"127.0.0.1:{port}" for port in cluster_ports)
        for i, port in enumerate(metrics_ports):
            name, args = (
                ("dataflow", ("dataflow",))
                if count == 1
                else (f"dataflow-{i}", ("dataflow", "-i", str(i), "-a", addresses))
            )
            steps.append(Step(name, "pipeline", port, args, METRICS_FLAG, RUNNING))
        if o.sender:
            sender_args = ("sender", "--group-id", f"lt-{o.run_id}-sender")
            steps.append(Step("sender", "pipeline", self.sender_port, sender_args))
        return steps

    def start(self) -> None:
        """Create the run's topics and schema, then start and health-wait each process in turn."""
        from tgstream.loadtest.stack_setup import create_topics, migrate_schema

        self.run_dir.mkdir(parents=True, exist_ok=True)
        create_topics(self.settings)
        migrate_schema(self.settings)
        for step in self.plan():
            self._wait_healthy(self._spawn(step), step.ready_phase)

    def stop(self) -> None:
        """SIGTERM every process in reverse start order, SIGKILL what outlives the grace period."""
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)
        if not self.options.keep_topics:
            from tgstream.loadtest.stack_setup import delete_topics

            left = delete_topics(self.settings, list(self.topics.values()))
            if left:
                log.warning("stack.topics_left_behind", topics=left)
            # The recovery state points into the topics just deleted: tens of MB of nothing.
            shutil.rmtree(self.run_dir / "recovery", ignore_errors=True)

    def kill(self, name: str) -> None:
        """SIGKILL one running process of the stack (fault tests); :meth:`restart` brings it back."""
        for proc in self.processes:
            if proc.name == name and proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait(timeout=10)
                return
        raise StackError(f"no running process named {name!r}")

    def restart(self, name: str) -> StackProcess:
        """Start a stopped process again with its original arguments and port, and wait until healthy."""
        step = next((s for s in self.plan() if s.name == name), None)
        if step is None:
            raise StackError(f"no process named {name!r} in the plan")
        if any(p.name == name and p.popen.poll() is None for p in self.processes):
            raise StackError(f"{name} is still running; kill it first")
        self.processes = [p for p in self.processes if p.name != name]
        proc = self._spawn(step)
        self._wait_healthy(proc, step.ready_phase)
        return proc

    def groups(self) -> list[ProcessGroup]:
        """The started processes as CPU groups (dataflow processes pooled under one name)."""
        return [
            ProcessGroup("dataflow" if p.name.startswith("dataflow") else p.name, p.role, (p.popen.pid,))
            for p in self.processes
        ]

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


@contextlib.contextmanager
def running_stack(options: StackOptions, *, settings: Settings | None = None) -> Iterator[Stack]:
    with Stack(options, settings=settings) as stack:
        yield stack
