"""The fake Bot API as an aiohttp application, and a runner to host it in-process or as a command.

It shares the CPU with the system under test, so the request path is lean: one dict lookup per
method, orjson both ways, no access log, and metric children resolved once per (method, code).
"""

from __future__ import annotations

import hmac
import random
import socket
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tgstream.doubles.telegram_api.control import API_KEY, add_routes
from tgstream.doubles.telegram_api.faults import Faults
from tgstream.doubles.telegram_api.methods import FakeBotApi
from tgstream.doubles.telegram_api.protocol import ApiError, Params, error_response, ok_response
from tgstream.doubles.telegram_api.store import BotStore
from tgstream.doubles.telegram_api.webhook import RetryPolicy

_UNAUTHORIZED = ApiError(401, "Unauthorized")


class _Metrics:
    def __init__(self, api: FakeBotApi) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "fake_telegram_requests",
            "Bot API calls by method and result code",
            ["method", "code"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}
        pending = Gauge(
            "fake_telegram_pending_updates", "Updates not yet confirmed or delivered", registry=self.registry
        )
        pending.set_function(lambda: len(api.store.pending))
        records = Gauge(
            "fake_telegram_sent_records",
            "Messages, edits and actions kept in the log",
            registry=self.registry,
        )
        records.set_function(lambda: len(api.store.sent))

    def count(self, method: str, code: int) -> None:
        key = (method, code)
        child = self._children.get(key)
        if child is None:
            label = method if len(self._children) < 200 else "other"
            child = self._children[key] = self._requests.labels(label, str(code))
        child.inc()


METRICS_KEY: web.AppKey[_Metrics] = web.AppKey("fake_bot_metrics", _Metrics)


def create_app(
    token: str, *, seed: int | None = None, policy: RetryPolicy | None = None, max_records: int = 200_000
) -> web.Application:
    """A fake Bot API for one bot, answering only to ``token`` (others get 401 like Telegram)."""
    bot_id = int(token.partition(":")[0])
    api = FakeBotApi(
        bot_id, BotStore(max_records=max_records), Faults(rng=random.Random(seed)), policy or RetryPolicy()
    )
    metrics = _Metrics(api)
    expected = token.encode()

    async def bot_method(request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if not hmac.compare_digest(request.match_info["token"].encode(), expected):
            metrics.count(method, 401)
            return error_response(_UNAUTHORIZED)
        try:
            result = await api.call(method, await Params.read(request))
        except ApiError as exc:
            metrics.count(method, exc.code)
            return error_response(exc)
        metrics.count(method, 200)
        return ok_response(result)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def on_shutdown(app: web.Application) -> None:
        await api.close()

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[API_KEY] = api
    app[METRICS_KEY] = metrics
    app.router.add_route("*", "/bot{token}/{method}", bot_method)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    add_routes(app)
    app.on_shutdown.append(on_shutdown)
    return app


class FakeTelegramServer:
    """Runs the app on a socket: port 0 picks a free port, read it back from :attr:`url`.

    Lifecycle: :meth:`start` binds and serves, :meth:`stop` stops accepting, cancels webhook
    deliveries and closes connections. Use ``async with`` to get both, even when start fails.
    """

    def __init__(
        self,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        policy: RetryPolicy | None = None,
        max_records: int = 200_000,
    ) -> None:
        self.app = create_app(token, seed=seed, policy=policy, max_records=max_records)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api(self) -> FakeBotApi:
        return self.app[API_KEY]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegramServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
