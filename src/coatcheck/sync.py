"""Drive coatcheck's coroutines without an event loop, for WSGI apps and Flask.

The core (strategies, the :class:`~coatcheck.sessions.SessionManager`, the
:class:`~coatcheck.auth.Authenticator`) is written once, as coroutines that suspend
only when a store awaits network I/O. With a store that never suspends
(:class:`~coatcheck.stores.MemoryStore`, :class:`~coatcheck.stores.SQLiteStore`, or
the synchronous-I/O network stores from ``open_store(url, sync=True)``), such a
coroutine runs to completion on its first step, so a synchronous caller can drive
it directly: one code path for every decision, only the I/O differs.

WSGI and Flask apps call :func:`run_sync` themselves for what the adapters do not do
for them (a login in a view, ``manager.revoke_user`` from a task)::

    from coatcheck import run_sync

    result = run_sync(authenticator.login(user_id, headers=request_headers(environ)))

Not for an ASGI app: there ``await`` the coroutine on the running loop. This module
imports nothing of coatcheck but its errors, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import ConfigurationError

__all__ = ["run_sync"]

T = TypeVar("T")

# A bare ``yield`` (asyncio.sleep(0), anyio checkpoints) only offers other tasks a
# turn; with no loop there are none, so the coroutine simply resumes. Allow a few in a
# row (a compare-and-set retry loop yields once per lost race), never unbounded.
_MAX_BARE_YIELDS = 1024
_ASYNC_IO = (
    "a coatcheck coroutine waited on asynchronous I/O in synchronous (WSGI) mode: "
    "use a store that does synchronous I/O, e.g. open_store(url, sync=True)"
)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in the calling thread, without an event loop.

    Far cheaper than ``asyncio.run`` (no loop is made per call), and it works inside a
    thread of a threaded WSGI server or under a running loop alike. ``coro`` must use
    stores that never suspend (memory, SQLite, ``open_store(url, sync=True)``).

    :raises ConfigurationError: when the coroutine waits on real I/O (it yielded a
        future): an async store (``redis.asyncio``, psycopg's async pool) was used
        where a synchronous one is needed. Use ``open_store(url, sync=True)``.
    """
    for _ in range(_MAX_BARE_YIELDS):
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            result: T = done.value
            return result
        except RuntimeError as exc:
            # An async driver looking for the running loop ("no running event loop",
            # psycopg_pool's "open with no running loop"): the same mistake, said clearly.
            if "running loop" in str(exc) or "running event loop" in str(exc):
                raise ConfigurationError(_ASYNC_IO) from exc
            raise
        if yielded is not None:
            coro.close()
            raise ConfigurationError(_ASYNC_IO)
    coro.close()
    raise ConfigurationError("a coatcheck coroutine kept yielding in synchronous mode")
