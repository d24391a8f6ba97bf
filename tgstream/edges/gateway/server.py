"""The gateway process: its resources, their order of start and stop, and multi-process serving."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from tgstream.config import Settings, load_settings
from tgstream.connectors import event_loops
from tgstream.connectors.kafka_io import AsyncProducer, producer_config
from tgstream.connectors.redis_client import async_redis
from tgstream.edges.gateway.app import build_app
from tgstream.edges.gateway.metrics import GatewayMetrics
from tgstream.edges.inbound import Ingestor
from tgstream.edges.readiness import Readiness
from tgstream.state.dedupe import UpdateDedupe

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GatewayOptions:
    host: str
    port: int
    reuse_port: bool = False
    delivery_timeout_s: float = 5.0
    namespace: str | None = None
    """Redis key prefix for update-id markers; default ``tgstream:<bot id>``."""
    topic: str | None = None
    """Kafka topic; default TOPIC_MESSAGES."""
    dead_letter_topic: str | None = None
    """Kafka topic for unreadable bodies; default TOPIC_DEAD_LETTER."""
    shutdown_grace_s: float = 10.0


class GatewayServer:
    """One gateway process.

    Lifecycle: :meth:`start` opens the producer, Redis and readiness probes, then binds the socket
    (so no request arrives before Kafka is reachable from us); :meth:`stop` first stops accepting,
    lets in-flight requests finish (each waits for its ack), then flushes the producer. It does
    not wait for Kafka to come back: requests still waiting when the grace period ends get 503.
    """

    def __init__(self, settings: Settings, options: GatewayOptions) -> None:
        self._settings = settings
        self._options = options
        self._producer = AsyncProducer(
            producer_config(
                settings, client_id="tgstream-gateway", delivery_timeout_s=options.delivery_timeout_s
            )
        )
        self._redis = async_redis(settings.redis_url, socket_timeout_s=0.5, pool_timeout_s=0.5)
        namespace = options.namespace or f"tgstream:{settings.bot_id}"
        dedupe = UpdateDedupe(
            self._redis,
            namespace=namespace,
            ttl_s=settings.dedupe_ttl_s,
            claim_ttl_s=options.delivery_timeout_s + 5.0,
        )
        self.ingestor = Ingestor(
            self._producer,
            dedupe,
            topic=options.topic or settings.topic_messages,
            dead_letter_topic=options.dead_letter_topic or settings.topic_dead_letter,
            origin="gateway",
        )
        self.metrics = GatewayMetrics(self.ingestor)
        self._readiness = Readiness({"kafka": self._producer.ready, "redis": self._redis_ok})
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _redis_ok(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    @property
    def url(self) -> str:
        return f"http://{self._options.host}:{self.port}"

    async def start(self) -> None:
        self._producer.start()
        await self._readiness.start()
        app = build_app(
            self.ingestor,
            self.metrics,
            secret=self._settings.webhook_secret.get_secret_value().encode(),
            max_body_bytes=self._settings.gateway_max_body_bytes,
            readiness=self._readiness.snapshot,
        )
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._options.shutdown_grace_s
        )
        await self._runner.setup()
        sock = _bind(self._options.host, self._options.port, reuse_port=self._options.reuse_port)
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info("gateway listening", url=self.url, topic=self.ingestor.topic)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self._readiness.stop()
        await self._producer.close()
        await self._redis.aclose()

    async def __aenter__(self) -> GatewayServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def serve(settings: Settings, options: GatewayOptions, *, progress_every_s: float = 10.0) -> None:
    """Run one gateway until SIGINT/SIGTERM, logging throughput every ``progress_every_s``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with GatewayServer(settings, options) as gateway:
        stats = gateway.ingestor.stats
        last, last_t = stats.accepted, time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), progress_every_s)
            except TimeoutError:
                now_t = time.monotonic()
                rate = round((stats.accepted - last) / (now_t - last_t), 1)
                log.info(
                    "gateway progress",
                    accepted=stats.accepted,
                    per_s=rate,
                    in_flight=gateway.ingestor.in_flight,
                )
                last, last_t = stats.accepted, now_t
    log.info("gateway stopped")


def _worker(overrides: dict[str, Any], options: GatewayOptions) -> None:
    from tgstream.observability.logging import configure_logging

    settings = load_settings(**overrides)
    configure_logging(settings)
    event_loops.run(serve(settings, options))


def run_workers(settings_overrides: dict[str, Any], options: GatewayOptions, workers: int) -> int:
    """Start ``workers`` processes sharing the port with SO_REUSEPORT; the kernel spreads connections.

    Each worker has its own producer, Redis pool and metrics (scrape each, or sum them).
    Returns the worst exit code.
    """
    if options.port == 0:
        raise ValueError("--workers > 1 needs a fixed --port (each worker would pick its own)")
    context = multiprocessing.get_context("spawn")
    shared = GatewayOptions(**{**options.__dict__, "reuse_port": True})
    procs = [
        context.Process(target=_worker, args=(settings_overrides, shared), name=f"gateway-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs)
