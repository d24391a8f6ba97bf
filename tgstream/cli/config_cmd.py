"""`tgstream config`: show what a process would run with, secrets masked."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from tgstream.cli.errors import settings_or_exit

config_app = typer.Typer(help="Inspect and validate configuration (env vars and .env).", no_args_is_help=True)


@config_app.command("check")
def check() -> None:
    """Validate every setting and print them, with secrets masked; exit 2 on a bad value."""
    settings = settings_or_exit()
    table = Table("setting", "value", title="tgstream configuration")
    for name, value in settings.model_dump().items():
        table.add_row(name.upper(), str(value))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
