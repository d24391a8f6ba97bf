"""Throughput of the conversation dataflow alone: pre-loaded input, a private stub at 300 ms.

    .venv/bin/python benchmarks/dataflow_throughput.py --messages 5000 --latency-ms 300

Steps: start a private OpenAI stub (so other users of the shared one cannot change its
latency), create fresh topics, pre-load N messages from N distinct chats (one message each,
so no burst merging inflates the figure: N messages = N model calls), start `tgstream
dataflow`, and time from its first reply until all N replies are on the output topic. CPU
seconds of the dataflow process and of the stub come from /proc. Needs `tgstream dev up`
(Kafka, Postgres, Redis): the flow writes memories and the Redis mirror as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tgstream.config import load_settings
from tgstream.schemas.codec import encode
from tgstream.schemas.events import InboundMessage

PARTITIONS = 6
TEXTS = (
    "how was your day?",
    "I just got back from a run",
    "can you recommend a book",
    "what do you think about rainy weekends",
    "tell me something that makes you happy",
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (librdkafka, the Bytewax worker, our event loop...)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        key = name.split(":")[0] if name.startswith("rdk:") else name
        if task.name == str(pid):
            key = "main (bytewax worker)"
        totals[key] = totals.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} not up within {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--max-in-flight", type=int, default=512)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--py-spy", metavar="SVG", help="profile the dataflow with py-spy (if installed)")
    args = parser.parse_args()

    settings = load_settings()
    tag = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"tgstream-bench-{tag}-"))
    topics = {name: f"bench-{name}-{tag}" for name in ("messages", "responses", "events", "dead")}
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics.values()]).values():
        future.result(timeout=30)

    stub_port = free_port()
    stub_log = (workdir / "stub.log").open("wb")
    stub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tgstream",
            "llm-stub",
            "--port",
            str(stub_port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        stdout=stub_log,
        stderr=subprocess.STDOUT,
    )
    stub_url = f"http://127.0.0.1:{stub_port}/v1"
    flow: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{stub_port}/healthz", 30, stub)

        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 20})
        base_chat = random.randint(10**11, 9 * 10**11)
        now = time.time()
        for i in range(args.messages):
            chat = base_chat + i
            message = InboundMessage(
                update_id=i + 1,
                update_kind="message",
                chat_id=chat,
                chat_type="private",
                user_id=chat,
                first_name="Bench",
                message_id=i + 1,
                text=f"{TEXTS[i % len(TEXTS)]} #{i}",
                sent_at=now,
                received_at=now,
            )
            producer.produce(topics["messages"], key=str(chat).encode(), value=encode(message))
            if i % 1000 == 0:
                producer.poll(0)
        producer.flush(60)
        print(f"pre-loaded {args.messages} messages into {topics['messages']}", flush=True)

        env = dict(
            os.environ,
            TOPIC_MESSAGES=topics["messages"],
            TOPIC_RESPONSES=topics["responses"],
            TOPIC_EVENTS=topics["events"],
            TOPIC_DEAD_LETTER=topics["dead"],
            RECOVERY_DIR=str(workdir / "recovery"),
            PARQUET_DIR=str(workdir / "parquet"),
            OPENAI_BASE_URL=stub_url,
            LLM_MODEL="stub",
            EMBEDDINGS_BACKEND="openai",
            EMBEDDINGS_BASE_URL=stub_url,
            LLM_MAX_IN_FLIGHT=str(args.max_in_flight),
            SNAPSHOT_INTERVAL_S="2",
            LOG_FORMAT="console",
        )
        consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": f"bench-{tag}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topics["responses"], p, OFFSET_BEGINNING) for p in range(PARTITIONS)])

        flow_log = (workdir / "dataflow.log").open("wb")
        flow_port = free_port()
        flow = subprocess.Popen(
            [sys.executable, "-m", "tgstream", "dataflow", "--metrics-port", str(flow_port)],
            env=env,
            stdout=flow_log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"http://127.0.0.1:{flow_port}/healthz", 60, flow)
        flow_cpu0, stub_cpu0 = cpu_seconds(flow.pid), cpu_seconds(stub.pid)
        if args.py_spy:
            fmt = ["-f", "raw"] if args.py_spy.endswith(".txt") else []
            native = ["--native"] if os.environ.get("PYSPY_NATIVE") else []
            spy = ["py-spy", "record", "-o", args.py_spy, "--pid", str(flow.pid), "-r", "50"]
            subprocess.Popen([*spy, *fmt, *native])
        answered: set[int] = set()
        first_at = last_print = 0.0
        deadline = time.monotonic() + args.timeout_s
        while len(answered) < args.messages:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out with {len(answered)}/{args.messages} answered")
            for record in consumer.consume(1000, 0.2):
                if record.error() is None and b'"kind":"reply"' in (record.value() or b""):
                    answered.add(int(record.key() or b"0"))
                    first_at = first_at or time.monotonic()
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                print(f"  {len(answered):>6}/{args.messages} replies", flush=True)
        elapsed = time.monotonic() - first_at
        threads = thread_cpu(flow.pid)
        flow_cpu = cpu_seconds(flow.pid) - flow_cpu0
        stub_cpu = cpu_seconds(stub.pid) - stub_cpu0
        consumer.close()
        n = args.messages
        print(f"\nmessages={n} stub_latency_ms={args.latency_ms:g} max_in_flight={args.max_in_flight}")
        print(f"throughput: {n / elapsed:.0f} msg/s ({elapsed:.1f} s from first to last reply)")
        print(f"dataflow CPU: {flow_cpu:.1f} s = {1000 * flow_cpu / n:.2f} ms/msg")
        print(f"stub CPU:     {stub_cpu:.1f} s = {1000 * stub_cpu / n:.2f} ms/msg (chat + embeddings)")
        busiest = sorted(threads.items(), key=lambda kv: -kv[1])[:6]
        print("dataflow threads (CPU s since start):", ", ".join(f"{k}={v:.1f}" for k, v in busiest))
    finally:
        if flow is not None:
            flow.terminate()
            flow.wait(30)
        stub.terminate()
        stub.wait(30)
        for future in admin.delete_topics(list(topics.values())).values():
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
