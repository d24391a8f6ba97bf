"""CI smoke of the whole system as users see it: a few seconds at a low rate, zero loss required.

Real gateway, Kafka, dataflow, Redis, Postgres and sender; the fake Telegram server and the OpenAI
stub as the outside world. Every accepted update must get exactly one reply.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from tgstream.connectors.kafka_admin import admin_client
from tgstream.loadtest.run import LoadTestOptions, run_loadtest
from tgstream.loadtest.schedule import Phase, ThinkTime
from tgstream.loadtest.stack import Stack, StackOptions

pytestmark = pytest.mark.integration


def test_smoke_run_answers_every_accepted_message_exactly_once(tmp_path: Path) -> None:
    options = LoadTestOptions(
        phases=(Phase("smoke", 5, 6.0),),
        users=15,
        think=ThinkTime(min_s=1.0, median_s=1.5, max_s=3.0),
        out_dir=tmp_path,
        baseline_s=0.0,
        display=False,
        plots=False,
        drain_timeout_s=30.0,
    )
    with (tmp_path / "console.txt").open("w") as log:
        output = run_loadtest(options, console=Console(file=log, width=160))
    totals = output.result.totals
    assert totals["sent"] >= 15
    assert totals["accepted"] == totals["sent"]
    assert totals["answered"] == totals["accepted"]
    assert totals["lost"] == 0
    assert totals["extra"] == 0
    assert totals["errors"] == 0
    assert output.result.zero_loss
    turns = [turn for conversation in output.result.conversations for turn in conversation.turns]
    assert any(user == "/start" for user, _, _ in turns)
    assert any(not user.startswith("/") for user, _, _ in turns), "no LLM turn was answered"
    assert all(reply.strip() for _, reply, _ in turns)
    assert (tmp_path / "result.json").exists()


def test_stack_stops_every_process_it_started_and_deletes_its_topics() -> None:
    stack = Stack(StackOptions(run_id=f"itest-stop-{uuid.uuid4().hex[:6]}", sender=False, start_timeout_s=60))
    admin = admin_client(stack.settings)
    with stack:
        pids = [proc.popen.pid for proc in stack.processes]
        assert len(pids) == 4
        assert all(psutil.pid_exists(pid) for pid in pids)
        assert set(stack.topics.values()) <= set(admin.list_topics(timeout=10).topics)
    for proc in stack.processes:
        assert proc.popen.returncode is not None
    assert not (stack.run_dir / "recovery").exists()
    assert not set(stack.topics.values()) & set(admin.list_topics(timeout=10).topics), "topics left behind"
