"""The stack's lifecycle with small real processes standing in for the services."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tgstream.config import load_settings
from tgstream.devstack.paths import DevPaths
from tgstream.devstack.service import Endpoint, Launch, Service
from tgstream.devstack.stack import DevStack, Outcome, State
from tgstream.devstack.supervisor import port_in_use


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpService(Service):
    """A real listener: Python's http.server on a free port."""

    name = "web"
    setting = "WEB_URL"
    start_timeout_s = 20.0
    port = 0

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    def check_installed(self) -> None:
        """Python is always there."""

    def launch(self) -> Launch:
        return Launch((sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(self.port)))

    def probe(self) -> bool:
        return port_in_use("127.0.0.1", self.port)


class CrashingService(HttpService):
    name = "crash"

    def launch(self) -> Launch:
        script = "import sys; print('fatal: bad config line 3', flush=True); sys.exit(3)"
        return Launch((sys.executable, "-c", script))


class SilentService(HttpService):
    """Runs but never becomes healthy."""

    name = "silent"
    start_timeout_s = 1.0

    def launch(self) -> Launch:
        return Launch((sys.executable, "-c", "import time; time.sleep(60)"))

    def probe(self) -> bool:
        return False


@pytest.fixture
def stack(tmp_path: Path) -> DevStack:
    HttpService.port = _free_port()
    types: list[type[Service]] = [HttpService, CrashingService, SilentService]
    return DevStack(load_settings(dev_dir=tmp_path), DevPaths.at(tmp_path), service_types=types)


def test_start_is_idempotent_and_down_stops_it(stack: DevStack) -> None:
    [first] = stack.up(stack.select(["web"]))
    [second] = stack.up(stack.select(["web"]))
    try:
        assert first.outcome is Outcome.STARTED
        assert second.outcome is Outcome.ALREADY_RUNNING
        assert stack.paths.log_file("web").exists()
        [row] = [row for row in stack.status() if row.name == "web"]
        assert row.state is State.RUNNING
        assert row.pid is not None
    finally:
        assert stack.down(stack.select(["web"])) == [("web", True)]
    assert not port_in_use("127.0.0.1", HttpService.port)
    assert not stack.paths.pid_file("web").exists()


def test_a_service_that_dies_during_start_up_reports_its_last_log_lines(stack: DevStack) -> None:
    [result] = stack.up(stack.select(["crash"]))

    assert result.outcome is Outcome.FAILED
    assert "died during start-up (exit 3)" in result.error
    assert "fatal: bad config line 3" in result.error


def test_a_service_that_never_gets_healthy_times_out_and_is_stopped(stack: DevStack) -> None:
    [result] = stack.up(stack.select(["silent"]))

    assert result.outcome is Outcome.FAILED
    assert "not healthy after" in result.error
    [row] = [row for row in stack.status() if row.name == "silent"]
    assert row.state is State.STOPPED


def test_status_flags_a_requested_service_that_is_down(stack: DevStack) -> None:
    stack.up(stack.select(["crash"]))

    rows = {row.name: row for row in stack.status()}

    assert rows["crash"].wanted
    assert rows["crash"].state is State.STOPPED
    assert not rows["web"].wanted
