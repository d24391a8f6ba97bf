"""The gateway's HTTP surface: POST /webhook, /healthz, /readyz and /metrics.

Answers to Telegram, and why:

- 401: missing or wrong ``X-Telegram-Bot-Api-Secret-Token`` (compared in constant time, never logged).
- 413: body over GATEWAY_MAX_BODY_BYTES, by Content-Length or while reading a chunked body.
- 400: the body is not a readable update. It is first written to the dead-letter topic, so nothing
  is lost; Telegram retries a 4xx only a bounded number of times, so it is not retried forever
  (a 200 would hide a real incompatibility from Telegram's ``getWebhookInfo.last_error_message``).
  If even the dead-letter write fails, we answer 503 so the body comes back later.
- 200: written to Kafka and acked, or a known duplicate, or an update without a chat (ignored).
- 503 with Retry-After: Kafka did not ack in time, or another copy of the same update is being
  written right now; Telegram retries and nothing is lost.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tgstream.edges.gateway.metrics import GatewayMetrics
from tgstream.edges.inbound import Ingestor, Outcome, RejectedUpdateError, parse_update

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
_OK = b'{"ok":true}'
_RETRY_AFTER = {"Retry-After": "1"}


def _json(body: bytes, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _refusal(status: int, reason: str, detail: str = "") -> web.Response:
    body = orjson.dumps(
        {"ok": False, "error": reason, "detail": detail[:200]} if detail else {"ok": False, "error": reason}
    )
    return _json(body, status, _RETRY_AFTER if status == 503 else None)


def webhook_handler(
    ingestor: Ingestor, metrics: GatewayMetrics, *, secret: bytes, max_body_bytes: int
) -> Callable[[web.Request], Awaitable[web.Response]]:
    accepted, duplicate = metrics.outcomes[Outcome.ACCEPTED], metrics.outcomes[Outcome.DUPLICATE]
    observe_produce = metrics.produce_latency.observe

    async def webhook(request: web.Request) -> web.Response:
        offered = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(offered, secret):
            metrics.rejected["unauthorized"].inc()
            return _refusal(401, "unauthorized")
        length = request.content_length
        if length is not None and length > max_body_bytes:
            metrics.rejected["too_large"].inc()
            return _refusal(413, "too_large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            metrics.rejected["too_large"].inc()
            return _refusal(413, "too_large")
        try:
            message = parse_update(body, received_at=time.time())
        except RejectedUpdateError as exc:
            metrics.rejected[exc.reason].inc()
            if not await ingestor.dead_letter(body, f"{exc.reason}: {exc.detail}"):
                return _refusal(503, "kafka_unavailable")
            return _refusal(400, exc.reason, exc.detail)
        if message is None:
            metrics.outcomes[Outcome.IGNORED].inc()
            return _json(_OK, 200)
        outcome = await ingestor.accept(message)
        if outcome is Outcome.ACCEPTED:
            accepted.inc()
            observe_produce(ingestor.last_produce_s)
            return _json(_OK, 200)
        if outcome is Outcome.DUPLICATE:
            duplicate.inc()
            return _json(_OK, 200)
        metrics.outcomes[outcome].inc()
        return _refusal(503, "kafka_unavailable" if outcome is Outcome.UNAVAILABLE else "in_flight")

    return webhook


def build_app(
    ingestor: Ingestor,
    metrics: GatewayMetrics,
    *,
    secret: bytes,
    max_body_bytes: int,
    readiness: Callable[[], dict[str, object]],
) -> web.Application:
    """``readiness`` returns the latest probe results; /readyz is 200 while Kafka answers."""
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(
        "/webhook", webhook_handler(ingestor, metrics, secret=secret, max_body_bytes=max_body_bytes)
    )

    async def healthz(request: web.Request) -> web.Response:
        return _json(_OK, 200)

    async def readyz(request: web.Request) -> web.Response:
        state = readiness()
        return _json(orjson.dumps(state), 200 if state.get("kafka") else 503)

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app
