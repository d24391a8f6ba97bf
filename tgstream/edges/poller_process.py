"""The poller process: Bot, producer, Redis and ops server, started and stopped in order."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from tgstream.config import Settings
from tgstream.connectors.kafka_io import AsyncProducer, producer_config
from tgstream.connectors.redis_client import async_redis
from tgstream.connectors.telegram_bot import make_bot
from tgstream.edges.inbound import Ingestor
from tgstream.edges.poller import OffsetStore, Poller
from tgstream.edges.readiness import Readiness
from tgstream.observability.probe_server import ProbeServer
from tgstream.state.dedupe import UpdateDedupe

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PollerOptions:
    ops_host: str = "127.0.0.1"
    ops_port: int = 0
    poll_timeout_s: int = 25
    delete_webhook: bool = False
    namespace: str | None = None
    topic: str | None = None


async def serve(settings: Settings, options: PollerOptions, stop: asyncio.Event | None = None) -> None:
    """Poll until SIGINT/SIGTERM (or ``stop``); the current round finishes its acks first."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    namespace = options.namespace or f"tgstream:{settings.bot_id}"
    producer = AsyncProducer(producer_config(settings, client_id="tgstream-poller"))
    redis = async_redis(settings.redis_url)
    dedupe = UpdateDedupe(redis, namespace=namespace, ttl_s=settings.dedupe_ttl_s, claim_ttl_s=15.0)
    ingestor = Ingestor(
        producer,
        dedupe,
        topic=options.topic or settings.topic_messages,
        dead_letter_topic=settings.topic_dead_letter,
        origin="poller",
    )

    async def redis_ok() -> bool:
        try:
            return bool(await redis.ping())
        except RedisError:
            return False

    readiness = Readiness({"kafka": producer.ready, "redis": redis_ok})
    producer.start()
    try:
        async with make_bot(settings, long_poll_timeout_s=options.poll_timeout_s) as bot:
            if options.delete_webhook:
                await bot.delete_webhook()
            poller = Poller(
                bot, ingestor, OffsetStore(redis, namespace=namespace), poll_timeout_s=options.poll_timeout_s
            )
            await readiness.start()
            ops = ProbeServer(
                host=options.ops_host,
                port=options.ops_port,
                registry=poller.metrics.registry,
                readiness=readiness.snapshot,
            ).start()
            log.info("probe server listening", url=ops.url)
            try:
                await poller.run(stop)
            finally:
                await ops.aclose()
                await readiness.stop()
    finally:
        await producer.close()
        await redis.aclose()
    log.info("poller stopped")
