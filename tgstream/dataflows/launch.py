"""Running the conversation flow as a process: logging, recovery set-up, the probe server, Bytewax.

Recovery is always on, because ``KafkaSource`` keeps its offsets only in recovery state:
without it a restart would re-read the whole topic. Which partitions this process holds, and
when it may create a fresh set, is :mod:`tgstream.dataflows.recovery_setup`'s business.

We call Bytewax's ``cli_main`` in-process rather than spawning ``python -m bytewax.run``: the
same call with the same flags, minus one interpreter, and it lets the snapshot interval be
fractional and the probe server share the process's Prometheus registry.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from tgstream.config import Settings
from tgstream.dataflows import metrics
from tgstream.dataflows.conversation import build_flow
from tgstream.dataflows.recovery_setup import RecoverySetupError, Topology, ensure_recovery
from tgstream.dataflows.runner import ProcessServices
from tgstream.dataflows.services import process_services
from tgstream.observability.logging import configure_logging
from tgstream.observability.probe_server import ProbeServer

log = structlog.get_logger(__name__)

STATUS_EVERY_S = 10.0
UNHEALTHY_LOOP_LAG_S = 5.0


class LaunchError(Exception):
    """The process cannot start as asked; the message says what to change."""


def _health(services: ProcessServices | None) -> tuple[bool, dict[str, Any]]:
    if services is None:
        return True, {"phase": "starting"}
    lag = services.loop.lag_s()
    details = {
        "phase": "running",
        "loop_lag_s": round(lag, 3),
        "jobs_in_flight": services.runner.backlog(),
        "expected_turn_s": round(services.runner.expected_latency_s(), 3),
    }
    return services.loop.running and lag < UNHEALTHY_LOOP_LAG_S, details


def _report_progress(stop: threading.Event) -> None:
    """One status line every few seconds, so an operator sees the process is moving."""
    last_total = 0.0
    while not stop.wait(STATUS_EVERY_S):
        total = sum(
            sample.value
            for metric in metrics.CONVERSATIONS.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        log.info(
            "dataflow.progress",
            turns_answered=int(total),
            turns_per_s=round((total - last_total) / STATUS_EVERY_S, 1),
            jobs_in_flight=int(metrics.JOBS_IN_FLIGHT._value.get()),
        )
        last_total = total


def _stop_on_sigterm() -> None:
    """Let SIGTERM stop Bytewax the way Ctrl-C does (it checks for Python signals while running)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


GC_YOUNG_THRESHOLD = 20_000


def _calm_garbage_collector() -> None:
    """Collect the young generation every 20,000 allocations instead of 700, and never scan start-up.

    The dataflow holds thousands of chats' context windows, and each epoch allocates many short-
    lived objects (records, snapshots); with the default threshold the collector was 15 % of the
    Bytewax worker thread's samples under load (py-spy --native). Reference counting frees
    almost everything here; the collector only has cycles to find. ``gc.freeze()`` moves what
    start-up built (modules, clients, the flow) out of every later collection.
    """
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def run_process(
    settings: Settings,
    topology: Topology,
    *,
    recovery_dir: Path,
    snapshot_interval_s: float,
    metrics_host: str = "127.0.0.1",
    metrics_port: int = 0,
) -> None:
    """Run this process's share of the dataflow until interrupted; recovery always on.

    Logging is set up first, so even a refused start-up is a JSON line with ids hashed and
    secrets redacted, like every line after it.
    """
    configure_logging(settings)
    try:
        share = ensure_recovery(recovery_dir, settings.recovery_partitions, topology)
    except RecoverySetupError as exc:
        raise LaunchError(str(exc)) from exc
    services: ProcessServices | None = None
    probe = ProbeServer(host=metrics_host, port=metrics_port, health=lambda: _health(services)).start()
    stop = threading.Event()
    threading.Thread(target=_report_progress, args=(stop,), name="progress", daemon=True).start()
    log.info(
        "dataflow.starting",
        topic=settings.topic_messages,
        workers_per_process=topology.workers_per_process,
        process_id=topology.process_id,
        processes=max(1, len(topology.addresses)),
        recovery_dir=str(recovery_dir),
        recovery_partitions_held=list(share.indices),
        recovery_partitions_total=share.total,
        snapshot_interval_s=snapshot_interval_s,
        probe=probe.url,
    )
    _stop_on_sigterm()
    started = time.monotonic()
    try:
        services = process_services(settings)
        flow = build_flow(settings, services=services)
        _calm_garbage_collector()
        cli_main(  # type: ignore[no-untyped-call]
            flow,
            workers_per_process=topology.workers_per_process,
            process_id=topology.process_id,
            addresses=list(topology.addresses) or None,
            epoch_interval=timedelta(seconds=snapshot_interval_s),
            recovery_config=RecoveryConfig(recovery_dir),  # type: ignore[no-untyped-call]
        )
    except KeyboardInterrupt:
        log.info("dataflow.interrupted", ran_s=round(time.monotonic() - started, 1))
    except BytewaxRuntimeError as exc:
        # Bytewax wraps the KeyboardInterrupt our SIGTERM handler raises; anything else is a crash.
        if not isinstance(exc.__cause__, KeyboardInterrupt):
            raise
        log.info("dataflow.interrupted", ran_s=round(time.monotonic() - started, 1))
    finally:
        stop.set()
        probe.stop()
        if services is not None:
            services.close()
