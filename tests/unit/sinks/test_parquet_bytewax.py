"""ParquetSink inside a real Bytewax dataflow with recovery: routing, abort and resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import pyarrow.dataset as ds
from bytewax.dataflow import Dataflow, Stream
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main
from prometheus_client import REGISTRY

from tgstream.schemas.events import ConversationEvent
from tgstream.sinks.parquet_bytewax import ParquetSink, event_key, partition_index, partition_name

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
PARTITIONS = 3


def event(n: int) -> ConversationEvent:
    at = T0 + n
    return ConversationEvent(
        event_id=f"e{n}",
        event_type="message_in",
        chat_hash=f"chat{n % 7}",
        user_hash="u",
        chat_type="private",
        sent_at=at,
        received_at=at,
        processed_at=at,
        emitted_at=at,
    )


def keyed(e: ConversationEvent) -> tuple[str, ConversationEvent | None]:
    return event_key(e), e


Item = ConversationEvent | TestingSource.EOF | TestingSource.ABORT | TestingSource.PAUSE


def build_flow(items: list[Item], root: Path) -> Dataflow:
    flow = Dataflow("parquet_sink_test")
    events: Stream[ConversationEvent] = op.input("in", flow, TestingSource(items, batch_size=3))
    op.output(
        "parquet",
        op.map("key", events, keyed),
        ParquetSink(root, partitions=PARTITIONS, roll_bytes=2048, roll_s=3600),
    )
    return flow


def committed(root: Path) -> list[tuple[str, str]]:
    """(partition, event_id) of every committed row, read the way a data team would."""
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["event_id", "__filename"]
    )
    parts = [Path(name).name.split("-")[1] for name in table["__filename"].to_pylist()]
    return sorted(zip(parts, table["event_id"].to_pylist(), strict=True))


def test_routes_by_crc32_and_commits_everything_at_eof(tmp_path: Path) -> None:
    events = [event(n) for n in range(40)]
    run_main(build_flow([*events], tmp_path))  # type: ignore[no-untyped-call]

    expected = sorted((partition_name(partition_index(e.chat_hash, PARTITIONS)), e.event_id) for e in events)
    assert committed(tmp_path) == expected


def test_abort_and_resume_commits_each_event_exactly_once(tmp_path: Path) -> None:
    root, recovery = tmp_path / "events", tmp_path / "recovery"
    recovery.mkdir()
    init_db_dir(recovery, 1)  # type: ignore[no-untyped-call]
    config = RecoveryConfig(str(recovery))  # type: ignore[no-untyped-call]
    events = [event(n) for n in range(60)]
    # No PAUSE marker: TestingSource miscounts it on resume and would skip an item.
    items: list[Item] = [*events[:45], TestingSource.ABORT(), *events[45:]]
    flow = build_flow(items, root)

    # An epoch per batch, so snapshots and rolls interleave; ABORT stops without a final
    # snapshot (Bytewax still calls close(), which commits files no snapshot covers).
    run_main(flow, epoch_interval=timedelta(0), recovery_config=config)  # type: ignore[no-untyped-call]
    assert sorted(event_id for _, event_id in committed(root)) == sorted(e.event_id for e in events[:45])
    removed_before = REGISTRY.get_sample_value("tgstream_parquet_uncommitted_removed_total") or 0.0
    run_main(flow, epoch_interval=timedelta(0), recovery_config=config)  # type: ignore[no-untyped-call]
    removed = REGISTRY.get_sample_value("tgstream_parquet_uncommitted_removed_total") or 0.0
    assert removed > removed_before  # the resume really did discard files written after the commit

    ids = [event_id for _, event_id in committed(root)]
    assert sorted(ids) == sorted(e.event_id for e in events)
    assert not list(root.rglob(".*.tmp"))


def test_tick_keys_cover_every_partition(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, partitions=5, roll_bytes=1024, roll_s=1)
    keys = sink.tick_keys()
    assert [partition_index(k, 5) for k in keys] == list(range(5))
    assert sink.list_parts() == sorted(sink.list_parts())
