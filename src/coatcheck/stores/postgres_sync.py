"""SyncPostgresStore: the :class:`~coatcheck.stores.postgres.PostgresStore`, on blocking I/O.

For WSGI apps and Flask (see :mod:`coatcheck._sync`). The SQL, the schema
migrations and the error mapping are PostgresStore's own; only the pool differs:
psycopg's synchronous, thread-safe ``ConnectionPool``, wrapped so that each call is
an ``async def`` that runs the driver and returns without ever suspending, so
:func:`~coatcheck._sync.run_sync` can drive the core without an event loop.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import psycopg
from psycopg_pool import ConnectionPool

from ..errors import StoreError
from .postgres import PostgresStore, _unavailable

__all__ = ["SyncPostgresStore"]


class _AsyncCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _AsyncConnection:
    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    async def execute(
        self,
        query: Any,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        prepare: bool | None = None,
    ) -> _AsyncCursor:
        return _AsyncCursor(self._conn.execute(query, params, prepare=prepare))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with self._conn.transaction():
            yield


class _AsyncPool:
    """Looks like ``AsyncConnectionPool`` to PostgresStore; runs the sync pool inline."""

    __slots__ = ("sync",)

    def __init__(self, pool: ConnectionPool) -> None:
        self.sync = pool

    @property
    def closed(self) -> bool:
        return self.sync.closed

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[_AsyncConnection]:
        with self.sync.connection() as conn:
            yield _AsyncConnection(conn)

    async def check(self) -> None:
        self.sync.check()

    async def close(self) -> None:
        self.sync.close()


class SyncPostgresStore(PostgresStore):
    """:class:`~coatcheck.stores.postgres.PostgresStore` over psycopg's blocking pool.

    Same arguments, URL (:meth:`from_url`), schema and errors as PostgresStore; safe to
    share between the threads of a WSGI server.
    """

    def __init__(self, conninfo: str, **options: Any) -> None:
        super().__init__(conninfo, **options)
        # Threads, not tasks, race to open the pool here.
        self._open_lock = threading.Lock()

    async def open(self) -> None:
        """Open the pool and create or migrate the schema (idempotent).

        Raises StoreUnavailable when the server cannot be reached.
        """
        with self._open_lock:
            if self._pool is not None:
                return
            pool = ConnectionPool(
                self._conninfo,
                open=False,
                kwargs={"autocommit": True},
                reconnect_timeout=30.0,
                **self._pool_args,  # type: ignore[arg-type]
            )
            facade = _AsyncPool(pool)
            try:
                pool.open(wait=False)
                await self._migrate(cast("Any", facade))
            except psycopg.OperationalError as exc:
                pool.close()
                raise _unavailable(exc) from exc
            except psycopg.Error as exc:
                pool.close()
                raise StoreError("the PostgreSQL schema could not be prepared") from exc
            self._pool = cast("Any", facade)

    def _check_soon(self, pool: Any) -> None:
        # After a server restart: test the idle connections off the request's thread.
        if isinstance(pool, _AsyncPool) and not pool.closed:
            threading.Thread(target=_check_quietly, args=(pool.sync,), daemon=True).start()

    def __repr__(self) -> str:
        return "Sync" + super().__repr__()


def _check_quietly(pool: ConnectionPool) -> None:
    with contextlib.suppress(Exception):
        pool.check()
