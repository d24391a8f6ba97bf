from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from rich.console import Console

from tgstream.loadtest.cpu import CpuUsage
from tgstream.loadtest.display import Snapshot, render
from tgstream.loadtest.report import summary_group, write_json, write_plots
from tgstream.loadtest.results import (
    Conversation,
    PhaseCounters,
    RunResult,
    lost_by_phase,
    phase_result,
    timeline_rows,
)
from tgstream.loadtest.schedule import Phase
from tgstream.loadtest.stats import LatencyLog, summarize
from tgstream.loadtest.tracker import Pending

PHASES = (Phase("warmup", 10, 2.0), Phase("peak", 40, 2.0))
MODEL_S = 0.3


def _run() -> tuple[LatencyLog, list[PhaseCounters]]:
    log = LatencyLog(phases=2)
    counters = [PhaseCounters(start_at=0.0, end_at=2.0), PhaseCounters(start_at=2.0, end_at=4.0)]
    for index, phase in enumerate(PHASES):
        count = int(phase.rate * phase.duration_s)
        for i in range(count):
            at = counters[index].start_at + i / phase.rate
            log.sent(at, index)
            counters[index].sent += 1
            counters[index].accepted += 1
            counters[index].ack_s.append(0.002)
            latency = MODEL_S + 0.01 * (i % 10)
            log.answered(at + latency, latency, index)
            counters[index].answered_in_window += 1
    return log, counters


def _result() -> RunResult:
    log, counters = _run()
    cpu = CpuUsage(2.0, {"gateway": 0.04, "kafka": 0.02, "fake-telegram": 0.5}, {
        "gateway": "pipeline", "kafka": "pipeline", "fake-telegram": "double"})  # fmt: skip
    lost = lost_by_phase([Pending(1, 9, 0, 1, 3.9, accepted=True), Pending(1, 10, 0, 1, 3.95)], 2)
    phases = tuple(
        phase_result(i, p, counters[i], log, lost=lost[i], model_latency_s=MODEL_S, cpu=cpu if i else None)
        for i, p in enumerate(PHASES)
    )
    totals = {"sent": 100, "accepted": 100, "answered": 100, "lost": sum(lost), "extra": 0, "errors": 0,
              "merged": 0, "rejected": 0, "skipped": 0}  # fmt: skip
    return RunResult(
        meta={"command": "test"},
        phases=phases,
        totals=totals,
        cpu_idle_cores={"kafka": 0.01},
        timeline=timeline_rows(log, 1.0, until=4.0),
        conversations=(Conversation(1, (("/start", "Hi!", 312.0),)),),
    )


def test_phase_figures_are_derived_from_the_log() -> None:
    result = _result()
    warmup, peak = result.phases
    assert (warmup.sent, warmup.answered, warmup.lost) == (20, 20, 0)
    assert (peak.sent, peak.answered, peak.lost) == (80, 80, 1)
    assert peak.offered_rate == pytest.approx(40.0)
    expected = summarize(MODEL_S + 0.01 * (i % 10) for i in range(80))
    assert expected is not None
    assert peak.latency_ms is not None
    assert peak.added_ms is not None
    assert peak.latency_ms["p99"] == pytest.approx(expected.p99 * 1000)
    assert peak.added_ms["p50"] == pytest.approx((expected.p50 - MODEL_S) * 1000)
    assert peak.cpu is not None
    assert warmup.cpu is None
    assert peak.cpu.pipeline_ms_per_message == pytest.approx(0.06 * 1000 / 80)
    assert peak.cpu.messages_per_pipeline_core_s == pytest.approx(80 / 0.06)
    assert peak.cpu.pipeline_cores == pytest.approx(0.03)
    assert not result.zero_loss


def test_json_round_trips(tmp_path: Path) -> None:
    result = _result()
    data = orjson.loads(write_json(result, tmp_path / "out" / "result.json").read_bytes())
    assert [p["name"] for p in data["phases"]] == ["warmup", "peak"]
    assert data["zero_loss"] is False
    assert data["phases"][1]["cpu"]["roles"]["fake-telegram"] == "double"
    assert data["conversations"][0]["turns"][0][1] == "Hi!"


def test_plots_are_png_files(tmp_path: Path) -> None:
    paths = write_plots(_result(), tmp_path)
    assert sorted(p.name for p in paths) == ["latency.png", "throughput.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_show_every_phase_and_the_loss_verdict() -> None:
    console = Console(record=True, width=250)
    console.print(summary_group(_result()))
    text = console.export_text()
    assert "warmup" in text
    assert "peak" in text
    assert "LOSS OR ERRORS" in text
    assert "fake-telegram" in text
    assert "msg/s per pipeline core" in text


def test_live_view_shows_phase_progress_and_percentiles() -> None:
    snap = Snapshot(
        phase="peak", phase_index=1, phases=5, target_rate=200, phase_elapsed_s=12.0, phase_duration_s=40.0,
        sent=1234, answered=1200, in_flight=34, errors=0, users_active=2600,
        recent=summarize([0.31, 0.33, 0.35]), sent_rate=199.5, answered_rate=198.0,
    )  # fmt: skip
    console = Console(record=True, width=120)
    console.print(render(snap))
    text = console.export_text()
    assert "phase 2/5" in text
    assert "peak" in text
    assert "1,234" in text
    assert "330 ms" in text
    assert "350 ms" in text


def test_net_pipeline_cpu_subtracts_the_idle_burn_of_pipeline_processes_only() -> None:
    from tgstream.loadtest.results import cpu_result

    usage = CpuUsage(
        4.0, {"kafka": 0.2, "gateway": 0.1, "fake-telegram": 0.3}, {
            "kafka": "pipeline", "gateway": "pipeline", "fake-telegram": "double"},
    )  # fmt: skip
    idle = {"kafka": 0.01, "fake-telegram": 0.05}
    cpu = cpu_result(usage, 100, idle)
    assert cpu.pipeline_ms_per_message == pytest.approx(0.3 * 1000 / 100)
    assert cpu.pipeline_net_ms_per_message == pytest.approx((0.3 - 0.01 * 4.0) * 1000 / 100)
    assert cpu_result(usage, 100).pipeline_net_ms_per_message is None
