"""The `tgstream` command: one entry point for every process and operator task.

Each command group lives in its own module and registers itself here; heavy imports
(bytewax, torch, confluent-kafka) happen inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="tgstream",
    help="Stream-processing backend for AI companion bots on Telegram.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMMAND_MODULES = (
    "tgstream.cli.config_cmd",
    "tgstream.cli.dev",
    "tgstream.cli.admin",
    "tgstream.cli.stub",
    "tgstream.cli.telegram",
    "tgstream.cli.dataflow",
    "tgstream.cli.persona",
    "tgstream.cli.adapt",
    "tgstream.cli.ops",
    "tgstream.cli.loadtest",
    "tgstream.cli.demo",
    "tgstream.cli.privacy",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


if __name__ == "__main__":
    app()
