"""SyncPostgresStore: the :class:`~coatcheck.stores.postgres.PostgresStore`, on blocking I/O.

For WSGI apps and Flask (see :mod:`coatcheck.sync`). It is PostgresStore itself
(SQL, schema migrations, record mapping, errors) over a blocking driver
(:class:`~coatcheck.stores._pg_io.PsycopgIO`: psycopg's thread-safe
``ConnectionPool``). Every method is still a coroutine, but none ever suspends, so
:func:`~coatcheck.sync.run_sync` can drive the core without an event loop.
"""

from __future__ import annotations

import threading
from typing import Any

from ._pg_io import PsycopgIO
from .postgres import PostgresStore, _parse_url

__all__ = ["SyncPostgresStore"]


class SyncPostgresStore(PostgresStore):
    """:class:`~coatcheck.stores.postgres.PostgresStore` over psycopg's blocking pool.

    Same arguments, URL (:meth:`from_url`), schema and errors as PostgresStore; safe to
    share between the threads of a WSGI server.
    """

    def __init__(self, conninfo: str, **options: Any) -> None:
        sizes = {k: options[k] for k in ("min_size", "max_size", "timeout") if k in options}
        options.setdefault("io", PsycopgIO(conninfo, **sizes))
        super().__init__(conninfo, **options)
        # Threads, not tasks, race to open the store here.
        self._opening = _ThreadLock()  # type: ignore[assignment]

    @classmethod
    def from_url(cls, url: str) -> SyncPostgresStore:
        """A store for the same URLs as :meth:`PostgresStore.from_url
        <coatcheck.stores.postgres.PostgresStore.from_url>`, with blocking connections.

        Raises ConfigurationError for a malformed URL.
        """
        conninfo, options = _parse_url(url)
        return cls(conninfo, **options)


class _ThreadLock:
    """A threading lock used as ``async with`` (it never suspends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def __aenter__(self) -> None:
        self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
