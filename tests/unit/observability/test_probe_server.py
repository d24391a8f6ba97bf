"""The probe server answers real HTTP on 127.0.0.1 with metrics, liveness and readiness."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from tgstream.observability.metrics import MetricsServerError, ProbeServer, process_metrics_port


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serves_metrics_health_and_readiness() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_events_total", "events", registry=registry).inc(3)
    ready = {"value": False}
    with ProbeServer("127.0.0.1", 0, ready=lambda: ready["value"], registry=registry) as server:
        status, body = _get(server.port, "/metrics")
        assert status == 200
        assert "probe_test_events_total 3.0" in body

        assert _get(server.port, "/healthz") == (200, "alive\n")
        assert _get(server.port, "/readyz") == (503, "not ready\n")
        ready["value"] = True
        assert _get(server.port, "/readyz") == (200, "ready\n")
        assert _get(server.port, "/nope")[0] == 404


def test_a_raising_check_is_a_failing_probe_not_a_crash() -> None:
    def broken() -> bool:
        raise RuntimeError("dependency exploded")

    with ProbeServer("127.0.0.1", 0, live=broken, registry=CollectorRegistry()) as server:
        assert _get(server.port, "/healthz") == (503, "not alive\n")


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"127.0.0.1:{port}"):
            ProbeServer("127.0.0.1", port, registry=CollectorRegistry()).start()


def test_stop_releases_the_port() -> None:
    server = ProbeServer("127.0.0.1", 0, registry=CollectorRegistry()).start()
    port = server.port
    server.stop()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_process_ports_are_distinct_per_local_process() -> None:
    assert [process_metrics_port(9100, i) for i in range(3)] == [9100, 9101, 9102]
    assert process_metrics_port(0, 2) == 0
    with pytest.raises(ValueError, match="process_id"):
        process_metrics_port(9100, -1)
