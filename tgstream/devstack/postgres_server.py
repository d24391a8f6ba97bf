"""PostgreSQL 16 + pgvector for dev, from the binaries bundled in the `pgserver` wheel.

We drive `initdb` and `postgres` directly instead of `pgserver.get_server()`: pgserver only listens on
a unix socket in its data dir and stops the server when the last Python handle exits, while every
tgstream process (and pg_dump) needs a long-lived server on the DATABASE_URL's TCP port. As root,
Postgres refuses to run, so both run as the unprivileged ``pgserver`` account (the name pgserver
itself uses); the server is stopped with SIGINT ("fast shutdown") to the postmaster pid.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from tgstream.devstack.service import (
    DevStackError,
    Endpoint,
    InstallError,
    Launch,
    Service,
    endpoint_from_url,
)
from tgstream.devstack.supervisor import RunAs

SERVICE_ACCOUNT = "pgserver"


def postgres_bin_dir() -> Path:
    """The directory holding pgserver's `postgres`, `initdb`, `psql` and `pg_dump`."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise InstallError("the pgserver wheel is not installed: run scripts/install.sh")
    return Path(spec.origin).parent / "pginstall" / "bin"


class PostgresServer(Service):
    name = "postgres"
    setting = "DATABASE_URL"
    start_timeout_s = 60.0
    stop_signal = signal.SIGINT
    stop_timeout_s = 30.0

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_url(self.settings.database_url, 5432)

    @property
    def display_address(self) -> str:
        return f"{self.endpoint}/{self._database}"

    @property
    def _database(self) -> str:
        return unquote(urlsplit(self.settings.database_url).path.lstrip("/")) or "postgres"

    @property
    def _superuser(self) -> str:
        return unquote(urlsplit(self.settings.database_url).username or "postgres")

    @property
    def _data_dir(self) -> Path:
        return self.paths.data(self.name) / "pgdata"

    def check_installed(self) -> None:
        if not (postgres_bin_dir() / "postgres").exists():
            raise InstallError(f"postgres binary missing in {postgres_bin_dir()}: reinstall pgserver")

    def _run_as(self) -> RunAs | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            try:
                subprocess.run(
                    ["useradd", "--system", "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                raise InstallError(
                    f"could not create the {SERVICE_ACCOUNT!r} account for Postgres: {exc}"
                ) from exc
            entry = pwd.getpwnam(SERVICE_ACCOUNT)
        return RunAs(entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name)

    def prepare(self) -> None:
        data = self._data_dir
        run_as = self._run_as()
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        if run_as is not None:
            _let_others_traverse(data.parent)
            os.chown(data, pwd.getpwnam(run_as.user).pw_uid, grp.getgrnam(run_as.group).gr_gid)
        command = [
            str(postgres_bin_dir() / "initdb"),
            "-D", str(data),
            "-U", self._superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ]  # fmt: skip
        log = self.paths.log_file(self.name)
        with log.open("ab") as out:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                user=run_as.user if run_as else None,
                group=run_as.group if run_as else None,
                extra_groups=[] if run_as else None,
            )
        if result.returncode != 0:
            raise DevStackError(f"initdb failed (exit {result.returncode}); see {log}")

    def launch(self) -> Launch:
        settings = {
            "listen_addresses": self.endpoint.host,
            "port": str(self.endpoint.port),
            "unix_socket_directories": "",
            "shared_buffers": "128MB",
            "max_connections": "200",
            "max_wal_size": "512MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        command = [str(postgres_bin_dir() / "postgres"), "-D", str(self._data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return Launch(command=tuple(command), run_as=self._run_as())

    def _connect(self, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.endpoint.host,
            port=self.endpoint.port,
            user=self._superuser,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def probe(self) -> bool:
        try:
            with self._connect("postgres") as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def after_start(self) -> None:
        """Create DATABASE_URL's database and enable pgvector in it, so migrations can assume both."""
        try:
            with self._connect("postgres") as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self._database,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._database)))
            with self._connect(self._database) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            raise DevStackError(f"could not create database {self._database!r} with pgvector: {exc}") from exc


def _let_others_traverse(path: Path) -> None:
    """Add o+x up the tree so the unprivileged postgres account can reach its data dir."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
