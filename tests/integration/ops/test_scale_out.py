"""Scale-out: a local Bytewax cluster of 2 processes answers exactly like 1 process, and a restart of
the cluster resumes every chat's context from recovery.

The OpenAI stub's reply is a pure function of the prompt: ``You said: <last user text> [turn N]``
with N the number of user turns in the context window. So equal reply texts mean equal per-chat
state, and ``[turn 4]`` after a restart means the window came back from recovery, not from zero.

Each round sends one message per chat and waits for all answers before the next, so bursts never
merge and the expected texts follow from the inputs alone. Uses the dataflow tests' harness
(subprocesses against real Kafka, Postgres, Redis and the stub).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dataflow"))

from dataflow_harness import FlowTopics, Telegram, TopicReader, as_reply, flow_env, random_chat_id

from tgstream.config import Settings
from tgstream.schemas.events import Reply

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
CHATS = 12
LINES = ("hello there", "tell me about foxes", "thanks, that helps")
AFTER_RESTART = "one more thing"
FIRST_ROUND_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 60.0


class Cluster:
    """`tgstream dataflow --processes N` as one subprocess tree; output to a log file."""

    def __init__(self, env: dict[str, str], processes: int, log_path: Path) -> None:
        self._command = [sys.executable, "-m", "tgstream", "dataflow", "--processes", str(processes)]
        if processes == 1:
            self._command = self._command[:-2]
        self._env = env
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Cluster:
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        return self

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
            raise AssertionError(f"the cluster did not stop on SIGTERM:\n{self.log_tail()}") from None

    def log_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]


def _round(
    telegram: Telegram,
    replies: TopicReader,
    chats: list[int],
    line: str,
    timeout_s: float,
    cluster: Cluster,
    sent_rounds: list[set[int]],
) -> dict[int, str]:
    """Say ``line`` in every chat and return each chat's answer to it."""
    wanted = {telegram.say(chat, line).update_id: chat for chat in chats}
    sent_rounds.append(set(wanted))
    telegram.flush()

    def all_answered(records: list[Reply]) -> bool:
        covered = {u for r in records if r.kind == "reply" for u in r.update_ids}
        return covered.issuperset(wanted)

    try:
        records = replies.read_until(all_answered, timeout_s, as_reply)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- dataflow log ---\n{cluster.log_tail()}") from exc
    answers: dict[int, str] = {}
    for reply in records:
        if reply.kind == "reply" and set(reply.update_ids) & set(wanted):
            assert reply.update_ids == tuple(u for u in reply.update_ids if u in wanted), "no merged bursts"
            answers[wanted[reply.update_ids[0]]] = reply.text
    return answers


@dataclass
class RunResult:
    texts: list[list[str]]
    """Per chat (by position), the reply texts of every round, in order."""
    first_round_answers: int
    """Replies on the topic that answer a first-round update, counted at the very end."""


def _run(
    settings: Settings,
    topic_factory: Callable[..., str],
    workdir: Path,
    processes: int,
    *,
    restart: bool,
) -> RunResult:
    workdir.mkdir()
    topics = FlowTopics(
        topic_factory("so-msgs", partitions=PARTITIONS),
        topic_factory("so-replies", partitions=PARTITIONS),
        topic_factory("so-events", partitions=PARTITIONS),
        topic_factory("so-dead"),
    )
    env = flow_env(settings, topics, workdir, RECOVERY_PARTITIONS=str(PARTITIONS))
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, PARTITIONS)
    sent_rounds: list[set[int]] = []
    chats = [random_chat_id() for _ in range(CHATS)]
    texts: list[list[str]] = [[] for _ in chats]
    cluster = Cluster(env, processes, workdir / f"dataflow-{processes}p.log").start()
    try:
        for number, line in enumerate(LINES):
            timeout = FIRST_ROUND_TIMEOUT_S if number == 0 else ROUND_TIMEOUT_S
            answers = _round(telegram, replies, chats, line, timeout, cluster, sent_rounds)
            for i, chat in enumerate(chats):
                texts[i].append(answers[chat])
        if restart:
            cluster.stop()
            cluster = Cluster(env, processes, workdir / f"dataflow-{processes}p-restart.log").start()
            answers = _round(
                telegram, replies, chats, AFTER_RESTART, FIRST_ROUND_TIMEOUT_S, cluster, sent_rounds
            )
            for i, chat in enumerate(chats):
                texts[i].append(answers[chat])
            time.sleep(2 * float(env["SNAPSHOT_INTERVAL_S"]))  # let any replayed reply land
            replies.read_until(lambda _records: True, 5, as_reply)
    finally:
        cluster.stop()
        replies.close()
    first = sent_rounds[0]
    answered_first = [r for r in replies.records if r.kind == "reply" and set(r.update_ids) & first]
    return RunResult(texts, len(answered_first))


def test_two_processes_answer_like_one_and_resume_after_restart(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    single = _run(settings, topic_factory, tmp_path / "one", 1, restart=False).texts
    two = _run(settings, topic_factory, tmp_path / "two", 2, restart=True)
    cluster = two.texts

    for chat_texts in single:
        for turn, (line, text) in enumerate(zip(LINES, chat_texts, strict=True), start=1):
            assert text.endswith(f"You said: {line} [turn {turn}]"), text
    assert [texts[: len(LINES)] for texts in cluster] == single, "2 processes answer exactly like 1"
    for texts in cluster:
        assert texts[-1].endswith(f"You said: {AFTER_RESTART} [turn {len(LINES) + 1}]"), (
            "after the restart each chat's context window came back"
        )
    assert two.first_round_answers == CHATS, (
        "the restart resumed from the recovery snapshot, not from the start of the topic "
        "(a restart without recovery re-reads and re-answers every earlier message)"
    )
