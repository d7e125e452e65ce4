"""The I/O seam of :class:`~coatcheck.stores.postgres.PostgresStore`: asyncpg or blocking psycopg.

The store holds the SQL (written with ``$1``-style placeholders, each used once and in
order), the schema migrations and the record mapping once; it runs them through a
:class:`PgIO`:

* ``execute(sql, params, fetch)``: one statement; ``fetch`` is ``"one"`` (a row or
  ``None``), ``"all"`` (a list of rows) or ``""`` (the number of rows changed);
* ``transaction()``: an async context manager giving an object with the same
  ``execute``, for the migrations;
* ``open()``, ``close()``, ``describe()``.

Rows are sequences in the order selected; a ``jsonb`` column may come back as text
(asyncpg) or decoded (psycopg): the store decodes text. Failures are the store's:
:class:`~coatcheck.errors.StoreUnavailable` when the server cannot be reached, drops
the connection, is shutting down, refuses connections, or is read-only (a standby,
for instance mid-failover), and :class:`~coatcheck.errors.StoreError` otherwise.

* :class:`AsyncpgIO` (asyncio): asyncpg connections in a small free-list pool. On the
  per-request lookup this is the whole difference: psycopg's pool checkout and
  statement path cost about 105 µs of client CPU per query here, the same query on a
  free-listed asyncpg connection (binary protocol, statements prepared and cached
  per connection) about 20 µs (bench/scale.py measures it).
* :class:`PsycopgIO` (blocking, for WSGI): psycopg's thread-safe ``ConnectionPool``.

Both take libpq-style multi-host URLs (``postgresql://h1,h2:5433/db?
target_session_attrs=read-write``): each host is tried in turn until one accepts and
matches the wanted session attributes, so a store follows a primary that moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from ..errors import StoreError, StoreUnavailable

__all__ = ["AsyncpgIO", "PgIO", "PsycopgIO"]


class PgTx(Protocol):
    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any: ...


class PgIO(Protocol):
    """What :class:`~coatcheck.stores.postgres.PostgresStore` asks of PostgreSQL."""

    async def open(self) -> None: ...

    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any: ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[PgTx]: ...

    async def close(self) -> None: ...


def _unavailable(
    exc: BaseException, what: str = "PostgreSQL cannot be reached"
) -> StoreUnavailable:
    error = StoreUnavailable(what)
    error.__cause__ = exc
    return error


def _count(status: str) -> int:
    # asyncpg answers a command with its tag, e.g. "UPDATE 1" or "INSERT 0 1".
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


# -- asyncpg ------------------------------------------------------------------------------

# SQLSTATE classes that mean "not now" rather than "no": connection exceptions (08),
# operator intervention (57: shutting down, cannot connect now), insufficient
# resources (53: too many connections), read-only transaction (25006: a standby).
_TRANSIENT_STATES = ("08", "57", "53", "25006")


class AsyncpgIO:
    """asyncpg connections, ``min_size`` to ``max_size`` of them, in a free list.

    A connection is taken from the list (or opened, up to ``max_size``), used for one
    statement and put back; a request finding none free waits for one up to
    ``timeout`` seconds, then fails with StoreUnavailable; so does a statement running
    longer than ``command_timeout`` (``timeout`` by default). A connection that broke is
    dropped, so the store recovers by itself after a server restart or a failover.
    Connections belong to the event loop that opened them: a store used from a new
    loop (a new ``asyncio.run``) opens new ones.
    """

    __slots__ = (
        "_connect_args", "_dsn", "_free", "_loop", "_max", "_min", "_size", "_timeout",
        "_waiters",
    )  # fmt: skip

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 2.0,
        connect_timeout: float = 2.0,
        command_timeout: float | None = None,
    ) -> None:
        self._dsn = dsn
        self._min, self._max, self._timeout = min_size, max_size, timeout
        self._connect_args: dict[str, Any] = {
            "timeout": connect_timeout,
            # A statement that takes longer fails (StoreUnavailable): fail fast.
            "command_timeout": command_timeout or timeout,
        }
        self._free: list[Any] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._size = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        """Open ``min_size`` connections (raises StoreUnavailable when none can be)."""
        held = [await self._acquire() for _ in range(max(self._min - len(self._free), 1))]
        for conn in held:
            self._release(conn, False)

    async def _connect(self) -> Any:
        import asyncpg

        try:
            return await asyncpg.connect(self._dsn, **self._connect_args)
        except (TimeoutError, OSError, asyncpg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        except asyncpg.PostgresError as exc:
            if str(getattr(exc, "sqlstate", "")).startswith(_TRANSIENT_STATES):
                raise _unavailable(exc) from exc
            raise StoreError("PostgreSQL refused the connection") from exc

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Another loop's connections cannot be used (or awaited) here: drop them.
            for conn in self._free:
                with contextlib.suppress(Exception):
                    conn.terminate()
            self._free, self._waiters, self._size, self._loop = [], deque(), 0, loop

    async def _acquire(self) -> Any:
        self._same_loop()
        free = self._free
        while free:
            conn = free.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        if self._size < self._max:
            self._size += 1
            try:
                return await self._connect()
            except BaseException:
                self._size -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self._timeout)
        except TimeoutError as exc:
            raise _unavailable(exc, "no PostgreSQL connection is free in time") from exc

    def _release(self, conn: Any, broken: bool) -> None:
        if broken or conn.is_closed():
            self._size -= 1
            with contextlib.suppress(Exception):
                conn.terminate()
            if self._waiters:
                # Someone waits for a connection that will not come back: open one.
                task = asyncio.get_running_loop().create_task(self._replace())
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append(conn)

    async def _replace(self) -> None:
        self._size += 1
        try:
            conn = await self._connect()
        except BaseException:
            self._size -= 1
            raise
        self._release(conn, False)

    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any:
        conn = await self._acquire()
        broken = False
        try:
            return await _run(conn, sql, params, fetch)
        except StoreUnavailable:
            broken = True
            raise
        except StoreError:
            raise
        except Exception as exc:
            # The driver in a state of its own (e.g. InternalClientError after the server
            # ended the connection mid-call): drop the connection, fail as unavailable.
            broken = True
            raise _unavailable(exc) from exc
        finally:
            self._release(conn, broken)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        conn = await self._acquire()
        broken = False
        try:
            async with conn.transaction():
                yield _AsyncpgTx(conn)
        except StoreUnavailable:
            broken = True
            raise
        except (TimeoutError, OSError) as exc:
            broken = True
            raise _unavailable(exc) from exc
        finally:
            self._release(conn, broken)

    async def close(self) -> None:
        free, self._free = self._free, []
        self._size = 0
        for conn in free:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)


class _AsyncpgTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any:
        return await _run(self._conn, sql, params, fetch)


async def _run(conn: Any, sql: str, params: Sequence[Any], fetch: str) -> Any:
    import asyncpg

    try:
        if fetch == "one":
            return await conn.fetchrow(sql, *params)
        if fetch == "all":
            return await conn.fetch(sql, *params)
        return _count(await conn.execute(sql, *params))
    except (TimeoutError, OSError) as exc:
        raise _unavailable(exc) from exc
    except asyncpg.PostgresError as exc:
        if str(getattr(exc, "sqlstate", "")).startswith(_TRANSIENT_STATES):
            raise _unavailable(exc) from exc
        raise StoreError("PostgreSQL refused a session query") from exc
    except asyncpg.InterfaceError as exc:
        if conn.is_closed():
            raise _unavailable(exc) from exc
        raise StoreError("PostgreSQL refused a session query") from exc


# -- psycopg, blocking -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$(\d+)")


def to_pyformat(sql: str) -> str:
    """``$1, $2 ...`` as psycopg's ``%s`` (each must appear once, in order)."""
    numbers = [int(n) for n in _PLACEHOLDER.findall(sql)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"placeholders must appear once each, in order: {sql}")
    return _PLACEHOLDER.sub("%s", sql)


class PsycopgIO:
    """psycopg's blocking, thread-safe ``ConnectionPool`` (autocommit); never suspends."""

    __slots__ = ("_conninfo", "_lock", "_pool", "_pool_args", "_sql")

    def __init__(
        self, conninfo: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 2.0
    ) -> None:
        self._conninfo = conninfo
        self._pool_args = {"min_size": min_size, "max_size": max_size, "timeout": timeout}
        self._pool: Any = None
        self._lock = threading.Lock()  # threads, not tasks, race to open the pool
        self._sql: dict[str, str] = {}

    async def open(self) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is not None:
                return
            pool = ConnectionPool(
                self._conninfo, open=False, kwargs={"autocommit": True},
                # Pool workers retry lost connections for this long before giving up
                # until the next request asks again.
                reconnect_timeout=30.0, **self._pool_args,  # type: ignore[arg-type]
            )  # fmt: skip
            try:
                pool.open(wait=False)
            except psycopg.OperationalError as exc:
                pool.close()
                raise _unavailable(exc) from exc
            self._pool = pool

    def _statement(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = to_pyformat(sql)
        return found

    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any:
        import psycopg

        if self._pool is None:
            await self.open()
        pool = self._pool
        try:
            with pool.connection() as conn:
                return _fetch(conn.execute(self._statement(sql), params, prepare=True), fetch)
        except psycopg.OperationalError as exc:
            # A restart breaks every pooled connection at once: test the idle ones now
            # (off this thread) rather than fail one request per dead connection.
            threading.Thread(target=_check_quietly, args=(pool,), daemon=True).start()
            raise _unavailable(exc) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise _unavailable(exc) from exc
        except psycopg.Error as exc:
            raise StoreError("PostgreSQL refused a session query") from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        import psycopg

        if self._pool is None:
            await self.open()
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PsycopgTx(conn, self)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class _PsycopgTx:
    __slots__ = ("_conn", "_io")

    def __init__(self, conn: Any, io: PsycopgIO) -> None:
        self._conn, self._io = conn, io

    async def execute(self, sql: str, params: Sequence[Any] = (), fetch: str = "") -> Any:
        import psycopg

        try:
            # No parameters: the simple protocol, which takes several statements at once.
            statement = self._io._statement(sql)
            return _fetch(self._conn.execute(statement, params or None), fetch)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc
        except psycopg.Error as exc:
            raise StoreError("PostgreSQL refused a schema query") from exc


def _fetch(cursor: Any, fetch: str) -> Any:
    if fetch == "one":
        return cursor.fetchone()
    if fetch == "all":
        return cursor.fetchall()
    return cursor.rowcount


def _check_quietly(pool: Any) -> None:
    with contextlib.suppress(Exception):
        pool.check()
