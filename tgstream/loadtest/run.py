"""One load test run from start to finish: stack up, idle CPU baseline, drive, report, stack down.

Shared by `tgstream loadtest`, the demo and the benchmark scripts, which differ only in options.
"""

from __future__ import annotations

import os
import platform
import random
import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from tgstream.config import Settings, load_settings
from tgstream.connectors import event_loops
from tgstream.loadtest.cpu import (
    CpuMeter,
    CpuUsage,
    ProcessGroup,
    dev_service_groups,
    idle_baseline,
    merge_groups,
)
from tgstream.loadtest.display import LiveDisplay
from tgstream.loadtest.driver import Driver, DriverConfig
from tgstream.loadtest.pg_backends import backend_resolver
from tgstream.loadtest.report import summary_group, write_json, write_plots
from tgstream.loadtest.results import Conversation, RunResult, lost_by_phase, phase_result, timeline_rows
from tgstream.loadtest.scenario import run_ids
from tgstream.loadtest.schedule import ArrivalProcess, Phase, ThinkTime, total_duration, users_needed
from tgstream.loadtest.stack import LlmMode, Stack, StackOptions

TIMELINE_BUCKETS = 120


@dataclass(frozen=True)
class LoadTestOptions:
    phases: tuple[Phase, ...]
    users: int | None = None
    llm: LlmMode = "stub"
    stub_latency_ms: float = 300.0
    out_dir: Path | None = None
    seed: int = 1
    process: ArrivalProcess = "poisson"
    think: ThinkTime = field(default_factory=ThinkTime)
    reply_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    dataflow_processes: int = 1
    gateway_workers: int = 1
    baseline_s: float = 2.0
    display: bool = True
    sample_chats: int = 3
    keep_topics: bool = False
    plots: bool = True
    stack_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutput:
    result: RunResult
    out_dir: Path
    files: tuple[Path, ...]
    parquet_dir: Path


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on, for the JSON and docs/benchmarks.md.

    The load average at the start shows whether something else was competing for the cores.
    """
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def process_groups(stack: Stack, settings: Settings, *, llm: LlmMode) -> tuple[ProcessGroup, ...]:
    """Everything whose CPU we price: dev services, the stack's processes and this process.

    The dev stack's own OpenAI stub is idle during a run (the stack starts its own), and the
    llama server matters only when it is the model in use. Postgres counts only the backends
    connected to the stack's processes: the dev database is shared with other work.
    """
    clients = tuple(proc.popen.pid for proc in stack.processes)
    dev = []
    for group in dev_service_groups(settings.dev_dir.resolve() / "run"):
        if group.name == "llm-stub" or (llm == "stub" and group.name == "llama"):
            continue
        if group.name == "postgres":
            port = urlsplit(settings.database_url).port or 5432
            members = backend_resolver(group.pids[0], port, lambda: clients)
            group = ProcessGroup("postgres", "pipeline", group.pids, members=members)
        dev.append(group)
    me = ProcessGroup("loadtest", "generator", (os.getpid(),), tree=False)
    return merge_groups([*dev, *stack.groups(), me])


def _expected_latency_s(options: LoadTestOptions) -> float:
    return options.stub_latency_ms / 1000 + 0.2 if options.llm == "stub" else 5.0


def run_loadtest(
    options: LoadTestOptions, *, console: Console | None = None, settings: Settings | None = None
) -> RunOutput:
    """Start a stack, drive it with the phases, and write the report; the stack is always stopped."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    settings = settings or load_settings()
    run_id = new_run_id()
    peak = max(phase.rate for phase in options.phases)
    max_users = options.users or users_needed(peak, options.think, _expected_latency_s(options))
    stack_options = StackOptions(
        run_id=run_id,
        llm=options.llm,
        stub_latency_ms=options.stub_latency_ms,
        dataflow_processes=options.dataflow_processes,
        gateway_workers=options.gateway_workers,
        keep_topics=options.keep_topics,
        start_timeout_s=90.0 if options.llm == "stub" else 300.0,
        env=options.stack_env,
    )
    with ExitStack() as cleanup:
        stack = Stack(stack_options, settings=settings)
        out_dir = options.out_dir or stack.run_dir
        with console.status(f"starting the stack for run {run_id} (logs in {stack.log_dir})..."):
            cleanup.enter_context(stack)
        console.print(f"stack up: gateway {stack.webhook_url}, fake Telegram {stack.telegram_url}")
        meter = CpuMeter(process_groups(stack, settings, llm=options.llm))
        baseline = None
        if options.baseline_s > 0:
            with console.status(f"measuring idle CPU for {options.baseline_s:g} s..."):
                baseline = idle_baseline(meter, options.baseline_s)
        config = DriverConfig(
            webhook_url=stack.webhook_url,
            secret=stack.settings.webhook_secret.get_secret_value(),
            telegram_url=stack.telegram_url,
            phases=options.phases,
            max_users=max_users,
            seed=options.seed,
            process=options.process,
            think=options.think,
            reply_timeout_s=options.reply_timeout_s,
            drain_timeout_s=options.drain_timeout_s,
            sample_chats=options.sample_chats,
        )
        ids = run_ids(time.time(), random.Random())
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        with LiveDisplay(enabled=options.display, console=console) as display:
            driver = Driver(config, ids=ids, cpu=meter, on_progress=display.update)
            event_loops.run(driver.run())
        parquet_dir = stack.parquet_dir
    meta = {
        "run_id": run_id,
        "command": " ".join(["tgstream", *sys.argv[1:]]) if sys.argv else "",
        "started_at": started_at,
        "machine": machine_facts(),
        "llm": options.llm,
        "model_latency_ms": options.stub_latency_ms if options.llm == "stub" else None,
        "users_max": max_users,
        "users_joined": driver.pool.joined,
        "arrivals": options.process,
        "seed": options.seed,
        "phases": [asdict(p) for p in options.phases],
        "dataflow_processes": options.dataflow_processes,
        "gateway_workers": options.gateway_workers,
        "logs": str(stack.log_dir),
        "parquet_dir": str(parquet_dir),
        "collector_poll_errors": driver.collector.poll_errors,
    }
    result = build_result(driver, options, meta, baseline)
    console.print(summary_group(result))
    files = [write_json(result, out_dir / "result.json")]
    if options.plots:
        files += write_plots(result, out_dir)
    console.print("wrote " + ", ".join(str(f) for f in files))
    return RunOutput(result, out_dir, tuple(files), parquet_dir)


def build_result(
    driver: Driver, options: LoadTestOptions, meta: dict[str, Any], baseline: CpuUsage | None
) -> RunResult:
    model_s = options.stub_latency_ms / 1000 if options.llm == "stub" else None
    idle = {name: s / baseline.wall_s for name, s in baseline.seconds.items()} if baseline else {}
    lost = lost_by_phase(driver.tracker.outstanding(), len(options.phases))
    phases = tuple(
        phase_result(
            i,
            phase,
            driver.counters[i],
            driver.log,
            lost=lost[i],
            model_latency_s=model_s,
            cpu=driver.windows.cpu[i],
            idle_cores=idle or None,
        )
        for i, phase in enumerate(options.phases)
    )
    counters = driver.counters
    totals = {
        "sent": sum(c.sent for c in counters),
        "accepted": sum(c.accepted for c in counters),
        "rejected": sum(c.rejected for c in counters),
        "errors": sum(c.errors for c in counters),
        "answered": driver.tracker.answered,
        "lost": sum(lost),
        "extra": driver.tracker.extra,
        "merged": driver.tracker.merged,
        "skipped": sum(c.skipped for c in counters),
    }
    width = max(1.0, total_duration(options.phases) / TIMELINE_BUCKETS)
    conversations = tuple(Conversation(chat, tuple(turns)) for chat, turns in driver.conversations.items())
    return RunResult(
        meta=meta,
        phases=phases,
        totals=totals,
        cpu_idle_cores=idle,
        timeline=timeline_rows(driver.log, width, until=None),
        conversations=conversations,
    )
