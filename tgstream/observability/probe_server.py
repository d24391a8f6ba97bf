"""``/metrics``, ``/healthz`` and ``/readyz`` for every tgstream process, on a small thread of its own.

One server for the dataflow, the poller, the sender and the adaptation job. It runs on a plain
``ThreadingHTTPServer`` rather than on the process's event loop: Bytewax owns the dataflow's
main thread and the I/O loops are busy with real work, and a probe server that shares a stuck
loop cannot say that it is stuck. From a thread it keeps answering, so ``/healthz`` can report
the loop's lag instead of timing out.

- ``/healthz`` (liveness): ``health()`` returns ``(healthy, details)``; 200 or 503 with the
  details as JSON. Without a check the process is alive while it answers.
- ``/readyz`` (readiness): ``readiness()`` returns named values; 200 only when all are truthy.
  Without it, readiness is liveness.
- ``/metrics``: the registry in the Prometheus text format, plus ``conversation_memory_usage_mb``
  (:mod:`tgstream.observability.process_metrics`), added to the registry here so that every
  process serving metrics through this server reports its memory under one name.

``host`` defaults to ``METRICS_HOST`` (127.0.0.1); containers set 0.0.0.0 so the kubelet and
Prometheus can reach it. ``port=0`` binds a free port, reported by :attr:`ProbeServer.port`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tgstream.observability.process_metrics import register_process_metrics

HealthCheck = Callable[[], tuple[bool, Mapping[str, Any]]]
ReadinessCheck = Callable[[], Mapping[str, object]]

JSON = "application/json"


def always_healthy() -> tuple[bool, Mapping[str, Any]]:
    return True, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._send_check(*self.server.health())
        elif path == "/readyz":
            readiness = self.server.readiness
            if readiness is None:
                self._send_check(*self.server.health())
            else:
                state = dict(readiness())
                self._send_check(all(bool(v) for v in state.values()), state)
        else:
            self._send(404, b'{"error":"not found"}', JSON)

    def _send_check(self, ok: bool, details: Mapping[str, Any]) -> None:
        body = orjson.dumps({"status": "ok" if ok else "unhealthy", **details}, default=str)
        self._send(200 if ok else 503, body, JSON)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the real logs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        health: HealthCheck,
        readiness: ReadinessCheck | None,
    ) -> None:
        self.registry = registry
        self.health = health
        self.readiness = readiness
        super().__init__(address, _Handler)


class ProbeServer:
    """Binds on construction (so a taken port fails at once, as ``OSError``); serves after :meth:`start`.

    Lifecycle: ``start()`` -> serving on thread ``probe-server`` -> ``stop()`` (or ``await
    aclose()`` from async code, which does not block the loop while the thread winds down).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        registry: CollectorRegistry = REGISTRY,
        health: HealthCheck = always_healthy,
        readiness: ReadinessCheck | None = None,
    ) -> None:
        self.host = host
        register_process_metrics(registry)
        self._server = _Server((host, port), registry, health, readiness)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="probe-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)
