"""CPU per chat completion of the `openai` client paths, against the OpenAI stub (no model time).

Compares ``chat.completions.with_raw_response.create`` with the low-level ``AsyncOpenAI.post``
that ``tgstream.connectors.llm`` uses, both on ``DefaultAioHttpClient`` with an orjson parse.
CPU is this process's user+system time over the measured calls, divided by the calls, on the
event loop the processes run on (uvloop; see tgstream.connectors.event_loops).

    .venv/bin/python benchmarks/llm_client_cost.py --calls 3000 --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

import httpx2
import openai
import orjson

from tgstream.config import load_settings
from tgstream.connectors import event_loops

MESSAGES = [
    {"role": "system", "content": "You are Mira, a warm companion. " * 10},
    {"role": "user", "content": "hello there how are you"},
]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(mode: str, url: str, calls: int, concurrency: int) -> tuple[float, float]:
    http = openai.DefaultAioHttpClient(
        timeout=20, limits=httpx2.Limits(max_connections=512, max_keepalive_connections=512)
    )
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, http_client=http, timeout=20)
    slots = asyncio.Semaphore(concurrency)
    body = {"model": "stub", "messages": MESSAGES, "max_tokens": 100, "temperature": 0.7}
    counter = iter(range(10**9))

    async def one() -> Any:
        async with slots:
            if mode == "create":
                raw = await client.chat.completions.with_raw_response.create(
                    model="stub",
                    messages=MESSAGES,
                    max_tokens=100,
                    temperature=0.7,  # type: ignore[arg-type]
                )
            else:
                raw = await client.post(
                    "/chat/completions",
                    body=body,
                    cast_to=httpx2.Response,
                    options={"idempotency_key": f"bench-{next(counter)}"},
                )
            return orjson.loads(raw.content)

    try:
        await asyncio.gather(*(one() for _ in range(min(200, calls))))  # warm the pool
        started, cpu = time.perf_counter(), _cpu_s()
        await asyncio.gather(*(one() for _ in range(calls)))
        return (_cpu_s() - cpu) / calls * 1000, calls / (time.perf_counter() - started)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    url = load_settings().llm_stub_url
    for round_ in range(1, args.rounds + 1):
        for mode in ("create", "post"):
            ms, rate = event_loops.run(measure(mode, url, args.calls, args.concurrency))
            print(f"round {round_} {mode:>6}: {ms:.2f} ms CPU per call, {rate:.0f} calls/s")


if __name__ == "__main__":
    main()
