"""The database: the aiopg pool, transactions, and (in submodules) every SQL statement.

Nothing outside this package imports the driver (aiopg, psycopg2): the rest of the sidecar names
`db.Pool`, `db.Cursor` and the errors below (ruff's banned-api rule keeps it so).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import aiopg
import psycopg2
import structlog
from aiohttp import web
from psycopg2.extras import RealDictCursor

from image_sidecar.appkeys import config_key, db_pool_key
from image_sidecar.db.migrations_runner import apply_migrations, pending_migrations
from image_sidecar.errors import DatabaseUnavailable, ServiceBusy, SidecarError
from image_sidecar.tracing import record_span, sql_span
from image_sidecar.tracing import started as tracing_on

log = structlog.get_logger(__name__)

Pool = aiopg.Pool
Cursor = aiopg.Cursor
# Any error of the driver, and the one it raises when the server cannot be reached.
DatabaseError = psycopg2.Error
ConnectionFailed = psycopg2.OperationalError


class SchemaBehind(SidecarError):
    """The database lacks migrations this code needs; `image-sidecar migrate` fixes it."""


async def create_pool(database_url: str, *, size: int = 10, timeout: float = 5.0) -> Pool:
    # `timeout` bounds connecting and every statement (aiopg applies it per cursor call).
    return await aiopg.create_pool(
        database_url, minsize=1, maxsize=size, timeout=timeout, enable_hstore=False
    )


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    """Open the pool, refuse to serve on an old schema, close the pool on shutdown."""
    config = app[config_key]
    if config.database.url is None:
        raise DatabaseUnavailable("DATABASE_URL is not set")
    pool = await create_pool(
        config.database.url,
        size=config.database.pool_size,
        timeout=config.database.timeout_seconds,
    )
    try:
        pending = await pending_migrations(pool)
        if pending:
            raise SchemaBehind(
                f"database schema is behind ({', '.join(pending)} not applied): "
                "run `image-sidecar migrate` first"
            )
        app[db_pool_key] = pool
        yield
    finally:
        await close_pool(pool)


async def check_schema(database_url: str, timeout: float) -> None:
    """SchemaBehind unless every migration is applied (a supervisor's check before its workers
    start, each of which checks again)."""
    pool = await create_pool(database_url, size=1, timeout=timeout)
    try:
        pending = await pending_migrations(pool)
    finally:
        await close_pool(pool)
    if pending:
        raise SchemaBehind(
            f"database schema is behind ({', '.join(pending)} not applied): "
            "run `image-sidecar migrate` first"
        )


async def migrate_database(database_url: str) -> list[str]:
    """Apply pending migrations with a short-lived pool; the names applied."""
    pool = await create_pool(database_url, size=1, timeout=60)
    try:
        return await apply_migrations(pool)
    finally:
        await close_pool(pool)


async def close_pool(pool: Pool, grace_seconds: float = 5.0) -> None:
    """Close the pool, waiting a bounded time for connections in use, then cutting them."""
    pool.close()
    try:
        async with asyncio.timeout(grace_seconds):
            await pool.wait_closed()
    except TimeoutError:
        log.warning("pool_close_forced", in_use=pool.size - pool.freesize)
        pool.terminate()
        await pool.wait_closed()


async def _acquire(pool: Pool) -> aiopg.Connection:
    """A pooled connection within the pool's timeout. A connection that arrives after the caller
    gave up (timeout or cancellation) goes straight back, so none leaks and shutdown never hangs.
    """
    acquiring = asyncio.ensure_future(pool.acquire())
    try:
        async with asyncio.timeout(pool.timeout):
            return await asyncio.shield(acquiring)
    except BaseException:
        acquiring.add_done_callback(partial(_release_late, pool))
        raise


def _release_late(pool: Pool, acquiring: asyncio.Future[aiopg.Connection]) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        pool.release(acquiring.result())


# When each pool last failed to open or keep a connection: a pool that runs dry soon after is
# stuck on the database, not overloaded by requests.
_last_failure: weakref.WeakKeyDictionary[Pool, float] = weakref.WeakKeyDictionary()
_FAILURE_MEMORY_SECONDS = 30.0
# A wait for a pooled connection longer than this gets a span of its own (shorter ones are the
# normal case, and a span each would cost more than the wait).
_WAIT_WORTH_A_SPAN_NS = 1_000_000


def _connect_failed(pool: Pool) -> bool:
    return time.monotonic() - _last_failure.get(pool, -1e9) < _FAILURE_MEMORY_SECONDS


def _unavailable(
    pool: Pool, message: str, exc: BaseException, *, connection_lost: bool = True
) -> DatabaseUnavailable:
    """The client hears what happened in this service's words; the driver's own text (hosts,
    ports, libpq's hints) goes to the log only."""
    if connection_lost:
        _last_failure[pool] = time.monotonic()
    log.warning("database_unavailable", reason=message, error=str(exc).strip() or repr(exc))
    return DatabaseUnavailable(message)


@asynccontextmanager
async def _connection(pool: Pool) -> AsyncIterator[aiopg.Connection]:
    waiting = time.time_ns()
    try:
        conn = await _acquire(pool)
    except TimeoutError as exc:
        if pool.size >= (pool.maxsize or 0) and not _connect_failed(pool):
            # Every connection is open and was in use by this process's own requests while this
            # one waited, and none failed to open of late: overload, not an outage (statements
            # that time out under overload do not make it one).
            log.warning("pool_exhausted", size=pool.size)
            raise ServiceBusy(
                f"the sidecar is busy: all {pool.size} of its database connections stayed in "
                f"use for {pool.timeout:g} s; retry shortly"
            ) from exc
        raise _unavailable(pool, "no database connection could be opened in time", exc) from exc
    except psycopg2.OperationalError as exc:
        raise _unavailable(pool, "the database cannot be reached", exc) from exc
    finally:
        waited = time.time_ns()
        if waited - waiting > _WAIT_WORTH_A_SPAN_NS:
            record_span("db.pool.acquire", waiting, waited, **{"db.system": "postgresql"})
    try:
        yield conn
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raise _unavailable(pool, "the connection to the database failed", exc) from exc
    except TimeoutError as exc:
        raise _unavailable(
            pool, "the database did not answer in time", exc, connection_lost=False
        ) from exc
    finally:
        pool.release(conn)


class _BoundedCursor:
    """A cursor whose every statement carries its bound to the server: `statement_timeout`
    set in the same round trip, so that a statement the sidecar gives up on (aiopg closes the
    connection on its timeout, which PostgreSQL does not notice until it has a result to send)
    is also cancelled by PostgreSQL, a second later: the client gives up first, because aiopg
    turns a cancel by the server into a CancelledError of the caller. Per statement, not session,
    because PgBouncer in transaction mode gives every transaction another server connection and
    refuses the `options` startup parameter. Statements are spans when traced (tracing.sql_span:
    nothing unless a trace is kept)."""

    __slots__ = ("_bound", "_cursor", "_traced")

    def __init__(self, cursor: aiopg.Cursor, bound_ms: int) -> None:
        self._cursor = cursor
        self._bound = f"SET statement_timeout = {bound_ms};\n"
        self._traced = tracing_on()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    async def execute(self, operation: str, parameters: Any = None) -> None:
        if self._traced:
            with sql_span(operation):
                await self._cursor.execute(self._bound + operation, parameters)
        else:
            await self._cursor.execute(self._bound + operation, parameters)


# How much longer than the pool's timeout the server lets a statement run.
_SERVER_BOUND_MARGIN_SECONDS = 1.0


def _bounded(cur: aiopg.Cursor, pool: Pool) -> Cursor:
    bound = pool.timeout + _SERVER_BOUND_MARGIN_SECONDS
    return cast(Cursor, _BoundedCursor(cur, round(bound * 1000)))


@asynccontextmanager
async def cursor(pool: Pool) -> AsyncIterator[Cursor]:
    """A dict cursor in autocommit mode, for single statements."""
    async with _connection(pool) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        yield _bounded(cur, pool)


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Cursor]:
    """A dict cursor inside BEGIN ... COMMIT; any exception rolls back."""
    async with (
        _connection(pool) as conn,
        conn.cursor(cursor_factory=RealDictCursor) as cur,
        cur.begin(),
    ):
        yield _bounded(cur, pool)


async def ping(pool: Pool) -> None:
    async with cursor(pool) as cur:
        await cur.execute("SELECT 1")
