"""Embedding throughput of both backends, for the per-message CPU budget.

    .venv/bin/python benchmarks/embeddings_throughput.py [--texts 512] [--batch 64] [--skip-local]

Local: MiniLM in its worker thread with one torch thread (the production setting). HTTP: the
OpenAI stub from ``tgstream dev up`` (its vectors are cheap lexical hashes, so this measures the
client and transport, not a model).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tgstream.config import load_settings
from tgstream.connectors.embeddings import Embedder
from tgstream.connectors.embeddings_http import OpenAIEmbedder
from tgstream.connectors.embeddings_local import LocalEmbedder


async def measure(name: str, embedder: Embedder, texts: list[str], batch: int) -> None:
    await embedder.embed(texts[:batch])  # warm up (loads the model, opens connections)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        await embedder.embed(texts[i : i + batch])
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{name:6s} {len(texts)} texts in batches of {batch}: {len(texts) / wall:7.0f} texts/s, "
        f"{used / len(texts) * 1000:.2f} ms CPU per text (this process)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    topics = ["cats", "jobs", "trips"]
    texts = [
        f"user {i}: my sister Anna visits on day {i % 28}, and we talk about {topics[i % 3]}"
        for i in range(args.texts)
    ]
    settings = load_settings()
    http = OpenAIEmbedder(settings.llm_stub_url, "sk-bench", "stub-embed", batch_size=args.batch)
    try:
        await measure("http", http, texts, args.batch)
    finally:
        await http.aclose()
    if not args.skip_local:
        local = LocalEmbedder(batch_size=args.batch)
        try:
            await measure("local", local, texts, args.batch)
        finally:
            await local.aclose()


if __name__ == "__main__":
    asyncio.run(main())
