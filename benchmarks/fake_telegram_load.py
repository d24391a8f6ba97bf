"""How cheaply the fake Bot API answers sendMessage: calls/s and CPU per call of the server alone.

    .venv/bin/python benchmarks/fake_telegram_load.py --seconds 10 --concurrency 32

Starts `tgstream fake-telegram` as a subprocess on a free port, posts form-encoded sendMessage
calls with parse_mode=HTML (the sender's shape) over keep-alive connections, and reads the
server's CPU from /proc. The client shares the machine, so calls/s is a floor; CPU per call is
the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

TOKEN = "424242:bench-fake"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, seconds: float, concurrency: int, pid: int) -> tuple[int, float]:
    done = 0
    stop_at = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        data = {
            "chat_id": str(10**11 + n),
            "text": "<b>Hello</b> &amp; welcome, this is a reply.",
            "parse_mode": "HTML",
        }
        while time.monotonic() < stop_at:
            async with session.post(f"{url}/bot{TOKEN}/sendMessage", data=data) as resp:
                await resp.read()
                if resp.status == 200:
                    done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        cpu_start = cpu_seconds(pid)
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return done, cpu_seconds(pid) - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tgstream", "fake-telegram"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        calls, cpu = asyncio.run(run(f"http://127.0.0.1:{port}", args.seconds, args.concurrency, server.pid))
    finally:
        server.terminate()
        server.wait(10)
    print(f"sendMessage calls/s     {calls / args.seconds:10.0f}")
    print(f"server CPU ms per call  {1000 * cpu / calls:10.3f}")
    print(f"server cores busy       {cpu / args.seconds:10.2f}")
    print(f"box loadavg (1 min)     {os.getloadavg()[0]:10.2f}")


if __name__ == "__main__":
    main()
