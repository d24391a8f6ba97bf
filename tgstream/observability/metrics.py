"""``/metrics``, ``/healthz`` and ``/readyz`` for processes that have no HTTP server of their own.

The gateway serves these on its own aiohttp app; the dataflow, the sender and one-shot jobs
start a :class:`ProbeServer` on ``METRICS_PORT`` instead.

Several processes on one host: one endpoint per process, not prometheus-client's multiprocess
mode. A local Bytewax cluster (``tgstream dataflow --processes M``) gives process ``i`` the port
``METRICS_PORT + i`` (:func:`process_metrics_port`); in Kubernetes each pod is one process and
is scraped on its own. Multiprocess mode exists for pre-forking web servers that share a port; it
needs a shared, wiped-at-start directory, cannot report live gauges per process without a
``multiprocess_mode`` on every Gauge, and hides which Bytewax process is slow, which is
exactly what an operator rescaling the cluster needs to see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

Check = Callable[[], bool]
StartResponse = Callable[..., Any]


class MetricsServerError(Exception):
    """The probe server could not bind its port."""


def process_metrics_port(base_port: int, process_id: int) -> int:
    """Port of the ``process_id``-th local process; 0 stays 0 (metrics off or an ephemeral port).

    >>> process_metrics_port(9100, 1), process_metrics_port(0, 3)
    (9101, 0)
    """
    if process_id < 0:
        raise ValueError(f"process_id must be >= 0, got {process_id}")
    return base_port + process_id if base_port else 0


class _QuietHandler(WSGIRequestHandler):
    """Probes arrive every few seconds; logging each would drown the process's own logs."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class ProbeServer:
    """A small threaded HTTP server: Prometheus metrics plus liveness and readiness answers.

    ``live`` should turn false only when restarting the process is the cure (a wedged worker);
    ``ready`` when it should get no traffic for now (dependencies still connecting, draining).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        live: Check = lambda: True,
        ready: Check = lambda: True,
        registry: Collector = REGISTRY,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._live = live
        self._ready = ready
        self._metrics_app = make_wsgi_app(registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._server is None:
            raise MetricsServerError("the probe server is not started")
        return int(self._server.server_port)

    def start(self) -> ProbeServer:
        if self._server is not None:
            return self
        try:
            server = make_server(
                self._host,
                self._requested_port,
                self._app,
                server_class=ThreadingWSGIServer,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise MetricsServerError(
                f"cannot serve metrics on {self._host}:{self._requested_port}: {exc.strerror or exc}"
            ) from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ProbeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics_app(environ, start_response)
            return body
        if path == "/healthz":
            return _answer(start_response, _safe(self._live), "alive", "not alive")
        if path == "/readyz":
            return _answer(start_response, _safe(self._ready), "ready", "not ready")
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]


def _safe(check: Check) -> bool:
    """A probe that raises is a failing probe, never a 500 with a traceback."""
    try:
        return bool(check())
    except Exception:  # any failure of the check means "no"
        return False


def _answer(start_response: StartResponse, ok: bool, yes: str, no: str) -> list[bytes]:
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
    return [(yes if ok else no).encode() + b"\n"]
