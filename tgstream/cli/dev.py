"""`tgstream dev`: run the real services (Kafka, Postgres+pgvector, Redis, LLMs) on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

dev_app = typer.Typer(
    help="Start, inspect and stop the local dev services (state lives in .dev/).", no_args_is_help=True
)
console = Console()

OnlyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--only", help="Limit to these services (repeatable): redis, postgres, kafka, llm-stub, llama."
    ),
]


@dev_app.command("up")
def up(
    only: OnlyOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Do not start the llama.cpp server.")] = False,
) -> None:
    """Start every service that is not already running and wait until each is healthy."""
    from tgstream.devstack.service import DevStackError
    from tgstream.devstack.stack import DevStack, Outcome

    settings = settings_or_exit()
    with reported_errors():
        stack = DevStack(settings)
        try:
            services = [svc for svc in stack.select(only) if not (no_llm and svc.name == "llama")]
        except DevStackError as exc:
            raise CommandError(str(exc)) from exc
        started = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[service]:<9}[/]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            tasks: dict[str, TaskID] = {
                svc.name: progress.add_task("waiting", service=svc.name, total=None) for svc in services
            }

            def report(name: str, message: str) -> None:
                progress.update(tasks[name], description=message)

            results = stack.up(services, report)
        table = Table("service", "result", "address", "time", title="tgstream dev stack")
        for result in results:
            style = "red" if result.outcome is Outcome.FAILED else "green"
            seconds = f"{result.seconds:.1f} s" if result.outcome is Outcome.STARTED else ""
            table.add_row(result.name, f"[{style}]{result.outcome}[/]", result.address, seconds)
        console.print(table)
        failures = [result for result in results if result.outcome is Outcome.FAILED]
        for failure in failures:
            console.print(f"[bold red]{failure.name}:[/] {failure.error}", highlight=False, soft_wrap=True)
        if failures:
            raise CommandError(
                f"{len(failures)} service(s) failed to start: {', '.join(f.name for f in failures)}"
            )
        console.print(f"dev stack ready in {time.monotonic() - started:.1f} s; logs in {stack.paths.logs}")


@dev_app.command("down")
def down(only: OnlyOption = None) -> None:
    """Stop the services this checkout started (never processes it did not start)."""
    from tgstream.devstack.service import DevStackError
    from tgstream.devstack.stack import DevStack

    settings = settings_or_exit()
    with reported_errors():
        stack = DevStack(settings)
        try:
            services = stack.select(only)
        except DevStackError as exc:
            raise CommandError(str(exc)) from exc
        with console.status("stopping...") as status:
            results = stack.down(services, lambda name, msg: status.update(f"{name}: {msg}"))
        for name, was_running in results:
            console.print(f"{name:<9} {'stopped' if was_running else 'was not running'}")


@dev_app.command("status")
def status(
    logs: Annotated[
        int, typer.Option(min=0, help="Also print this many trailing log lines of each service that is down.")
    ] = 0,
) -> None:
    """Show each service's state; exit 1 if any service `dev up` was asked to run is down."""
    from tgstream.devstack import supervisor
    from tgstream.devstack.stack import DevStack, State

    settings = settings_or_exit()
    with reported_errors():
        stack = DevStack(settings)
        rows = stack.status()
    table = Table("service", "state", "pid", "address", title="tgstream dev stack")
    healthy = {State.RUNNING, State.UNMANAGED, State.EXTERNAL}
    for row in rows:
        colour = "green" if row.state in healthy else ("red" if row.wanted else "dim")
        state = row.state.value if row.wanted or row.state in healthy else f"{row.state} (not requested)"
        table.add_row(row.name, f"[{colour}]{state}[/]", str(row.pid or ""), row.address)
    console.print(table)
    down_rows = [row.name for row in rows if row.wanted and row.state not in healthy]
    if down_rows:
        console.print(f"[red]down:[/] {', '.join(down_rows)} — run `tgstream dev up`")
        for name in down_rows if logs else []:
            path = stack.paths.log_file(name)
            print(f"--- last {logs} lines of {path}")
            for line in supervisor.tail(path, logs):
                print(line)
        raise typer.Exit(1)


@dev_app.command("logs")
def logs(
    service: Annotated[str, typer.Argument(help="redis, postgres, kafka, llm-stub or llama.")],
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many trailing lines.")] = 50,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
) -> None:
    """Print a service's log file (.dev/logs/<service>.log)."""
    from tgstream.devstack import supervisor
    from tgstream.devstack.stack import SERVICE_NAMES, DevStack

    settings = settings_or_exit()
    with reported_errors():
        if service not in SERVICE_NAMES:
            raise CommandError(f"unknown service {service!r}; choose from {', '.join(SERVICE_NAMES)}")
        path = DevStack(settings).paths.log_file(service)
        if not path.exists():
            raise CommandError(f"no log yet at {path}; start it with `tgstream dev up --only {service}`")
    for line in supervisor.tail(path, lines):
        print(line)
    if follow:
        _follow(path)


def _follow(path: Path) -> None:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        try:
            while True:
                chunk = handle.readline()
                if chunk:
                    print(chunk.decode("utf-8", "replace"), end="", flush=True)
                else:
                    time.sleep(0.3)
        except KeyboardInterrupt:
            return


@dev_app.command("fetch-kafka")
def fetch_kafka() -> None:
    """Resolve the Kafka broker jars from Maven Central into .dev/cache/kafka/libs (no-op when cached)."""
    from tgstream.devstack.kafka_broker import fetch_jars, jars_present
    from tgstream.devstack.paths import DevPaths
    from tgstream.devstack.service import DevStackError

    settings = settings_or_exit()
    paths = DevPaths.at(settings.dev_dir)
    paths.ensure()
    with reported_errors():
        if jars_present(paths):
            console.print("Kafka jars already cached")
            return
        with console.status("resolving Kafka jars with mvn..."):
            try:
                target = fetch_jars(paths, log_path=paths.log_file("kafka-fetch"))
            except DevStackError as exc:
                raise CommandError(str(exc)) from exc
        console.print(f"Kafka jars in {target} ({sum(1 for _ in target.glob('*.jar'))} jars)")


def register(app: typer.Typer) -> None:
    app.add_typer(dev_app, name="dev")
