"""Every metric the Grafana dashboard queries is exposed by a real tgstream process.

Starts the real gateway, dataflow and sender (the load test's ``Stack``: fresh topics, the fake
Bot API and the OpenAI stub as the outside world) plus a poller, scrapes each ``/metrics`` and
reads it with prometheus-client's text parser. The dashboard's queries are parsed with a real
PromQL parser (``tests/unit/deploy/dashboard_queries.py``), so the names compared are the vector
selectors Prometheus would evaluate. The offline half (valid PromQL, names defined in the code)
is ``tests/unit/deploy/test_manifests.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "deploy"))

from dashboard_queries import dashboard_queries, exposition_names

from tgstream.loadtest.stack import Stack, StackOptions, free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMORY = "conversation_memory_usage_mb"
SOURCE_LAG = "tgstream_source_consumer_lag"
PROCESSES = ("gateway", "dataflow", "sender", "poller")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Scrape:
    pid: int
    names: frozenset[str]
    """Every sample name the exposition carries or may carry (see ``exposition_names``)."""
    samples: dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int, pid: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    names: set[str] = set()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        names |= exposition_names(family.name, family.type)
        for sample in family.samples:
            names.add(sample.name)
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return Scrape(pid, frozenset(names), samples)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(StackOptions(run_id=f"dash-{uuid.uuid4().hex[:8]}", stub_latency_ms=50)) as running:
        yield running


@pytest.fixture(scope="module")
def ports(stack: Stack) -> Iterator[dict[str, tuple[int, int]]]:
    """(port, pid) of each process; the poller is started here, the others by the stack."""
    ports = {p.name: (p.port, p.popen.pid) for p in stack.processes if p.name in PROCESSES}
    [poller_port] = free_ports(1)
    log = (stack.log_dir / "poller.log").open("ab")
    poller = subprocess.Popen(
        [sys.executable, "-m", "tgstream", "poller", "--port", str(poller_port), "--poll-timeout", "1"],
        env={**os.environ, **stack.env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(poller, poller_port, stack.log_dir / "poller.log")
        ports["poller"] = (poller_port, poller.pid)
        yield ports
    finally:
        poller.send_signal(signal.SIGTERM)
        try:
            poller.wait(timeout=15)
        except subprocess.TimeoutExpired:
            poller.kill()
            poller.wait(timeout=10)
        log.close()


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"poller exited:\n{log_path.read_text(errors='replace')[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"poller not healthy in 60 s:\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def scrapes(ports: dict[str, tuple[int, int]]) -> dict[str, Scrape]:
    assert set(ports) == set(PROCESSES)
    return {name: scrape(port, pid) for name, (port, pid) in ports.items()}


def test_every_metric_the_dashboard_queries_is_exposed_by_a_process(scrapes: dict[str, Scrape]) -> None:
    exposed = frozenset().union(*(s.names for s in scrapes.values()))
    queries = dashboard_queries()
    assert len(queries) >= 30
    missing = {metric for query in queries for metric in query.metrics if metric not in exposed}
    assert not missing, f"queried but exposed by no process: {missing}"


def test_memory_is_each_process_resident_set_without_labels(scrapes: dict[str, Scrape]) -> None:
    for name, scraped in scrapes.items():
        [(labels, value)] = scraped.samples[MEMORY]
        assert labels == {}, name
        rss = psutil.Process(scraped.pid).memory_info().rss / MIB
        assert abs(value - rss) < 5 + 0.05 * rss, f"{name}: {value:.1f} MiB vs RSS {rss:.1f} MiB"
        assert 20 < value < 4096, f"{name}: {value:.1f} MiB"


def test_no_process_exposes_a_per_chat_or_per_user_series(scrapes: dict[str, Scrape]) -> None:
    for name, scraped in scrapes.items():
        for metric, series in scraped.samples.items():
            assert not any({"chat_id", "user_id"} & labels.keys() for labels, _ in series), (name, metric)


def test_dataflow_reports_lag_for_every_inbound_partition(
    stack: Stack, ports: dict[str, tuple[int, int]]
) -> None:
    port, pid = ports["dataflow"]
    assert SOURCE_LAG in scrape(port, pid).names, "source_lag is not imported by the dataflow"
    partitions = {str(p) for p in range(stack.settings.messages_partitions)}
    deadline = time.monotonic() + 20
    while True:
        series = scrape(port, pid).samples.get(SOURCE_LAG, [])
        if {labels["partition"] for labels, _ in series} == partitions or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {labels["partition"] for labels, _ in series} == partitions
    assert all(labels.keys() == {"partition"} and value == 0 for labels, value in series), "idle topic"
