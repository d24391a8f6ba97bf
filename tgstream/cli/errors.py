"""How every command reports a failure: one red line, a non-zero exit, no traceback for known errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from tgstream.config import ConfigError, Settings, load_settings

err_console = Console(stderr=True)


class CommandError(Exception):
    """A failure the user can act on; the message says what to do."""


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except (ConfigError, CommandError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def settings_or_exit() -> Settings:
    """Settings for a command, or the one-line config error and exit code 2."""
    with reported_errors():
        return load_settings()
    raise AssertionError("unreachable")  # pragma: no cover
