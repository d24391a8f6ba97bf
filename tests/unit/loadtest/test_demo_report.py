"""The demo's closing report: the conversations table and the DuckDB query over Parquet events."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console

from tgstream.loadtest.demo import conversations_table, parquet_report
from tgstream.loadtest.results import Conversation, RunResult
from tgstream.schemas.arrow import events_to_table
from tgstream.schemas.events import ConversationEvent


def _event(i: int, event_type: str, latency_s: float) -> ConversationEvent:
    received = 1_800_000_000.0 + i
    llm = event_type == "reply_out"
    return ConversationEvent(
        event_id=f"e{i}",
        event_type=event_type,  # type: ignore[arg-type]
        chat_hash="c",
        user_hash="u",
        chat_type="private",
        llm_ms=250.0 if llm else None,
        sent_at=received,
        received_at=received,
        processed_at=received,
        llm_started_at=received if llm else None,
        llm_finished_at=received + 0.25 if llm else None,
        emitted_at=received + latency_s,
    )


def test_parquet_report_runs_its_query(tmp_path: Path) -> None:
    events = [_event(i, "reply_out", 0.3) for i in range(3)] + [_event(9, "command", 0.02)]
    part = tmp_path / "date=2027-01-15" / "hour=08"
    part.mkdir(parents=True)
    pq.write_table(events_to_table(events), part / "events.parquet")
    console = Console(record=True, width=200)
    parquet_report(tmp_path, console)
    text = console.export_text()
    assert "(1 files)" in text
    reply_row = next(line for line in text.splitlines() if "reply_out" in line)
    assert "3" in reply_row
    assert "300" in reply_row
    assert "250" in reply_row


def test_parquet_report_says_when_nothing_was_committed(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    parquet_report(tmp_path, console)
    assert "no Parquet file was committed" in console.export_text()


def test_conversations_table_lists_turns() -> None:
    result = RunResult(
        meta={}, phases=(), totals={}, cpu_idle_cores={}, timeline=(),
        conversations=(Conversation(123456789, (("/start", "Hi, I'm Mira.", 65.0), ("yo", "hey!", 1234.0))),),
    )  # fmt: skip
    console = Console(record=True, width=200)
    console.print(conversations_table(result, 3))
    text = console.export_text()
    assert "Hi, I'm Mira." in text
    assert "1,234" in text
