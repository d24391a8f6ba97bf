"""The dev stack's lifecycle: bring services up idempotently, report their state, bring them down.

Start-up is in two phases so slow services overlap: every service that needs starting is spawned
first, then all are polled together until each answers its health probe, dies, or times out. A
failure of one service never hides the others' results; they are all reported at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from subprocess import Popen

from tgstream.config import Settings
from tgstream.devstack import supervisor
from tgstream.devstack.kafka_broker import KafkaBroker
from tgstream.devstack.llama_server import LlamaServer
from tgstream.devstack.llm_stub_server import LlmStubServer
from tgstream.devstack.paths import DevPaths
from tgstream.devstack.postgres_server import PostgresServer
from tgstream.devstack.redis_server import RedisServer
from tgstream.devstack.service import DevStackError, Service

SERVICE_TYPES: tuple[type[Service], ...] = (
    RedisServer,
    PostgresServer,
    KafkaBroker,
    LlmStubServer,
    LlamaServer,
)
SERVICE_NAMES = tuple(cls.name for cls in SERVICE_TYPES)
LOG_LINES_ON_FAILURE = 20
POLL_INTERVAL_S = 0.3


class State(StrEnum):
    RUNNING = "running"
    UNMANAGED = "running, not started by tgstream"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"
    EXTERNAL = "external"


class Outcome(StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already running"
    UNMANAGED = "running, not started by tgstream"
    EXTERNAL = "external, left alone"
    FAILED = "failed"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: State
    pid: int | None
    address: str
    wanted: bool


@dataclass
class UpResult:
    name: str
    outcome: Outcome
    address: str
    seconds: float = 0.0
    error: str = ""


@dataclass
class _Starting:
    service: Service
    started: float
    proc: Popen[bytes] | None = None
    record: supervisor.ProcessRecord | None = None
    done: bool = field(default=False)


Report = Callable[[str, str], None]
"""Progress callback: (service name, what is happening now)."""


def _quiet(_name: str, _message: str) -> None:
    """Default progress callback for callers that do not display progress."""


class DevStack:
    """All dev services described by one Settings, with their state under one ``.dev/`` directory."""

    def __init__(
        self,
        settings: Settings,
        paths: DevPaths | None = None,
        service_types: Sequence[type[Service]] = SERVICE_TYPES,
    ) -> None:
        self.settings = settings
        self.paths = paths or DevPaths.at(settings.dev_dir)
        self.services = {cls.name: cls(settings, self.paths) for cls in service_types}
        self._names = tuple(self.services)

    def select(self, names: Sequence[str] | None) -> list[Service]:
        if not names:
            return list(self.services.values())
        unknown = [name for name in names if name not in self.services]
        if unknown:
            raise DevStackError(f"unknown service {', '.join(unknown)}; choose from {', '.join(self._names)}")
        return [svc for name, svc in self.services.items() if name in names]

    def _wanted(self) -> set[str]:
        try:
            return set(json.loads(self.paths.wanted_file.read_text()))
        except (OSError, ValueError):
            return set(self._names)

    def _set_wanted(self, names: set[str]) -> None:
        self.paths.wanted_file.write_text(json.dumps(sorted(names)))

    def status(self) -> list[ServiceStatus]:
        wanted = self._wanted()
        rows = []
        for svc in self.services.values():
            record = supervisor.read_record(self.paths.pid_file(svc.name))
            ours = record is not None and record.port == svc.endpoint.port and supervisor.is_alive(record)
            pid = record.pid if record is not None and ours else None
            if not svc.endpoint.is_loopback:
                state = State.EXTERNAL
            elif pid is not None:
                state = State.RUNNING if svc.probe() else State.UNHEALTHY
            elif supervisor.port_in_use(svc.endpoint.host, svc.endpoint.port) and svc.probe():
                state = State.UNMANAGED
            else:
                state = State.STOPPED
            rows.append(ServiceStatus(svc.name, state, pid, svc.display_address, svc.name in wanted))
        return rows

    def up(self, services: Sequence[Service], report: Report = _quiet) -> list[UpResult]:
        """Start what is not running; leave healthy, unmanaged and external services alone."""
        self.paths.ensure()
        with supervisor.file_lock(
            self.paths.lock_file, on_wait="waiting for another `tgstream dev` command..."
        ):
            self._set_wanted(
                self._wanted_before_up() | {svc.name for svc in services if svc.endpoint.is_loopback}
            )
            results: dict[str, UpResult] = {}
            starting: list[_Starting] = []
            for svc in services:
                try:
                    begun = self._begin(svc, report)
                except (DevStackError, supervisor.SupervisorError) as exc:
                    results[svc.name] = UpResult(
                        svc.name, Outcome.FAILED, svc.display_address, error=str(exc)
                    )
                    report(svc.name, "failed")
                    continue
                if isinstance(begun, UpResult):
                    results[svc.name] = begun
                else:
                    starting.append(begun)
            for item in self._await_healthy(starting, report):
                results[item.name] = item
        return [results[svc.name] for svc in services]

    def _wanted_before_up(self) -> set[str]:
        return self._wanted() if self.paths.wanted_file.exists() else set()

    def _begin(self, svc: Service, report: Report) -> UpResult | _Starting:
        address = svc.display_address
        if not svc.endpoint.is_loopback:
            report(svc.name, "external")
            return UpResult(svc.name, Outcome.EXTERNAL, address)
        pid_file = self.paths.pid_file(svc.name)
        record = supervisor.read_record(pid_file)
        if record is not None and supervisor.is_alive(record):
            if record.port != svc.endpoint.port:
                raise DevStackError(
                    f"{svc.name} from {self.paths.root} already runs on port {record.port} "
                    f"(pid {record.pid}), but {svc.setting} asks for {svc.endpoint.port}: "
                    f"`tgstream dev down --only {svc.name}` first, or set DEV_DIR to run a second stack"
                )
            report(svc.name, f"checking pid {record.pid}")
            if svc.probe():
                return UpResult(svc.name, Outcome.ALREADY_RUNNING, address)
            return _Starting(svc, time.monotonic(), record=record)
        pid_file.unlink(missing_ok=True)
        for port in (svc.endpoint.port, *svc.extra_ports):
            if supervisor.port_in_use(svc.endpoint.host, port):
                if port == svc.endpoint.port and svc.probe():
                    return UpResult(svc.name, Outcome.UNMANAGED, address)
                raise DevStackError(
                    f"port {port} taken by another process (needed by {svc.name}); "
                    f"free it or change {svc.setting}"
                )
        report(svc.name, "checking install")
        svc.check_installed()
        report(svc.name, "preparing")
        svc.prepare()
        launch = svc.launch()
        proc = supervisor.spawn(
            launch.command,
            log_path=self.paths.log_file(svc.name),
            pid_path=pid_file,
            port=svc.endpoint.port,
            env=launch.env,
            run_as=launch.run_as,
        )
        report(svc.name, f"starting (pid {proc.pid})")
        return _Starting(svc, time.monotonic(), proc=proc)

    def _await_healthy(self, starting: list[_Starting], report: Report) -> list[UpResult]:
        results = []
        while any(not item.done for item in starting):
            for item in starting:
                if item.done:
                    continue
                result = self._poll(item)
                if result is not None:
                    item.done = True
                    results.append(result)
                    report(item.service.name, "healthy" if result.outcome is Outcome.STARTED else "failed")
            time.sleep(POLL_INTERVAL_S)
        return results

    def _poll(self, item: _Starting) -> UpResult | None:
        svc = item.service
        elapsed = time.monotonic() - item.started
        exited = item.proc.poll() if item.proc is not None else None
        gone = item.record is not None and not supervisor.is_alive(item.record)
        if exited is not None or gone:
            return self._failure(svc, elapsed, f"{svc.name} died during start-up (exit {exited})")
        if svc.probe():
            try:
                svc.after_start()
            except DevStackError as exc:
                return UpResult(svc.name, Outcome.FAILED, svc.display_address, elapsed, str(exc))
            return UpResult(svc.name, Outcome.STARTED, svc.display_address, elapsed)
        if elapsed > svc.start_timeout_s:
            record = supervisor.read_record(self.paths.pid_file(svc.name))
            if record is not None and item.proc is not None:
                supervisor.stop(record, sig=svc.stop_signal, timeout_s=svc.stop_timeout_s)
                self.paths.pid_file(svc.name).unlink(missing_ok=True)
            return self._failure(svc, elapsed, f"{svc.name} not healthy after {svc.start_timeout_s:.0f} s")
        return None

    def _failure(self, svc: Service, elapsed: float, headline: str) -> UpResult:
        log = self.paths.log_file(svc.name)
        lines = supervisor.tail(log, LOG_LINES_ON_FAILURE)
        detail = "\n".join([f"{headline}; last {len(lines)} lines of {log}:", *lines])
        return UpResult(svc.name, Outcome.FAILED, svc.display_address, elapsed, detail)

    def down(self, services: Sequence[Service], report: Report = _quiet) -> list[tuple[str, bool]]:
        """Stop the services we started, newest dependency last; never touches unmanaged processes."""
        self.paths.ensure()
        stopped = []
        with supervisor.file_lock(
            self.paths.lock_file, on_wait="waiting for another `tgstream dev` command..."
        ):
            for svc in reversed(services):
                pid_file = self.paths.pid_file(svc.name)
                record = supervisor.read_record(pid_file)
                was_running = False
                if record is not None:
                    report(svc.name, f"stopping pid {record.pid}")
                    was_running = supervisor.stop(record, sig=svc.stop_signal, timeout_s=svc.stop_timeout_s)
                pid_file.unlink(missing_ok=True)
                stopped.append((svc.name, was_running))
            self._set_wanted(self._wanted_before_up() - {svc.name for svc in services})
        return list(reversed(stopped))
