"""`tgstream forget --user ID` and `tgstream parquet compact`: erasure requests, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.console import Console

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit
from tgstream.config import Settings
from tgstream.connectors.postgres import DatabaseError, open_pool
from tgstream.connectors.redis_client import async_redis
from tgstream.ops.forget import ForgetError, ForgetReport, forget_user
from tgstream.ops.parquet_compact import compact

console = Console()
parquet_app = typer.Typer(help="Analytics Parquet files.", no_args_is_help=True)


async def _forget(settings: Settings, user_id: int) -> ForgetReport:
    pool = await open_pool(settings.database_url, min_size=1, max_size=1, timeout_s=10)
    client = async_redis(settings.redis_url, socket_timeout_s=5.0)
    try:
        return await forget_user(
            pool,
            client,
            user_id,
            parquet_dir=settings.parquet_dir,
            salt=settings.analytics_salt.get_secret_value().encode(),
            kafka=({"bootstrap.servers": settings.kafka_bootstrap_servers}, settings.topic_messages),
        )
    finally:
        await client.aclose()
        await pool.close()


def forget(
    user: Annotated[int, typer.Option("--user", help="Telegram user id to erase.")],
    skip_compact: Annotated[
        bool, typer.Option("--skip-compact", help="Only write the Parquet tombstone; compact later.")
    ] = False,
) -> None:
    """Erase a user from memories, facts, personas, Redis, the dataflow's state and the analytics."""
    settings = settings_or_exit()
    with reported_errors():
        try:
            report = asyncio.run(_forget(settings, user))
        except (DatabaseError, ForgetError, RedisError) as exc:
            raise CommandError(f"forget stopped ({exc}); it is safe to run it again") from exc
        console.print(
            f"user {user}: {report.memories} memories, {report.facts} facts, {report.assignments} persona "
            f"assignments, {report.redis_keys} Redis keys in {len(report.chats)} chats removed, "
            f"erasure sent to the dataflow; "
            f"analytics tombstone {report.user_hash}"
        )
        if not skip_compact:
            _compact(settings.parquet_dir)


def _compact(parquet_dir: Path) -> None:
    with console.status("compacting Parquet files") as status:
        result = compact(parquet_dir, progress=lambda path, _: status.update(f"compacting {path.name}"))
    console.print(
        f"parquet: {result.files_scanned} files scanned, {result.files_rewritten} rewritten, "
        f"{result.rows_removed} rows removed"
    )


@parquet_app.command("compact")
def compact_command(
    parquet_dir: Annotated[
        Path | None, typer.Option("--dir", help="Parquet root (default PARQUET_DIR).")
    ] = None,
) -> None:
    """Rewrite analytics files without the rows of users erased by `tgstream forget`."""
    settings = settings_or_exit()
    with reported_errors():
        root = parquet_dir or settings.parquet_dir
        if not root.is_dir():
            raise CommandError(f"no Parquet directory at {root}")
        _compact(root)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("forget")(forget)
    app.add_typer(parquet_app, name="parquet")
