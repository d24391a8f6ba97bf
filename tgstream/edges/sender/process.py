"""The sender process: its resources, started in dependency order and stopped in reverse."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

import structlog
from redis.exceptions import RedisError

from tgstream.config import Settings
from tgstream.connectors.kafka_io import AsyncConsumer, AsyncProducer, consumer_config, producer_config
from tgstream.connectors.redis_batch import RedisBatch
from tgstream.connectors.redis_client import async_redis
from tgstream.connectors.telegram_bot import make_bot
from tgstream.edges.readiness import Readiness
from tgstream.edges.sender.delivery import DeliveryPolicy, ReplyDelivery
from tgstream.edges.sender.metrics import SenderMetrics
from tgstream.edges.sender.service import LoopOptions, SenderLoop
from tgstream.observability.probe_server import ProbeServer
from tgstream.state.dedupe import SentMarks
from tgstream.state.send_limits import InactiveChats, SendLimits, SendLimitsConfig

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SenderOptions:
    group_id: str = "tgstream-sender"
    client_id: str = "tgstream-sender"
    topic: str | None = None
    dead_letter_topic: str | None = None
    namespace: str | None = None
    """Redis key prefix for limits, sent markers and inactive chats; default ``tgstream:<bot id>``."""
    ops_host: str = "127.0.0.1"
    ops_port: int = 0
    loop: LoopOptions = field(default_factory=LoopOptions)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)


async def serve(
    settings: Settings,
    options: SenderOptions,
    stop: asyncio.Event | None = None,
    *,
    handle_signals: bool = True,
    started: asyncio.Event | None = None,
    metrics: SenderMetrics | None = None,
) -> SenderMetrics:
    """Run one sender replica until SIGINT/SIGTERM or ``stop``; returns its metrics.

    ``started`` is set once the ops server answers; pass ``metrics`` to watch a running replica.
    """
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    namespace = options.namespace or f"tgstream:{settings.bot_id}"
    metrics = metrics or SenderMetrics()
    redis = async_redis(settings.redis_url)
    batch = RedisBatch(redis)
    limits = SendLimits(
        redis,
        SendLimitsConfig(
            global_per_s=settings.send_global_per_s,
            per_chat_per_s=settings.send_per_chat_per_s,
            per_group_per_min=settings.send_per_group_per_min,
        ),
        namespace=namespace,
        batch=batch,
    )
    producer = AsyncProducer(
        producer_config(settings, client_id=f"{options.client_id}-dlq", delivery_timeout_s=10)
    )

    async def redis_ok() -> bool:
        try:
            return bool(await redis.ping())
        except RedisError:
            return False

    readiness = Readiness({"kafka": producer.ready, "redis": redis_ok})
    producer.start()
    try:
        async with make_bot(settings, pool_size=min(options.loop.max_concurrency, 256)) as bot:
            delivery = ReplyDelivery(
                bot,
                limits,
                SentMarks(redis, namespace=namespace, batch=batch),
                InactiveChats(redis, namespace=namespace),
                metrics,
                policy=options.policy,
            )
            sender = SenderLoop(
                producer,
                delivery,
                metrics,
                dead_letter_topic=options.dead_letter_topic or settings.topic_dead_letter,
                options=options.loop,
            )
            consumer = AsyncConsumer(
                consumer_config(settings, group_id=options.group_id, client_id=options.client_id),
                [options.topic or settings.topic_responses],
                on_assign=sender.on_assign,
                on_revoke=sender.on_revoke,
            )
            sender.bind(consumer)
            await readiness.start()
            ops = ProbeServer(
                host=options.ops_host,
                port=options.ops_port,
                registry=metrics.registry,
                readiness=readiness.snapshot,
            ).start()
            log.info("probe server listening", url=ops.url)
            if started is not None:
                started.set()
            try:
                await sender.run(stop)
            finally:
                await consumer.close()
                await ops.aclose()
                await readiness.stop()
    finally:
        await producer.close()
        await redis.aclose()
    log.info("sender stopped")
    return metrics
