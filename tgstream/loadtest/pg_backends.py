"""Which Postgres backends work for the system under test, so only their CPU is charged to it.

The dev Postgres is shared: a benchmark building an HNSW index over a million rows in another
database would otherwise show up as "Postgres CPU per message". Each backend's process title
names its client's address (``postgres: user db 127.0.0.1(49818) idle``); the client's local port
leads, through the kernel's socket table, to the process that opened the connection.

Background processes (checkpointer, WAL writer, autovacuum) serve every database at once and
are left out; the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

import psutil

_CLIENT_PORT = re.compile(r"^postgres: \S+ \S+ [\d.:a-fA-F\[\]]+\((\d+)\)")


def client_port(title: str) -> int | None:
    """The client's TCP port from a backend's process title, or None for other Postgres processes.

    >>> client_port("postgres: postgres tgstream 127.0.0.1(49818) idle")
    49818
    >>> client_port("postgres: checkpointer ") is None
    True
    """
    match = _CLIENT_PORT.match(title)
    return int(match.group(1)) if match else None


def connection_owners(server_port: int) -> dict[int, int]:
    """Local port -> pid of every process on this host with a TCP connection to ``server_port``."""
    owners = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.pid is not None and conn.raddr and conn.raddr.port == server_port and conn.laddr:
            owners[conn.laddr.port] = conn.pid
    return owners


def _descendants(roots: Collection[int]) -> set[int]:
    found = set(roots)
    for pid in roots:
        try:
            found.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            continue
    return found


def backends_serving(postmaster: int, server_port: int, client_roots: Collection[int]) -> list[int]:
    """Pids of the postmaster's backends whose client is one of ``client_roots`` or their children."""
    clients = _descendants(client_roots)
    owners = connection_owners(server_port)
    backends = []
    try:
        children = psutil.Process(postmaster).children()
    except psutil.Error:
        return []
    for child in children:
        try:
            title = " ".join(part for part in child.cmdline() if part)
        except psutil.Error:
            continue
        port = client_port(title)
        if port is not None and owners.get(port) in clients:
            backends.append(child.pid)
    return backends


def backend_resolver(
    postmaster: int, server_port: int, client_roots: Callable[[], Collection[int]]
) -> Callable[[], list[int]]:
    """A ``ProcessGroup.members`` callable: the backends serving ``client_roots()`` right now."""
    return lambda: backends_serving(postmaster, server_port, client_roots())
