"""The OpenAI stub speaks the wire format the real `openai` client expects.

Most tests run their own stub on a free port in the test's event loop, so changing its
failure settings never disturbs other tests sharing the stub that `tgstream dev up` started.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from tgstream.config import Settings
from tgstream.doubles.llm_stub import serve_stub
from tgstream.doubles.stub_behaviour import BehaviourConfig

pytestmark = pytest.mark.integration

FAST = BehaviourConfig(latency_ms=0)
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are Sage, a calm mentor."},
    {"role": "user", "content": "I could not sleep last night"},
    {"role": "assistant", "content": "I am sorry to hear that."},
    {"role": "user", "content": "Any advice for tonight?"},
]


def _client(base_url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)


def run_with_stub(
    body: Callable[[str], Awaitable[None]], config: BehaviourConfig = FAST, seed: int | None = None
) -> None:
    async def main() -> None:
        async with serve_stub(config, seed=seed) as base_url:
            await body(base_url)

    asyncio.run(main())


def test_chat_completion_is_deterministic_and_carries_usage() -> None:
    async def body(base_url: str) -> None:
        async with _client(base_url) as client:
            first = await client.chat.completions.create(model="stub", messages=MESSAGES)
            second = await client.chat.completions.create(model="stub", messages=MESSAGES)
        assert first.choices[0].message.content == "[Sage] You said: Any advice for tonight? [turn 2]"
        assert second.choices[0].message.content == first.choices[0].message.content
        assert first.choices[0].finish_reason == "stop"
        assert first.usage is not None
        assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
        assert first.usage.prompt_tokens == sum(len(str(m.get("content", "")).split()) for m in MESSAGES)

    run_with_stub(body)


def test_streaming_reassembles_to_the_same_text() -> None:
    async def body(base_url: str) -> None:
        async with _client(base_url) as client:
            plain = await client.chat.completions.create(model="stub", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="stub",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            pieces, finishes, usage = [], [], None
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    pieces.append(choice.delta.content or "")
                    if choice.finish_reason:
                        finishes.append(choice.finish_reason)
        assert "".join(pieces) == plain.choices[0].message.content
        assert finishes == ["stop"]
        assert usage is not None
        assert usage.completion_tokens == len("".join(pieces).split())

    run_with_stub(body)


def test_max_tokens_cuts_the_reply_with_finish_reason_length() -> None:
    async def body(base_url: str) -> None:
        async with _client(base_url) as client:
            reply = await client.chat.completions.create(model="stub", messages=MESSAGES, max_tokens=3)
        assert reply.choices[0].finish_reason == "length"
        assert len((reply.choices[0].message.content or "").split()) == 3

    run_with_stub(body)


def test_failures_follow_the_configured_rate() -> None:
    calls = 200

    async def body(base_url: str) -> None:
        statuses: list[int] = []
        async with _client(base_url) as client:
            for _ in range(calls):
                try:
                    await client.chat.completions.create(model="stub", messages=MESSAGES)
                    statuses.append(200)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
        assert set(statuses) == {200, 500}
        assert 0.3 * calls < statuses.count(500) < 0.7 * calls

    run_with_stub(body, BehaviourConfig(latency_ms=0, failure_rate=0.5), seed=11)


def test_control_api_fails_the_next_calls_then_recovers() -> None:
    async def body(base_url: str) -> None:
        root = base_url.removesuffix("/v1")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{root}/control", json={"fail_next": 2, "failure_status": 503}) as response:
                assert response.status == 200
                assert (await response.json())["fail_next"] == 2
            async with http.post(f"{root}/control", json={"failure_rate": 7}) as response:
                assert response.status == 400
        statuses = []
        async with _client(base_url) as client:
            for _ in range(3):
                try:
                    await client.chat.completions.create(model="stub", messages=MESSAGES)
                    statuses.append(200)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
        assert statuses == [503, 503, 200]

    run_with_stub(body)


def test_per_request_header_injects_a_failure_without_changing_the_stub() -> None:
    async def body(base_url: str) -> None:
        async with _client(base_url) as client:
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(
                    model="stub",
                    messages=MESSAGES,
                    extra_headers={"x-stub-fail": "429"},
                )
            ok = await client.chat.completions.create(model="stub", messages=MESSAGES)
        assert ok.choices[0].message.content

    run_with_stub(body)


def test_embeddings_are_deterministic_and_reflect_overlap() -> None:
    texts = ["my dog Rex likes long walks", "Rex the dog loves walks", "tax forms are due in April"]

    async def body(base_url: str) -> None:
        async with _client(base_url) as client:
            first = await client.embeddings.create(model="stub-embed", input=texts)
            again = await client.embeddings.create(model="stub-embed", input=texts)
        vectors = [item.embedding for item in first.data]
        assert vectors == [item.embedding for item in again.data]
        assert all(len(v) == 384 for v in vectors)
        assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6) for v in vectors)

        def cosine(a: list[float], b: list[float]) -> float:
            return sum(x * y for x, y in zip(a, b, strict=True))

        assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])

    run_with_stub(body)


def test_models_health_and_metrics_endpoints() -> None:
    async def body(base_url: str) -> None:
        root = base_url.removesuffix("/v1")
        async with _client(base_url) as client:
            models = await client.models.list()
            await client.chat.completions.create(model="stub", messages=MESSAGES)
        assert [m.id for m in models.data]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{root}/healthz") as response:
                assert (await response.json())["status"] == "ok"
            async with http.get(f"{root}/metrics") as response:
                text = await response.text()
        assert 'stub_requests_total{endpoint="chat",outcome="ok"} 1.0' in text

    run_with_stub(body)


def test_the_dev_stack_stub_answers(settings: Settings) -> None:
    async def main() -> None:
        async with _client(settings.llm_stub_url) as client:
            reply = await client.chat.completions.create(
                model="stub",
                messages=[{"role": "user", "content": "ping"}],
                extra_headers={"x-stub-latency-ms": "0"},
            )
        assert reply.choices[0].message.content == "You said: ping [turn 1]"

    asyncio.run(main())
