"""Sustained accepted updates/s of the webhook gateway (every 200 is a Kafka-acked record).

    .venv/bin/python benchmarks/gateway_webhook_load.py --seconds 20 --concurrency 64 --workers 1

Steps: create a fresh topic, start `tgstream gateway` as a subprocess on a free port with its own
bot id (so its Redis update-id markers are its own), warm up for 3 s, then post distinct updates
from N keep-alive connections for the given time. Reports accepted/s, latency percentiles, the
gateway's CPU per accepted update (from /proc, all its worker processes), and checks that the
topic holds exactly as many records as the gateway answered 200 for. Needs `tgstream dev up`.
The load generator shares the 2 cores with the gateway, Kafka and Redis: the figure is the
whole box's, not the gateway's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tgstream.config import load_settings

SECRET = "bench-webhook-secret"
PARTITIONS = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def family(pid: int) -> list[int]:
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += family(int(child))
    return found


def body(update_id: int, chat_id: int) -> bytes:
    return orjson.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id % 1_000_000,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Load", "language_code": "en"},
                "text": "hello there, how are you doing today?",
            },
        }
    )


async def post_loop(
    session: aiohttp.ClientSession,
    url: str,
    ids: list[int],
    stop_at: float,
    measure_from: float,
    stats: dict[str, list[float] | int],
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    latencies = stats["lat"]
    assert isinstance(latencies, list)
    while time.monotonic() < stop_at:
        update_id = ids.pop()
        started = time.monotonic()
        async with session.post(
            url, data=body(update_id, 10**11 + update_id % 5000), headers=headers
        ) as resp:
            await resp.read()
            status = resp.status
        ended = time.monotonic()
        if status == 200:
            stats["ok_total"] = int(stats["ok_total"]) + 1
            if ended >= measure_from:
                stats["ok"] = int(stats["ok"]) + 1
                latencies.append(ended - started)
        else:
            stats["other"] = int(stats["other"]) + 1


async def load(
    url: str, seconds: float, concurrency: int, warmup: float, gateway_pids: list[int]
) -> dict[str, float]:
    base = random.randrange(10**9, 2 * 10**9)
    ids = list(range(base, base + 2_000_000))
    ids.reverse()
    stats: dict[str, list[float] | int] = {"ok": 0, "ok_total": 0, "other": 0, "lat": []}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        now = time.monotonic()
        measure_from, stop_at = now + warmup, now + warmup + seconds
        cpu_task = asyncio.create_task(_cpu_at(measure_from, gateway_pids))
        await asyncio.gather(
            *(post_loop(session, url, ids, stop_at, measure_from, stats) for _ in range(concurrency))
        )
        cpu_start, client_start = await cpu_task
    cpu_used = cpu_seconds(gateway_pids) - cpu_start
    client_used = time.process_time() - client_start
    latencies = sorted(stats["lat"])  # type: ignore[arg-type]
    ok = int(stats["ok"])  # type: ignore[arg-type]
    return {
        "accepted_per_s": ok / seconds,
        "accepted_total": float(stats["ok_total"]),  # type: ignore[arg-type]
        "non_200": float(stats["other"]),  # type: ignore[arg-type]
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "gateway_cpu_ms_per_update": 1000 * cpu_used / ok if ok else 0.0,
        "gateway_cores_busy": cpu_used / seconds,
        "load_client_cores_busy": client_used / seconds,
        "box_loadavg_1m": os.getloadavg()[0],
    }


async def _cpu_at(when: float, pids: list[int]) -> tuple[float, float]:
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    return cpu_seconds(pids), time.process_time()


def topic_count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)
        )
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    settings = load_settings()
    topic = f"bench-gw-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for future in admin.create_topics(
        [NewTopic(topic, PARTITIONS, 1), NewTopic(topic + "-dlq", 1, 1)]
    ).values():
        future.result(30)
    port = free_port()
    env = {
        **os.environ,
        "TOPIC_MESSAGES": topic,
        "TOPIC_DEAD_LETTER": topic + "-dlq",
        "WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BOT_TOKEN": f"{random.randrange(10**8, 10**9)}:bench",
        "LOG_LEVEL": "WARNING",
    }
    gateway = subprocess.Popen(
        [sys.executable, "-m", "tgstream", "gateway", "--port", str(port), "--workers", str(args.workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)
        pids = family(gateway.pid)
        result = asyncio.run(load(f"{url}/webhook", args.seconds, args.concurrency, args.warmup, pids))
    finally:
        gateway.terminate()
        gateway.wait(30)
    on_topic = topic_count(settings.kafka_bootstrap_servers, topic)
    for future in admin.delete_topics([topic, topic + "-dlq"]).values():
        future.result(timeout=30)
    print(f"workers={args.workers} concurrency={args.concurrency} seconds={args.seconds}")
    for name, value in result.items():
        print(f"  {name:28s} {value:10.2f}")
    print(f"  {'records_on_topic':28s} {on_topic:10d}  (must equal accepted_total)")
    if on_topic != int(result["accepted_total"]):
        sys.exit("MISMATCH between 200 answers and records on the topic")


if __name__ == "__main__":
    main()
