"""Every query in docs/data.md runs against files the real sink wrote."""

from __future__ import annotations

import contextlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from tgstream.schemas.events import ConversationEvent
from tgstream.sinks.parquet import ParquetEventWriter

DOC = Path(__file__).resolve().parents[3] / "docs" / "data.md"
DOC_ROOT = ".dev/data/conversation_events"
T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC).timestamp()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("events")
    events = []
    for n in range(60):
        at = T0 + n * 90  # 10:30 to 12:00 UTC
        reply = n % 3 == 1
        events.append(
            ConversationEvent(
                event_id=f"e{n}",
                event_type="reply_out" if reply else "message_in",
                chat_hash=f"chat{n % 4}",
                user_hash=f"user{n % 5}",
                chat_type="private",
                update_ids=(n,),
                persona_id="p1" if reply else None,
                text_chars=10 + n,
                reply_chars=30 if reply else 0,
                spam_reasons=("shouting",) if n % 7 == 0 else (),
                degraded=("memory",) if n % 11 == 0 else (),
                memories_used=n % 3,
                prompt_tokens=100 if reply else 0,
                completion_tokens=20 if reply else 0,
                llm_ms=300.0 if reply else None,
                sent_at=at - 1,
                received_at=at,
                processed_at=at + 0.1,
                emitted_at=at + 0.4 + (n % 5) / 10,
            )
        )
    for partition in ("000", "001"):
        writer = ParquetEventWriter(root, partition, roll_bytes=10**9, roll_s=3600)
        writer.write([e for e in events if (e.chat_hash in {"chat0", "chat1"}) == (partition == "000")])
        writer.close()
    return root


def test_the_doc_has_queries_to_check() -> None:
    assert len(blocks("sql")) >= 5
    assert len(blocks("python")) >= 1


@pytest.mark.parametrize("index", range(5))
def test_sql_blocks_run_in_duckdb(tree: Path, index: int) -> None:
    sql = blocks("sql")[index].replace(DOC_ROOT, str(tree))
    rows = duckdb.connect().execute(sql).fetchall()
    assert rows


def test_latency_query_matches_the_planted_events(tree: Path) -> None:
    sql = blocks("sql")[1].replace(DOC_ROOT, str(tree))
    replies, p50, _, _ = duckdb.connect().execute(sql).fetchall()[0]
    assert replies == 20  # n % 3 == 1 for n in 0..59
    assert 400 <= p50 <= 800


def test_python_blocks_run(tree: Path) -> None:
    for block in blocks("python"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block.replace(DOC_ROOT, str(tree)), str(DOC), "exec"), {})
        assert "replies: 20" in out.getvalue()
