"""A local OpenAI-compatible server for tests and benchmarks: real HTTP, deterministic answers.

Speaks the wire format the `openai` client expects — ``/v1/chat/completions`` (plain and SSE
streaming), ``/v1/embeddings`` and ``/v1/models`` — with a latency distribution and failure
injection that tests change at runtime through ``/control``. A single request can also ask for
its own treatment with ``x-stub-latency-ms`` / ``x-stub-fail: <status>`` headers, which lets tests
that share one stub inject failures without disturbing each other.

Note:
    Output is a function of the request only (see `stub_content`), never of earlier calls; the
    seeded random generator only decides latencies and which calls fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from tgstream.connectors import event_loops
from tgstream.doubles import stub_content
from tgstream.doubles.stub_behaviour import BehaviourConfig, ControlRequest, StubBehaviour

WORDS_PER_CHUNK = 4
_ERROR_TYPES = {
    400: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


class StubMetrics:
    """Per-app registry, so several stubs in one test process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stub_requests",
            "Requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stub_injected_latency_seconds", "Injected latency", ["endpoint"], registry=self.registry
        )


BEHAVIOUR = web.AppKey("behaviour", StubBehaviour)
METRICS = web.AppKey("metrics", StubMetrics)
EMBEDDING_DIM = web.AppKey("embedding_dim", int)
IDS: web.AppKey[itertools.count[int]] = web.AppKey("ids")


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, message: str) -> web.Response:
    headers = {"retry-after": "1"} if status == 429 else None
    body = {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": None,
        }
    }
    return _json(body, status, headers)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": {"message": f"invalid JSON: {exc}"}}).decode()
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": {"message": "expected a JSON object"}}')
    return data


def _injected(request: web.Request, failure: int | None, latency_s: float) -> tuple[int | None, float]:
    """Apply the per-request header overrides on top of the stub-wide behaviour."""
    fail_header = request.headers.get("x-stub-fail")
    latency_header = request.headers.get("x-stub-latency-ms")
    if fail_header and fail_header.isdigit():
        failure = int(fail_header)
    if latency_header:
        with contextlib.suppress(ValueError):
            latency_s = max(0.0, float(latency_header)) / 1000
    return failure, latency_s


async def chat_completions(request: web.Request) -> web.StreamResponse:
    metrics = request.app[METRICS]
    behaviour = request.app[BEHAVIOUR]
    body = await _body(request)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        metrics.requests.labels("chat", "bad_request").inc()
        return _error(400, "messages must be a non-empty list of message objects")
    failure, latency_s = _injected(request, behaviour.chat_failure(), behaviour.latency_s())
    metrics.latency.labels("chat").observe(latency_s)
    if latency_s:
        await asyncio.sleep(latency_s)
    if failure is not None:
        metrics.requests.labels("chat", f"failed_{failure}").inc()
        return _error(failure, f"injected failure ({failure}) from the tgstream OpenAI stub")
    model = str(body.get("model", "stub"))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    text, finish = stub_content.limit_tokens(
        stub_content.reply_text(messages), max_tokens if isinstance(max_tokens, int) else None
    )
    prompt_tokens = sum(stub_content.count_tokens(stub_content.message_text(m)) for m in messages)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": stub_content.count_tokens(text),
        "total_tokens": prompt_tokens + stub_content.count_tokens(text),
    }
    ids = request.app[IDS]
    completion_id = f"chatcmpl-stub-{next(ids)}"
    created = int(time.time())
    metrics.requests.labels("chat", "ok").inc()
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await _stream(
            request, completion_id, created, model, text, finish, usage if include_usage else None
        )
    return _json(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }
    )


async def _stream(
    request: web.Request,
    completion_id: str,
    created: int,
    model: str,
    text: str,
    finish: str,
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)

    def chunk(delta: dict[str, str], finish_reason: str | None) -> bytes:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    words = text.split(" ")
    pieces = [" ".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)]
    frames = [chunk({"role": "assistant", "content": ""}, None)]
    frames += [chunk({"content": piece if i == 0 else " " + piece}, None) for i, piece in enumerate(pieces)]
    frames.append(chunk({}, finish))
    if usage is not None:
        frames.append(
            b"data: "
            + orjson.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
            + b"\n\n"
        )
    frames.append(b"data: [DONE]\n\n")
    await response.write(b"".join(frames))
    await response.write_eof()
    return response


async def embeddings(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    body = await _body(request)
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, str) for item in inputs):
        metrics.requests.labels("embeddings", "bad_request").inc()
        return _error(400, "input must be a string or a non-empty list of strings")
    failure, latency_s = _injected(request, request.app[BEHAVIOUR].embeddings_failure(), 0.0)
    if latency_s:
        await asyncio.sleep(latency_s)
    if failure is not None:
        metrics.requests.labels("embeddings", f"failed_{failure}").inc()
        return _error(failure, f"injected failure ({failure}) from the tgstream OpenAI stub")
    requested_dim = body.get("dimensions")
    dim = (
        requested_dim if isinstance(requested_dim, int) and requested_dim > 0 else request.app[EMBEDDING_DIM]
    )
    data = [
        {"object": "embedding", "index": i, "embedding": stub_content.embed(text, dim)}
        for i, text in enumerate(inputs)
    ]
    tokens = sum(stub_content.count_tokens(text) for text in inputs)
    metrics.requests.labels("embeddings", "ok").inc()
    return _json(
        {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "stub-embed")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def models(_request: web.Request) -> web.Response:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "tgstream-stub"}
        for name in ("stub", "stub-embed")
    ]
    return _json({"object": "list", "data": data})


async def healthz(_request: web.Request) -> web.Response:
    return _json({"status": "ok", "service": "openai-stub"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def get_control(request: web.Request) -> web.Response:
    return _json(request.app[BEHAVIOUR].describe())


async def post_control(request: web.Request) -> web.Response:
    behaviour = request.app[BEHAVIOUR]
    try:
        behaviour.apply(ControlRequest.model_validate(await _body(request)))
    except ValidationError as exc:
        return _error(400, f"bad control request: {exc.errors(include_url=False)}")
    return _json(behaviour.describe())


def create_app(
    config: BehaviourConfig, *, seed: int | None = None, embedding_dim: int = 384
) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[BEHAVIOUR] = StubBehaviour(config, seed=seed)
    app[METRICS] = StubMetrics()
    app[EMBEDDING_DIM] = embedding_dim
    app[IDS] = itertools.count(1)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/control", get_control)
    app.router.add_post("/control", post_control)
    return app


@contextlib.asynccontextmanager
async def serve_stub(
    config: BehaviourConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
    embedding_dim: int = 384,
) -> AsyncIterator[str]:
    """Run a stub inside the current event loop and yield its ``/v1`` base URL (port 0 picks a free one)."""
    app = create_app(config or BehaviourConfig(), seed=seed, embedding_dim=embedding_dim)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}/v1"
    finally:
        await runner.cleanup()


def run(config: BehaviourConfig, *, host: str, port: int, seed: int | None, embedding_dim: int) -> None:
    """Serve until interrupted (the `tgstream llm-stub` command)."""
    app = create_app(config, seed=seed, embedding_dim=embedding_dim)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),
        loop=event_loops.new_loop(),
    )
