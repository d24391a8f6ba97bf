"""`tgstream demo` (what `make demo` runs): the whole system with a real local model and 50 users."""

from __future__ import annotations

from typing import Annotated

import typer

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit


def demo(
    users: Annotated[int, typer.Option(min=1, max=1000, help="Simulated users.")] = 50,
    duration: Annotated[float, typer.Option(min=5, help="Seconds of simulated traffic.")] = 60.0,
    rate: Annotated[float, typer.Option(min=0.1, help="Messages per second offered.")] = 1.5,
    keep_services: Annotated[
        bool, typer.Option(help="Leave the dev services running even if the demo started them.")
    ] = False,
) -> None:
    """Start everything, chat with simulated users for a minute, report, and stop what it started."""
    import sys

    from rich.console import Console

    from tgstream.loadtest.demo import DemoError, DemoOptions, run_demo
    from tgstream.loadtest.driver import DriverError
    from tgstream.loadtest.stack import StackError
    from tgstream.loadtest.stack_setup import StackSetupError

    settings = settings_or_exit()
    console = Console(width=None if sys.stdout.isatty() else 160)
    with reported_errors():
        try:
            run_demo(
                settings,
                DemoOptions(users=users, duration_s=duration, rate=rate, keep_services=keep_services),
                console,
            )
        except (DemoError, StackError, StackSetupError, DriverError) as exc:
            raise CommandError(str(exc)) from exc


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
