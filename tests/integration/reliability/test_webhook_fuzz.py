"""Hostile bodies through a real gateway (real socket, Kafka and Redis): no 5xx, nothing accepted is lost.

Every body the gateway answers 200 for and that carries a chat must be on the topic afterwards;
the expected set is derived from the same pure parser the unit fuzz tests check. Kafka is up, so
a 503 is a failure here. ``TGSTREAM_FUZZ_EXAMPLES`` scales the run (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import http.client
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from confluent_kafka import Consumer
from hostile_updates import bodies, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tgstream.config import Settings
from tgstream.edges.gateway.app import SECRET_HEADER
from tgstream.edges.gateway.server import GatewayOptions, GatewayServer
from tgstream.edges.inbound import RejectedUpdateError, parse_update
from tgstream.schemas.codec import decode
from tgstream.schemas.events import InboundMessage

pytestmark = pytest.mark.integration


class RunningGateway:
    """A GatewayServer on its own event-loop thread, so hypothesis can drive it from plain sync code."""

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)

    def __enter__(self) -> RunningGateway:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(30)
        asyncio.run_coroutine_threadsafe(_cancel_leftovers(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _cancel_leftovers() -> None:
    """Connection handlers of sockets the client dropped mid-body; cancelled so the loop closes clean."""
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


@pytest.fixture
def gateway(
    settings: Settings, topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> Iterator[GatewayServer]:
    namespace = unique_name("fuzz-gw")
    options = GatewayOptions(
        host="127.0.0.1",
        port=0,
        namespace=namespace,
        topic=topic_factory("fuzz-in", partitions=3),
        dead_letter_topic=topic_factory("fuzz-dlq"),
    )
    with RunningGateway(GatewayServer(settings, options)) as running:
        yield running.server
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _topic_update_ids(settings: Settings, topic: str, expect: set[int], within_s: float = 30.0) -> set[int]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"fuzz-read-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline and not expect <= seen:
            for record in consumer.consume(500, 0.2):
                if record.error() is None:
                    seen.add(decode(InboundMessage, record.value()).update_id)
    finally:
        consumer.close()
    return seen


def test_hostile_bodies_over_http_get_no_5xx_and_every_accepted_update_is_on_the_topic(
    gateway: GatewayServer, settings: Settings
) -> None:
    secret = settings.webhook_secret.get_secret_value()
    port = gateway.port
    statuses: dict[int, int] = {}
    accepted: set[int] = set()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    @settings_for_http
    @given(body=bodies, good_secret=st.sampled_from([True] * 9 + [False]))
    def post(body: bytes, good_secret: bool) -> None:
        nonlocal conn
        headers = {"Content-Type": "application/json", SECRET_HEADER: secret if good_secret else "nope"}
        try:
            conn.request("POST", "/webhook", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            raise
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert response.status < 500, (response.status, body[:200])
        if not good_secret:
            assert response.status == 401
            return
        try:
            message = parse_update(body, received_at=0.0)
        except RejectedUpdateError:
            assert response.status == 400
            return
        assert response.status == 200
        if message is not None:
            accepted.add(message.update_id)

    try:
        post()
    finally:
        conn.close()
    assert statuses.get(200, 0) > 0, statuses
    assert statuses.get(400, 0) > 0, statuses
    topic = gateway.ingestor.topic
    missing = accepted - _topic_update_ids(settings, topic, accepted)
    assert not missing, f"{len(missing)} accepted updates never reached {topic}: {sorted(missing)[:10]}"


settings_for_http = settings(
    max_examples=examples(800),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _raw_request(port: int, head: bytes) -> socket.socket:
    """A client socket with a small send buffer, so bytes "sent" are close to bytes the server read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(head)
    return sock


def _status_line(sock: socket.socket, within_s: float) -> bytes:
    ready, _, _ = select.select([sock], [], [], within_s)
    return sock.recv(200).split(b"\r\n", 1)[0] if ready else b""


def test_oversized_body_is_413_before_the_body_is_sent(gateway: GatewayServer, settings: Settings) -> None:
    limit = settings.gateway_max_body_bytes
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{SECRET_HEADER}: {settings.webhook_secret.get_secret_value()}\r\n"
        f"Content-Length: {limit * 4}\r\n\r\n"
    ).encode()
    with _raw_request(gateway.port, head + b"{") as sock:
        assert _status_line(sock, 5.0) == b"HTTP/1.1 413 Request Entity Too Large"


def test_chunked_oversized_body_is_cut_off_near_the_limit(gateway: GatewayServer, settings: Settings) -> None:
    limit = settings.gateway_max_body_bytes
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{SECRET_HEADER}: {settings.webhook_secret.get_secret_value()}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * 65536
    sent = 0
    status = b""
    with _raw_request(gateway.port, head) as sock:
        try:
            while sent < limit * 32 and not status:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                status = _status_line(sock, 0.0)
            status = status or _status_line(sock, 5.0)
        except (ConnectionResetError, BrokenPipeError):
            status = status or b"reset"
    assert status == b"HTTP/1.1 413 Request Entity Too Large", status
    assert sent < limit * 8, f"the gateway read {sent} bytes of a chunked body over {limit}"
