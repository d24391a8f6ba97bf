"""``conversation_memory_usage_mb``: current resident memory (not the peak), served by every probe server."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tgstream.observability.probe_server import ProbeServer
from tgstream.observability.process_metrics import MEMORY_GAUGE, register_process_metrics, resident_memory_mb

MIB = 1024 * 1024


def test_it_agrees_with_psutil() -> None:
    expected = psutil.Process().memory_info().rss / MIB
    assert abs(resident_memory_mb() - expected) < 2.0


def test_it_follows_memory_down_again_so_it_is_not_the_peak() -> None:
    before = resident_memory_mb()
    block = bytearray(b"\x01") * (96 * MIB)
    grown = resident_memory_mb()
    del block
    shrunk = resident_memory_mb()
    assert grown - before > 80
    assert grown - shrunk > 80


def test_without_proc_it_falls_back_to_the_peak(tmp_path: Path) -> None:
    peak = resident_memory_mb(tmp_path / "no-statm")
    assert peak >= resident_memory_mb() - 2.0
    assert peak > 10


def scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    probe = ProbeServer(registry=registry).start()
    try:
        with urllib.request.urlopen(f"{probe.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        probe.stop()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_every_probe_server_exposes_it_without_labels_and_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    first = scrape(registry)[MEMORY_GAUGE]
    block = bytearray(b"\x01") * (64 * MIB)
    second = scrape(registry)[MEMORY_GAUGE]
    del block
    assert [labels for labels, _ in first + second] == [{}, {}], "one series, no chat_id"
    assert second[0][1] - first[0][1] > 50


def test_registering_twice_keeps_one_gauge() -> None:
    registry = CollectorRegistry()
    register_process_metrics(registry)
    register_process_metrics(registry)
    assert len(scrape(registry)[MEMORY_GAUGE]) == 1
