"""Running `tgstream dataflow` as a real subprocess against real Kafka, Postgres and Redis.

Each test gets fresh topics and its own recovery and Parquet directories, so tests never see
each other's messages or state. Chat ids are random 12-digit numbers for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from tgstream.config import Settings
from tgstream.schemas.codec import encode
from tgstream.schemas.events import ConversationEvent, InboundMessage, Reply

START_TIMEOUT_S = 60.0


def random_chat_id() -> int:
    return random.randint(100_000_000_000, 999_999_999_999)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FlowTopics:
    messages: str
    responses: str
    events: str
    dead_letter: str


@dataclass
class DataflowProcess:
    """One `tgstream dataflow` subprocess; its output goes to ``log_path``, never to pytest's pipes."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DataflowProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tgstream", "dataflow", "--metrics-port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dataflow exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.health().get("phase") == "running":
                return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"dataflow not healthy within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                data: dict[str, Any] = orjson.loads(resp.read())
                return data
        except OSError:
            return {}

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode or 0)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def flow_env(settings: Settings, topics: FlowTopics, workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a dataflow subprocess for one test: its topics, its directories, the stub."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TOPIC_", "RECOVERY_", "PARQUET_", "PYTEST_"))
    }
    env.update(
        {
            "TOPIC_MESSAGES": topics.messages,
            "TOPIC_RESPONSES": topics.responses,
            "TOPIC_EVENTS": topics.events,
            "TOPIC_DEAD_LETTER": topics.dead_letter,
            "RECOVERY_DIR": str(workdir / "recovery"),
            "PARQUET_DIR": str(workdir / "parquet"),
            "PARQUET_ROLL_S": "1",
            "SNAPSHOT_INTERVAL_S": "1",
            "OPENAI_BASE_URL": settings.llm_stub_url,
            "LLM_MODEL": "stub",
            "EMBEDDINGS_BACKEND": "openai",
            "EMBEDDINGS_BASE_URL": settings.llm_stub_url,
            "LOG_FORMAT": "console",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@contextlib.contextmanager
def running_dataflow(env: dict[str, str], log_path: Path) -> Iterator[DataflowProcess]:
    process = DataflowProcess(env, log_path).start()
    try:
        yield process
    finally:
        process.stop()


class Telegram:
    """Writes InboundMessages to the input topic the way the gateway does (keyed by chat id)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 5})
        self._topic = topic
        self._next_update = random.randint(1, 10**9)

    def say(
        self, chat_id: int, text: str, *, first_name: str = "Ann", user_id: int | None = None
    ) -> InboundMessage:
        """A message from ``user_id`` (default: the private chat's own user) in ``chat_id``."""
        self._next_update += 1
        now = time.time()
        message = InboundMessage(
            update_id=self._next_update,
            update_kind="message",
            chat_id=chat_id,
            chat_type="private" if user_id in (None, chat_id) else "group",
            user_id=chat_id if user_id is None else user_id,
            first_name=first_name,
            message_id=self._next_update % 1_000_000,
            text=text,
            sent_at=now,
            received_at=now,
        )
        self._producer.produce(self._topic, key=str(chat_id).encode(), value=encode(message))
        self._producer.poll(0)
        return message

    def raw(self, value: bytes, key: bytes = b"raw") -> None:
        self._producer.produce(self._topic, key=key, value=value)

    def flush(self) -> None:
        remaining = self._producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} messages not delivered to Kafka")


class TopicReader:
    """Reads a whole topic from the beginning (no consumer group), decoding as it goes."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": f"reader-{topic}",
                "enable.auto.commit": False,
            }
        )
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.records: list[Any] = []

    def read_until(
        self, done: Callable[[list[Any]], bool], timeout_s: float, decode: Callable[[Any], Any]
    ) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"condition not met within {timeout_s} s; read {len(self.records)} records"
                )
            for message in self._consumer.consume(500, 0.2):
                if message.error() is None:
                    self.records.append(decode(message))
        return self.records

    def close(self) -> None:
        self._consumer.close()


def as_reply(message: Any) -> Reply:
    return Reply.model_validate(orjson.loads(message.value()))


def as_event(message: Any) -> ConversationEvent:
    return ConversationEvent.model_validate(orjson.loads(message.value()))


def answered(replies: list[Reply], chat_id: int) -> list[Reply]:
    """The chat's answers (not typing indicators), in topic order."""
    return [r for r in replies if r.chat_id == chat_id and r.kind != "typing"]
