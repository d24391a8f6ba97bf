"""pg_dump and pg_restore for the backup: where the binaries are and how to call them safely.

The password never goes on a command line (``ps`` shows those to every user): it is removed
from the connection string and handed over in ``PGPASSWORD``.

Binary lookup order: an explicit directory (``--pg-bin-dir`` / ``PG_BIN_DIR``), then the
PostgreSQL bundled in the ``pgserver`` wheel (the dev stack's server, so versions match), then
``PATH``. pg_dump refuses servers newer than itself, so production images carry a client at
least as new as the server (deploy/Dockerfile installs Debian's postgresql-client 17).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_TIMEOUT_S = 3600


class PgToolError(Exception):
    """A Postgres client tool is missing or failed; the message carries its stderr."""


def find_pg_tool(name: str, bin_dir: Path | None = None) -> Path:
    if bin_dir is not None:
        candidate = bin_dir / name
        if not candidate.is_file():
            raise PgToolError(f"{name} not found in {bin_dir} (from --pg-bin-dir / PG_BIN_DIR)")
        return candidate
    bundled = _pgserver_bin_dir()
    if bundled is not None and (bundled / name).is_file():
        return bundled / name
    found = shutil.which(name)
    if found is None:
        raise PgToolError(
            f"{name} not found: install the PostgreSQL client (16 or newer) or pass --pg-bin-dir"
        )
    return Path(found)


def _pgserver_bin_dir() -> Path | None:
    try:
        from tgstream.devstack.postgres_server import postgres_bin_dir
        from tgstream.devstack.service import InstallError
    except ImportError:
        return None
    try:
        return postgres_bin_dir()
    except InstallError:
        return None


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """A conninfo string without the password, and the environment that carries it."""
    try:
        params = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError as exc:
        raise PgToolError(f"DATABASE_URL is not a valid connection string: {exc}") from exc
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password is not None else {}
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def database_name(database_url: str) -> str:
    return str(conninfo_to_dict(database_url).get("dbname") or "postgres")


def tool_version(tool: Path) -> str:
    return run_tool([str(tool), "--version"], env={}).strip()


def run_tool(command: Sequence[str], *, env: Mapping[str, str]) -> str:
    """Run a pg client; a failure raises PgToolError with the tool's own message."""
    try:
        result = subprocess.run(
            list(command),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PgToolError(f"{Path(command[0]).name} could not run: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise PgToolError(f"{Path(command[0]).name} failed (exit {result.returncode}): " + " | ".join(detail))
    return result.stdout


def pg_dump(tool: Path, database_url: str, schema: str, out: Path, *, snapshot: str | None = None) -> None:
    """Custom-format dump of everything in ``schema`` (tables, functions, triggers), in a snapshot.

    A whole schema rather than a table list: a migration that adds a table (with a foreign key to
    one we dump) would otherwise make the backup silently incomplete and the restore fail.
    Extensions are not part of it; the restore creates ``vector`` itself.
    """
    conninfo, env = libpq_target(database_url)
    command = [str(tool), "--format=custom", "--no-owner", "--no-privileges", f"--schema={schema}"]
    if snapshot is not None:
        command.append(f"--snapshot={snapshot}")
    command += [f"--file={out}", f"--dbname={conninfo}"]
    run_tool(command, env=env)


def pg_restore(tool: Path, database_url: str, dump: Path) -> None:
    """Replace the dumped objects in ``database_url`` in one transaction: all of them or none.

    The schema's own entry is left out of the restore list: ``--clean`` would try to drop the
    ``public`` schema itself, which the ``vector`` extension lives in.
    """
    conninfo, env = libpq_target(database_url)
    toc = run_tool([str(tool), "--list", str(dump)], env={})
    kept = [line for line in toc.splitlines() if not _is_schema_entry(line)]
    list_file = dump.with_name(dump.name + ".list")
    list_file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    command = [
        str(tool),
        f"--use-list={list_file}",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={conninfo}",
        str(dump),
    ]
    try:
        run_tool(command, env=env)
    except PgToolError as exc:
        if "depend on it" in str(exc):
            raise PgToolError(
                f"{exc} -- the target database holds objects this backup does not know (a newer "
                "schema?); restore into an empty database, or drop those objects first"
            ) from exc
        raise


def _is_schema_entry(toc_line: str) -> bool:
    """``123; 2615 2200 SCHEMA - public owner`` and the COMMENT on it."""
    fields = toc_line.split()
    return (
        len(fields) >= 6
        and not toc_line.startswith(";")
        and (fields[3:5] == ["SCHEMA", "-"] or fields[3:6] == ["COMMENT", "-", "SCHEMA"])
    )
