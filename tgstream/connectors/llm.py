"""Chat completions through the `openai` client, on its cheapest transport.

Measured here (ARCHITECTURE.md): the client's own CPU cost, not Bytewax, bounds throughput.
``AsyncOpenAI`` with the default httpx transport costs 4.8 ms of CPU per call, with
``DefaultAioHttpClient`` 3.0 ms, and with aiohttp plus ``with_raw_response`` and an orjson parse
2.0 ms. So this client asks for the raw response and parses the few fields we need itself,
instead of letting pydantic build a full ``ChatCompletion`` model.

It goes one step lower still: ``AsyncOpenAI.post("/chat/completions", ...)`` with a body we
build, which skips the client's per-call walk over the request's TypedDict annotations, and with
our own idempotency key, which spares a ``uuid4()`` (an ``os.urandom`` call) per request.
Measured here against the stub (``benchmarks/llm_client_cost.py``, 3,000 calls at 200 in
flight): 1.25-1.33 ms of CPU per call with ``with_raw_response.create``, 0.63-0.83 ms with
``post``.
Same client, transport, errors and status handling.

Retries are ours (tenacity), not the client's, so that the policy is explicit: only timeouts,
connection errors and 5xx are retried, a bounded number of times with jittered backoff. A 4xx
(bad request, auth, 429) is returned to the caller at once; the circuit breaker above this
client decides what the user sees.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx2
import openai
import orjson
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from tgstream.config import Settings

KEEPALIVE_S = 60.0
"""Idle connections stay open this long (httpx's default is 5 s): traffic that pauses for a few
seconds would otherwise pay a new TCP connection per call when it resumes."""


class LlmError(Exception):
    """A completion failed; ``kind`` is a short label safe for metrics and events."""

    def __init__(self, kind: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    latency_s: float
    attempts: int


def _classify(exc: BaseException) -> LlmError:
    """Map the client's exception zoo onto our one error type, once, here."""
    if isinstance(exc, LlmError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return LlmError("timeout", "the model did not answer in time", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return LlmError("connection", str(exc) or "connection failed", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return LlmError(f"http_{status}", exc.message[:200], retryable=status >= 500)
    return LlmError("unexpected", f"{type(exc).__name__}: {exc}"[:200], retryable=False)


def parse_completion(body: bytes) -> tuple[str, int, int, str | None]:
    """Text, prompt tokens, completion tokens and finish reason from a chat.completions body.

    >>> parse_completion(b'{"choices":[{"message":{"content":" Hi!"},"finish_reason":"stop"}],'
    ...                  b'"usage":{"prompt_tokens":7,"completion_tokens":2}}')
    ('Hi!', 7, 2, 'stop')
    """
    try:
        data = orjson.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        usage = data.get("usage") or {}
        return (
            str(text).strip(),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            choice.get("finish_reason"),
        )
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise LlmError("bad_response", f"unexpected completion body: {exc!r}", retryable=False) from exc


class LlmClient:
    """One pooled ``AsyncOpenAI`` client; create, use and close it on the same event loop.

    Lifecycle: construct inside the loop (the aiohttp session binds to it), call
    :meth:`complete` concurrently from many tasks, then :meth:`aclose` once.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        model: str,
        timeout_s: float,
        max_retries: int,
        max_tokens: int,
        temperature: float,
        max_connections: int = 512,
    ) -> None:
        self.model = model
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._max_retries = max_retries
        self._key_prefix = f"tgstream-{os.getpid()}-{time.time_ns():x}-"
        self._requests = itertools.count()
        http_client = openai.DefaultAioHttpClient(
            timeout=timeout_s,
            limits=httpx2.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_S,
            ),
        )
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key.get_secret_value(),
            timeout=timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, base_url: str | None = None) -> LlmClient:
        return cls(
            base_url=base_url or settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            max_connections=settings.llm_max_in_flight,
        )

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion:
        """One chat completion, retried on transient failures; raises :class:`LlmError`."""
        started = time.perf_counter()
        attempts = 0

        def before(state: RetryCallState) -> None:
            nonlocal attempts
            attempts = state.attempt_number

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=wait_exponential_jitter(initial=0.2, max=2.0),
            retry=retry_if_exception(lambda exc: isinstance(exc, LlmError) and exc.retryable),
            before=before,
            reraise=True,
        )
        body: bytes = await retrying(self._request_once, messages)
        text, prompt_tokens, completion_tokens, finish = parse_completion(body)
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish,
            latency_s=time.perf_counter() - started,
            attempts=attempts,
        )

    async def _request_once(self, messages: Sequence[Mapping[str, str]]) -> bytes:
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        try:
            raw = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=httpx2.Response,
                options={"idempotency_key": f"{self._key_prefix}{next(self._requests)}"},
            )
            return raw.content
        except Exception as exc:
            raise _classify(exc) from exc

    async def aclose(self) -> None:
        await self._client.close()
