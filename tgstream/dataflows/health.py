"""``/metrics`` and ``/healthz`` for the dataflow process, on a small thread of its own.

Bytewax owns the main thread (its Rust runtime) and our I/O loop is busy with turns, so the
probe server is a plain ``ThreadingHTTPServer``: it keeps answering even when both are stuck,
which is exactly when a liveness probe must be able to say so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def _handler(check: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                healthy, details = check()
                body = orjson.dumps({"status": "ok" if healthy else "unhealthy", **details})
                self._send(200 if healthy else 503, body, "application/json")
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would drown the real logs."""

    return Handler


class ProbeServer:
    """Serves until :meth:`stop`; ``port=0`` binds a free port, reported by :attr:`port`."""

    def __init__(self, host: str, port: int, check: HealthCheck) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(check))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="probe-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
