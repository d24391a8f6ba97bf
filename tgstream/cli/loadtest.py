"""`tgstream loadtest`: simulated users against the real stack, measured end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

SMOKE_PHASES = "smoke:5:6s"
SMOKE_USERS = 15
"""Users thinking 1-3 s: each sends /start and a few chat turns in 6 s, well inside 10 a minute."""


def loadtest(
    scale: Annotated[float, typer.Option(min=0.0001, help="Multiply every phase's rate by this.")] = 1.0,
    phases: Annotated[
        str | None,
        typer.Option(
            help="name:rate:duration[,...], e.g. warmup:10:30s,normal:100:60s. "
            "Default: the seed's rates 10/100/200/500/1000 msg/s, about 3 minutes in all."
        ),
    ] = None,
    seed_plan: Annotated[
        bool, typer.Option("--seed-plan", help="The seed document's full 32-minute plan.")
    ] = False,
    users: Annotated[
        int | None, typer.Option(min=1, help="Most users active at once; default: enough for the peak rate.")
    ] = None,
    llm: Annotated[str, typer.Option(help="stub (fixed-latency OpenAI stub) or local (llama.cpp).")] = "stub",
    stub_latency_ms: Annotated[float, typer.Option(min=0, help="The stub's fixed latency.")] = 300.0,
    out: Annotated[
        Path | None, typer.Option(help="Where result.json and the plots go; default .dev/loadtest/<run>/.")
    ] = None,
    smoke: Annotated[
        bool, typer.Option(help=f"A few seconds at a low rate ({SMOKE_PHASES}); exit 1 on any loss.")
    ] = False,
    fail_on_loss: Annotated[
        bool, typer.Option(help="Exit 1 if any accepted message went unanswered or was answered twice.")
    ] = False,
    arrivals: Annotated[str, typer.Option(help="poisson or uniform.")] = "poisson",
    seed: Annotated[int, typer.Option(help="Seed for arrivals, users and their scripts.")] = 1,
    reply_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds a user waits for a reply before writing again.")
    ] = 30.0,
    drain_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the last replies after the plan ends.")
    ] = 30.0,
    dataflow_processes: Annotated[int, typer.Option(min=1, max=8, help="Dataflow processes.")] = 1,
    gateway_workers: Annotated[int, typer.Option(min=1, max=8, help="Gateway processes.")] = 1,
    baseline: Annotated[
        float, typer.Option(min=0, help="Seconds of idle CPU measured before the run.")
    ] = 2.0,
    plots: Annotated[bool, typer.Option(help="Write latency.png and throughput.png.")] = True,
    live: Annotated[bool, typer.Option(help="Show the live progress display.")] = True,
) -> None:
    """Drive simulated users through the gateway and measure each reply at the fake Telegram server.

    Starts its own fake Telegram, OpenAI stub (with --llm stub), gateway, dataflow and sender on
    top of `tgstream dev up`'s services, on fresh topics, and stops them at the end.
    """
    from tgstream.loadtest.driver import DriverError
    from tgstream.loadtest.run import LoadTestOptions, run_loadtest
    from tgstream.loadtest.schedule import (
        DEFAULT_PHASES,
        SEED_PHASES,
        ScheduleError,
        ThinkTime,
        parse_phases,
        scale_phases,
    )
    from tgstream.loadtest.stack import StackError
    from tgstream.loadtest.stack_setup import StackSetupError

    settings = settings_or_exit()
    with reported_errors():
        if llm not in ("stub", "local"):
            raise CommandError(f"--llm must be stub or local, got {llm!r}")
        if arrivals not in ("poisson", "uniform"):
            raise CommandError(f"--arrivals must be poisson or uniform, got {arrivals!r}")
        spec = SMOKE_PHASES if smoke else phases
        try:
            plan = parse_phases(spec) if spec else (SEED_PHASES if seed_plan else DEFAULT_PHASES)
            plan = scale_phases(plan, scale)
        except ScheduleError as exc:
            raise CommandError(f"--phases: {exc}") from exc
        options = LoadTestOptions(
            phases=plan,
            users=users or (SMOKE_USERS if smoke else None),
            think=ThinkTime(min_s=1.0, median_s=1.5, max_s=3.0) if smoke else ThinkTime(),
            llm=llm,  # type: ignore[arg-type]
            stub_latency_ms=stub_latency_ms,
            out_dir=out,
            seed=seed,
            process=arrivals,  # type: ignore[arg-type]
            reply_timeout_s=reply_timeout,
            drain_timeout_s=drain_timeout,
            dataflow_processes=dataflow_processes,
            gateway_workers=gateway_workers,
            baseline_s=0.0 if smoke else baseline,
            display=live,
            plots=plots and not smoke,
        )
        try:
            output = run_loadtest(options, settings=settings)
        except (StackError, StackSetupError, DriverError) as exc:
            raise CommandError(str(exc)) from exc
    if (smoke or fail_on_loss) and not output.result.zero_loss:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("loadtest")(loadtest)
