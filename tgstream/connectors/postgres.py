"""Async Postgres access for the state stores: one psycopg pool per event loop, pgvector registered.

The dataflow runs its I/O on a background asyncio loop it owns, so open the pool *on that
loop* (``await open_pool(...)`` inside it) and close it there. Connections are autocommit:
every store operation is a single statement, and an idle-in-transaction connection would
only hold locks and snapshots for nothing. A server-side ``statement_timeout`` bounds every
query, so a stuck query degrades one enrichment instead of stalling a worker.

Errors leave this module as two types the callers count and degrade on (ARCHITECTURE.md,
"Postgres down: reply without memory"): :class:`DatabaseUnavailable` when no connection can
be had or it broke, :class:`DatabaseError` for everything else psycopg raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tgstream.config import Settings

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


class DatabaseError(Exception):
    """A query failed; the message comes from Postgres."""


class DatabaseUnavailable(DatabaseError):
    """Postgres cannot be reached, or the connection broke mid-query."""


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await register_vector_async(conn)
    except psycopg.ProgrammingError as exc:
        msg = "the `vector` type is missing in this database; run `tgstream db migrate`"
        raise DatabaseError(msg) from exc


async def open_pool(
    database_url: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    timeout_s: float = 10.0,
    statement_timeout_ms: int = 5000,
    search_path: str | None = None,
    name: str = "tgstream",
) -> Pool:
    """Open a pool and wait for its first connection, so a wrong URL fails here, not mid-stream.

    ``search_path`` (e.g. ``"scratch,public"``) points the stores at other tables of the same
    shape; benchmarks use it to stay out of the live tables.
    """
    options = f"-c statement_timeout={statement_timeout_ms}"
    if search_path is not None:
        options += f" -c search_path={search_path}"
    pool: Pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        name=name,
        open=False,
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True, "options": options},
    )
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except PoolTimeout as exc:
        await pool.close()
        msg = f"no Postgres connection within {timeout_s:g} s at {_redacted(database_url)}"
        raise DatabaseUnavailable(msg) from exc
    return pool


async def open_pool_from_settings(settings: Settings, **options: Any) -> Pool:
    return await open_pool(settings.database_url, **options)


@contextlib.asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection whose psycopg and pool errors come out as ours."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
    except psycopg.Error as exc:
        raise DatabaseError(str(exc).strip() or type(exc).__name__) from exc


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}@{host}"
