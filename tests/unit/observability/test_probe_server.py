"""The shared probe server over real HTTP on 127.0.0.1: metrics, liveness, readiness, shutdown."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from tgstream.config import Settings, load_settings
from tgstream.observability.probe_server import ProbeServer


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe_test_things", "things", registry=registry).inc(3)
    return registry


@pytest.fixture
def health() -> dict[str, Any]:
    return {"ok": True, "lag": 0.01}


@pytest.fixture
def server(registry: CollectorRegistry, health: dict[str, Any]) -> Iterator[ProbeServer]:
    def check() -> tuple[bool, Mapping[str, Any]]:
        return bool(health["ok"]), {"loop_lag_s": health["lag"]}

    probe = ProbeServer(registry=registry, health=check).start()
    yield probe
    probe.stop()


def test_metrics_serves_the_given_registry(server: ProbeServer) -> None:
    status, body = get(f"{server.url}/metrics")
    assert status == 200
    assert b"probe_test_things_total 3.0" in body


def test_healthz_reports_the_check_and_its_details(server: ProbeServer, health: dict[str, Any]) -> None:
    status, body = get(f"{server.url}/healthz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "loop_lag_s": 0.01})
    health.update(ok=False, lag=7.5)
    status, body = get(f"{server.url}/healthz")
    assert (status, orjson.loads(body)) == (503, {"status": "unhealthy", "loop_lag_s": 7.5})


def test_readyz_without_readiness_is_liveness(server: ProbeServer, health: dict[str, Any]) -> None:
    health["ok"] = False
    assert get(f"{server.url}/readyz")[0] == 503


def test_readyz_needs_every_named_check(registry: CollectorRegistry) -> None:
    state = {"kafka": True, "redis": False}
    probe = ProbeServer(registry=registry, readiness=lambda: state).start()
    try:
        status, body = get(f"{probe.url}/readyz")
        assert (status, orjson.loads(body)) == (503, {"status": "unhealthy", "kafka": True, "redis": False})
        state["redis"] = True
        assert get(f"{probe.url}/readyz")[0] == 200
        assert get(f"{probe.url}/healthz")[0] == 200, "alive while it answers"
        assert get(f"{probe.url}/nope")[0] == 404
    finally:
        probe.stop()


def test_aclose_releases_the_port_without_blocking_the_loop(registry: CollectorRegistry) -> None:
    async def run() -> int:
        probe = ProbeServer(registry=registry).start()
        port = probe.port
        await probe.aclose()
        await probe.aclose()
        return port

    port = asyncio.run(run())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_host_defaults_to_loopback_and_is_configurable() -> None:
    assert Settings.model_fields["metrics_host"].default == "127.0.0.1"
    assert load_settings(metrics_host="0.0.0.0").metrics_host == "0.0.0.0"
