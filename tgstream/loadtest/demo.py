"""`make demo`: the whole system on this machine, with a real local model, in about two minutes.

1. Start the dev services (Kafka, Redis, Postgres with pgvector, llama.cpp with SmolLM2) unless
   they already run, create the default topics and apply the schema.
2. Start the fake Telegram server, gateway, dataflow and sender on the embedded defaults: the
   local model through llama.cpp and local MiniLM embeddings.
3. Drive about 50 simulated users for about a minute, with a live progress display.
4. Print the latency report, a few conversations, and where the Parquet events are, with a
   DuckDB query over them that runs.
5. Stop the processes it started, and the dev services if this demo started them.

The small local model answers a few turns per second at most on two cores, so the demo's
arrival rate is low and replies take seconds: that is the model, not the pipeline (run
``tgstream loadtest`` with the stub to measure the pipeline).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from tgstream.config import Settings
from tgstream.loadtest.results import RunResult
from tgstream.loadtest.run import LoadTestOptions, RunOutput, run_loadtest
from tgstream.loadtest.schedule import Phase, ThinkTime

DEMO_ENV = {
    "LLM_MAX_TOKENS": "64",
    "PARQUET_ROLL_S": "10",
}
"""Short answers keep the small model's queue short; frequent rolls commit Parquet files in time."""


DEMO_THINK = ThinkTime(min_s=20.0, median_s=30.0, max_s=90.0)
"""Slow thinkers, so that about 50 people each say hello and chat a little within the minute."""


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what to look at."""


@dataclass(frozen=True)
class DemoOptions:
    users: int = 50
    duration_s: float = 60.0
    rate: float = 1.5
    keep_services: bool = False
    conversations: int = 4


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """So that `kill <demo>` still runs the clean-up in ``finally`` blocks, like Ctrl-C does."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_services(settings: Settings, console: Console) -> list[str]:
    """`tgstream dev up`, `tgstream kafka init` and `tgstream db migrate`; returns what it started."""
    from tgstream.devstack.stack import DevStack, Outcome
    from tgstream.loadtest.stack_setup import create_topics, migrate_schema

    stack = DevStack(settings)
    with console.status("starting the dev services (first run: Kafka and the model take a minute)..."):
        results = stack.up(stack.select(None))
    for result in results:
        console.print(f"  {result.name:<9} {result.outcome} {result.address}", highlight=False)
    started = [r.name for r in results if r.outcome is Outcome.STARTED]
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        stop_services(settings, started, console)
        raise DemoError("; ".join(f"{r.name}: {r.error}" for r in failed))
    create_topics(settings)
    migrate_schema(settings)
    console.print("  topics created and schema migrated")
    return started


def stop_services(settings: Settings, names: list[str], console: Console) -> None:
    from tgstream.devstack.stack import DevStack

    if not names:
        return
    stack = DevStack(settings)
    with console.status(f"stopping the dev services this demo started: {', '.join(names)}"):
        stack.down(stack.select(names))


def conversations_table(result: RunResult, limit: int) -> Table:
    table = Table(title="Sample conversations (user → bot, end-to-end latency)", show_lines=True)
    table.add_column("chat", justify="right")
    table.add_column("user")
    table.add_column("bot")
    table.add_column("ms", justify="right")
    for conversation in result.conversations[:limit]:
        for user, bot, latency_ms in conversation.turns[:4]:
            table.add_row(str(conversation.chat_id)[-4:], user[:120], bot[:200], f"{latency_ms:,.0f}")
    return table


def parquet_report(parquet_dir: Path, console: Console) -> None:
    """Where the analytics events are, and a DuckDB query over them, run for real."""
    import duckdb

    files = sorted(parquet_dir.rglob("*.parquet"))
    console.print(f"\nParquet events: {parquet_dir} ({len(files)} files)")
    if not files:
        console.print("[yellow]no Parquet file was committed yet (files roll every PARQUET_ROLL_S)[/]")
        return
    query = (
        "SELECT event_type, count(*) AS events,\n"
        "       round(median(date_diff('millisecond', received_at, emitted_at))) AS median_ms,\n"
        "       round(avg(llm_ms)) AS avg_llm_ms\n"
        f"FROM read_parquet('{parquet_dir}/**/*.parquet', hive_partitioning = true)\n"
        "GROUP BY event_type ORDER BY events DESC"
    )
    console.print(f"[dim]duckdb>[/] {query}", highlight=False)
    try:
        with duckdb.connect() as db:
            cursor = db.execute(query)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise DemoError(f"the DuckDB query over {parquet_dir} failed: {exc}") from exc
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> RunOutput:
    with _sigterm_as_interrupt():
        console.rule("1. dev services")
        started = start_services(settings, console)
        try:
            console.rule("2-3. gateway, dataflow, sender and ~50 simulated users")
            output = run_loadtest(
                LoadTestOptions(
                    phases=(Phase("demo", options.rate, options.duration_s),),
                    users=options.users,
                    think=DEMO_THINK,
                    llm="local",
                    reply_timeout_s=120.0,
                    drain_timeout_s=120.0,
                    baseline_s=0.0,
                    sample_chats=options.conversations,
                    stack_env=DEMO_ENV,
                ),
                console=console,
                settings=settings,
            )
            console.rule("4. what the users saw, and the analytics")
            console.print(conversations_table(output.result, options.conversations))
            parquet_report(output.parquet_dir, console)
        finally:
            console.rule("5. clean-up")
            if options.keep_services:
                console.print("dev services left running (--keep-services); `make down` stops them")
            else:
                stop_services(settings, started, console)
    console.print(f"[bold green]demo done.[/] Report and plots in {output.out_dir}")
    return output
