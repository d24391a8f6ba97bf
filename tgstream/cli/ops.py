"""`tgstream backup`, `tgstream restore` and `tgstream recovery init|status`: operator tasks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

console = Console()
recovery_app = typer.Typer(help="Bytewax recovery partitions of the dataflow.", no_args_is_help=True)

PgBinDirOption = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin-dir",
        envvar="PG_BIN_DIR",
        help="Directory with pg_dump/pg_restore (default: the pgserver wheel's, then PATH).",
    ),
]
SkipOption = Annotated[
    list[str] | None,
    typer.Option("--skip", help="Leave out a part (repeatable): postgres, redis, recovery."),
]


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[part]:<9}[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


def _reporter(progress: Progress) -> Callable[[str, str], None]:
    tasks: dict[str, TaskID] = {}

    def report(part: str, message: str) -> None:
        if part not in tasks:
            tasks[part] = progress.add_task(message, part=part, total=None)
        progress.update(tasks[part], description=message)

    return report


def backup(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", envvar="TGSTREAM_BACKUP_DIR", help="Directory for the archive (default: .dev/backups)."
        ),
    ] = None,
    skip: SkipOption = None,
    pg_bin_dir: PgBinDirOption = None,
) -> None:
    """Write one timestamped archive: Postgres dump, Redis conversation state, recovery partitions."""
    from tgstream.ops.backup import BackupError, BackupSources, create_backup

    settings = settings_or_exit()
    sources = BackupSources(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        recovery_dir=settings.recovery_dir,
        pg_bin_dir=pg_bin_dir,
        skip=frozenset(skip or ()),
    )
    with reported_errors():
        with _progress() as progress:
            try:
                result = create_backup(
                    sources, out or settings.dev_dir / "backups", progress=_reporter(progress)
                )
            except BackupError as exc:
                raise CommandError(f"backup failed, no archive written: {exc}") from exc
        manifest = result.manifest
        table = Table("part", "content", title=f"backup {result.archive}")
        if manifest.postgres:
            rows = ", ".join(f"{t} {n}" for t, n in manifest.postgres.tables.items())
            table.add_row("postgres", f"{rows}; vector dims {manifest.postgres.vector_dims or '-'}")
        if manifest.redis:
            table.add_row("redis", f"{manifest.redis.keys} keys {manifest.redis.by_type}")
        if manifest.recovery:
            parts = manifest.recovery.partitions
            table.add_row("recovery", f"{len(parts)} partition(s) from {manifest.recovery.source_dir}")
        size = result.archive.stat().st_size
        table.add_row("archive", f"{size / 1024:.1f} KiB, {len(manifest.files)} files with sha256")
        console.print(table)
        if manifest.recovery and manifest.recovery.missing_indices:
            console.print(
                f"[yellow]note:[/] recovery partitions {manifest.recovery.missing_indices} live on other "
                "dataflow volumes; back those up too (see docs/operations.md)"
            )


def restore(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A tgstream backup .tar.gz")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before replacing data.")] = False,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Restore into this database instead of DATABASE_URL.")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Restore into this Redis instead of REDIS_URL.")
    ] = None,
    recovery_dir: Annotated[
        Path | None, typer.Option("--recovery-dir", help="Install partitions here instead of RECOVERY_DIR.")
    ] = None,
    skip: SkipOption = None,
    pg_bin_dir: PgBinDirOption = None,
) -> None:
    """Verify every checksum, restore Postgres, Redis and recovery partitions, then check integrity."""
    from tgstream.ops.archive import ArchiveError, Manifest
    from tgstream.ops.restore import RestoreError, RestoreTargets, restore_archive

    settings = settings_or_exit()
    targets = RestoreTargets(
        database_url=database_url or settings.database_url,
        redis_url=redis_url or settings.redis_url,
        recovery_dir=recovery_dir or settings.recovery_dir,
        pg_bin_dir=pg_bin_dir,
        skip=frozenset(skip or ()),
    )

    def confirm(manifest: Manifest) -> bool:
        console.print(f"[green]verified[/] {archive.name}: {len(manifest.files)} files, all checksums match")
        if yes:
            return True
        if not sys.stdin.isatty():
            raise CommandError("restore replaces data; pass --yes when not running interactively")
        from tgstream.ops.pg_tools import database_name

        console.print(
            f"This replaces the backed-up tables in database [bold]{database_name(targets.database_url)}[/], "
            f"the conversation keys in Redis, and the partitions in [bold]{targets.recovery_dir}[/] "
            "(the current ones are moved aside). Stop the dataflow first."
        )
        return typer.confirm("Restore now?", default=False)

    with reported_errors():
        try:
            with _progress() as progress:
                report = restore_archive(archive, targets, confirm=confirm, progress=_reporter(progress))
        except (ArchiveError, RestoreError) as exc:
            raise CommandError(str(exc)) from exc
        table = Table("store", "check", "expected", "actual", "", title="integrity after restore")
        for check in report.checks:
            mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
            table.add_row(check.store, check.name, check.expected, check.actual, mark)
        console.print(table)
        if report.set_aside:
            console.print(f"previous recovery partitions kept in {report.set_aside}")
        for note in report.notes:
            console.print(f"[yellow]note:[/] {note}")
        if not report.ok:
            raise CommandError("restore finished but integrity checks failed (see FAIL lines above)")
        console.print("[green]restore complete, all integrity checks passed[/]")


@recovery_app.command("init")
def recovery_init(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Recovery directory (default: RECOVERY_DIR).")
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option("--partitions", min=1, help="Partition count (default: RECOVERY_PARTITIONS)."),
    ] = None,
    initial_processes: Annotated[
        int,
        typer.Option("--initial-processes", min=1, help="Processes of the first deployment; never change."),
    ] = 1,
    process_id: Annotated[int, typer.Option("--process-id", min=0, help="This process's index.")] = 0,
) -> None:
    """Create this process's share of the recovery partitions; does nothing if already initialised."""
    from tgstream.ops.recovery_files import RecoveryFilesError, init_partition_share

    settings = settings_or_exit()
    target = directory or settings.recovery_dir
    with reported_errors():
        try:
            outcome = init_partition_share(
                target,
                partitions=partitions or settings.recovery_partitions,
                initial_processes=initial_processes,
                process_id=process_id,
            )
        except (RecoveryFilesError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if outcome.created:
            console.print(f"created recovery partitions {outcome.created} in {target}")
        else:
            console.print(f"{target} already holds partitions {outcome.already_present}; unchanged")


@recovery_app.command("status")
def recovery_status(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Recovery directory (default: RECOVERY_DIR).")
    ] = None,
) -> None:
    """List the partitions in a directory: index, total, executions, last worker count, snapshots."""
    from tgstream.ops.recovery_files import RecoveryFilesError, describe_partition, partition_files

    settings = settings_or_exit()
    target = directory or settings.recovery_dir
    with reported_errors():
        files = partition_files(target)
        if not files:
            raise CommandError(f"no recovery partitions in {target}")
        table = Table("file", "index", "of", "executions", "last workers", "snapshots", title=str(target))
        try:
            for path in files:
                part = describe_partition(path)
                table.add_row(
                    part.file,
                    str(part.part_index),
                    str(part.part_count),
                    str(part.executions),
                    str(part.last_worker_count or "-"),
                    str(part.snapshots),
                )
        except RecoveryFilesError as exc:
            raise CommandError(str(exc)) from exc
        console.print(table)


@recovery_app.command("vacuum")
def recovery_vacuum(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Recovery directory (default: RECOVERY_DIR).")
    ] = None,
) -> None:
    """Rewrite the partitions so erased snapshots leave no bytes behind (run with the dataflow stopped)."""
    from tgstream.ops.recovery_files import RecoveryFilesError, partition_files, vacuum_partitions

    settings = settings_or_exit()
    target = directory or settings.recovery_dir
    with reported_errors():
        if not partition_files(target):
            raise CommandError(f"no recovery partitions in {target}")
        try:
            done = vacuum_partitions(target)
        except RecoveryFilesError as exc:
            raise CommandError(str(exc)) from exc
        console.print(f"vacuumed {len(done)} recovery partitions in {target}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.add_typer(recovery_app, name="recovery")
