"""The small HTTP server that the poller and sender expose for /healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = structlog.get_logger(__name__)


class OpsServer:
    """Serves one registry and a readiness snapshot; port 0 picks a free port (see :attr:`port`).

    ``readiness`` returns named booleans; /readyz is 200 only when every one is true.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Callable[[], dict[str, object]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("ops server listening", url=f"http://{self._host}:{self.port}")

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def _readyz(self, request: web.Request) -> web.Response:
        state = self._readiness()
        status = 200 if all(bool(v) for v in state.values()) else 503
        return web.Response(body=orjson.dumps(state), status=status, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
