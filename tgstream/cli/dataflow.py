"""`tgstream dataflow`: run the conversation dataflow (Bytewax), recovery always on.

Scale within a process with ``-w`` (threads; they share the GIL, so usually 1) and across
processes with ``--processes M`` (a local cluster on this machine) or, on several hosts,
``--process-id I --addresses "h1:p;h2:p"`` on each.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from tgstream.cli.errors import CommandError, err_console, reported_errors, settings_or_exit
from tgstream.config import Settings


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_local_cluster(processes: int, args: list[str]) -> int:
    """Start ``processes`` copies of this command as one Bytewax cluster on loopback; wait for all."""
    addresses = ";".join(f"127.0.0.1:{port}" for port in _free_ports(processes))
    children = [
        subprocess.Popen([sys.executable, "-m", "tgstream", "dataflow", *args, "-i", str(i), "-a", addresses])
        for i in range(processes)
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, key=abs)


def _prepare_shared_recovery(settings: Settings, directory: Path, workers_per_process: int) -> None:
    """Create (or check) the local cluster's one shared set before its processes start.

    Left to the children, process 0 would be creating files while its peers already list the
    directory; here the set is complete before any of them looks.
    """
    from tgstream.dataflows.recovery_setup import RecoverySetupError, Topology, ensure_recovery
    from tgstream.observability.logging import configure_logging

    configure_logging(settings)
    try:
        ensure_recovery(directory, settings.recovery_partitions, Topology(workers_per_process))
    except RecoverySetupError as exc:
        raise CommandError(str(exc)) from exc


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("dataflow")
    def dataflow(
        workers_per_process: Annotated[
            int, typer.Option("--workers-per-process", "-w", min=1, help="Worker threads per process.")
        ] = 1,
        processes: Annotated[
            int,
            typer.Option("--processes", "-p", min=1, help="Start this many local processes as one cluster."),
        ] = 1,
        process_id: Annotated[
            int | None, typer.Option("--process-id", "-i", min=0, help="This process's index.")
        ] = None,
        addresses: Annotated[
            str | None,
            typer.Option(
                "--addresses", "-a", help='All processes, "host:port;host:port", in process-id order.'
            ),
        ] = None,
        recovery_dir: Annotated[
            Path | None, typer.Option("--recovery-dir", "-r", help="Default: RECOVERY_DIR.")
        ] = None,
        snapshot_interval: Annotated[
            float | None,
            typer.Option("--snapshot-interval", "-s", min=0.1, help="Seconds; default SNAPSHOT_INTERVAL_S."),
        ] = None,
        metrics_host: Annotated[
            str | None, typer.Option(help="Where /metrics and /healthz listen; default METRICS_HOST.")
        ] = None,
        metrics_port: Annotated[
            int | None, typer.Option(help="Default METRICS_PORT; 0 picks a free port.")
        ] = None,
    ) -> None:
        """Run the conversation dataflow: Kafka in, replies and events out."""
        settings = settings_or_exit()
        host = metrics_host or settings.metrics_host
        with reported_errors():
            if processes > 1:
                if process_id is not None or addresses:
                    raise CommandError("use either --processes, or --process-id with --addresses")
                passthrough = ["-w", str(workers_per_process), "--metrics-host", host]
                if recovery_dir is not None:
                    passthrough += ["-r", str(recovery_dir)]
                if snapshot_interval is not None:
                    passthrough += ["-s", str(snapshot_interval)]
                if metrics_port:
                    err_console.print("note: each local process picks its own free metrics port")
                _prepare_shared_recovery(settings, recovery_dir or settings.recovery_dir, workers_per_process)
                raise typer.Exit(_run_local_cluster(processes, passthrough))
            peers = tuple(a.strip() for a in (addresses or "").split(";") if a.strip())
            if peers and process_id is None:
                raise CommandError("--addresses needs --process-id")
            if process_id is not None and process_id >= max(1, len(peers)):
                raise CommandError(f"--process-id {process_id} is outside the {len(peers)} --addresses")

            from tgstream.dataflows.launch import LaunchError, run_process
            from tgstream.dataflows.recovery_setup import Topology

            try:
                run_process(
                    settings,
                    Topology(workers_per_process, process_id, peers),
                    recovery_dir=recovery_dir or settings.recovery_dir,
                    snapshot_interval_s=snapshot_interval or settings.snapshot_interval_s,
                    metrics_host=host,
                    metrics_port=settings.metrics_port if metrics_port is None else metrics_port,
                )
            except LaunchError as exc:
                raise CommandError(str(exc)) from exc
