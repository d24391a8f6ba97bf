"""`tgstream kafka init` and `tgstream db migrate|status`: create what the processes expect to exist."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

kafka_app = typer.Typer(help="Kafka topic administration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Postgres + pgvector).", no_args_is_help=True)
console = Console()


@kafka_app.command("init")
def kafka_init(
    grow: Annotated[
        bool,
        typer.Option(
            "--grow", help="Add partitions to topics that have fewer than configured (re-maps keys)."
        ),
    ] = False,
) -> None:
    """Create the topics idempotently; exit 1 if an existing topic has fewer partitions than configured."""
    from tgstream.connectors.kafka_admin import KafkaAdminError, admin_client, ensure_topics, topic_specs

    settings = settings_or_exit()
    with reported_errors():
        with console.status(f"checking topics on {settings.kafka_bootstrap_servers}..."):
            try:
                results = ensure_topics(admin_client(settings), topic_specs(settings), grow=grow)
            except KafkaAdminError as exc:
                raise CommandError(str(exc)) from exc
        table = Table("topic", "partitions", "config", "result", title="Kafka topics")
        for result in results:
            config = ", ".join(f"{k}={v}" for k, v in result.spec.config.items())
            style = "green" if result.ok else "red"
            table.add_row(result.spec.name, str(result.partitions), config, f"[{style}]{result.action}[/]")
        console.print(table)
        for result in results:
            for key, (wanted, actual) in result.config_drift.items():
                console.print(
                    f"[yellow]note:[/] {result.spec.name} has {key}={actual}, configured {wanted} (unchanged)"
                )
        short = [r for r in results if not r.ok]
        if short:
            names = ", ".join(f"{r.spec.name} ({r.partitions} < {r.spec.partitions})" for r in short)
            console.print(f"[red]too few partitions:[/] {names}; rerun with --grow to add them")
            raise typer.Exit(1)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations in order, each in its own transaction; safe to repeat."""
    from tgstream.state.migrate import MigrationError, migrate

    settings = settings_or_exit()
    with reported_errors():
        try:
            report = migrate(
                settings.database_url,
                on_apply=lambda m: console.print(f"applying {m.label}...", highlight=False),
            )
        except MigrationError as exc:
            raise CommandError(str(exc)) from exc
    if report.applied:
        console.print(
            f"applied {len(report.applied)} migration(s): {', '.join(m.label for m in report.applied)}"
        )
    console.print(f"schema up to date ({len(report.applied) + len(report.already_applied)} migrations)")


@db_app.command("status")
def db_status() -> None:
    """List migrations and whether each is applied; exit 1 if any is pending."""
    from tgstream.state.migrate import MigrationError, applied_versions, load_migrations

    settings = settings_or_exit()
    with reported_errors():
        try:
            applied = applied_versions(settings.database_url)
            migrations = load_migrations()
        except MigrationError as exc:
            raise CommandError(str(exc)) from exc
    table = Table("migration", "applied at", title="schema migrations")
    for migration in migrations:
        when = applied.get(migration.version, ("", "[red]pending[/]"))[1]
        table.add_row(migration.label, when)
    console.print(table)
    if any(m.version not in applied for m in migrations):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
    app.add_typer(db_app, name="db")
