"""Run the fake Bot API as a foreground process until SIGINT or SIGTERM, reporting progress."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from rich.console import Console

from tgstream.connectors import event_loops
from tgstream.doubles.telegram_api.server import FakeTelegramServer

PROGRESS_EVERY_S = 10.0


def serve_forever(token: str, *, host: str, port: int, seed: int | None, max_records: int) -> None:
    event_loops.run(_serve(token, host=host, port=port, seed=seed, max_records=max_records))


async def _serve(token: str, *, host: str, port: int, seed: int | None, max_records: int) -> None:
    console = Console(stderr=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = FakeTelegramServer(token, host=host, port=port, seed=seed, max_records=max_records)
    async with server:
        console.print(f"fake Telegram Bot API listening on {server.url} (bot id {server.api.bot_id})")
        last_seq, last_t = 0, time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)
            store = server.api.store
            seq, now = store.next_seq - 1, time.monotonic()
            if seq != last_seq:
                rate = (seq - last_seq) / (now - last_t)
                console.print(
                    f"sent {seq} ({rate:.0f}/s), pending updates {len(store.pending)}, "
                    f"429 violations {sum(server.api.faults.violations.values())}"
                )
            last_seq, last_t = seq, now
    console.print("fake Telegram Bot API stopped")
