"""The services `tgstream dev up` started answer, and `dev status` agrees."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tgstream.config import Settings
from tgstream.devstack.stack import DevStack, State

pytestmark = pytest.mark.integration


def test_dev_status_reports_every_requested_service_healthy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tgstream", "dev", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", ["redis", "postgres", "kafka", "llm-stub"])
def test_core_service_answers_its_health_probe(settings: Settings, service: str) -> None:
    row = next(row for row in DevStack(settings).status() if row.name == service)

    assert row.state in {State.RUNNING, State.UNMANAGED, State.EXTERNAL}, (
        f"{service} is {row.state}: run `tgstream dev up`"
    )


def test_second_dev_up_leaves_running_services_alone(settings: Settings) -> None:
    stack = DevStack(settings)
    before = {row.name: row.pid for row in stack.status()}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tgstream",
            "dev",
            "up",
            "--only",
            "redis",
            "--only",
            "postgres",
            "--only",
            "kafka",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    after = {row.name: row.pid for row in stack.status()}
    for name in ("redis", "postgres", "kafka"):
        assert after[name] == before[name], f"{name} was restarted"
