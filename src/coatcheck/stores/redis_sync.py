"""SyncRedisStore: the :class:`~coatcheck.stores.redis.RedisStore`, on blocking I/O.

For WSGI apps and Flask (see :mod:`coatcheck._sync`). Every method is still a
coroutine, the very same code as ``RedisStore`` (key layout, Lua scripts, error
mapping), but the client underneath is the synchronous ``redis.Redis``, wrapped so
that each command is an ``async def`` that calls the driver and returns: nothing
ever suspends, so :func:`~coatcheck._sync.run_sync` can drive the core without an
event loop. The client's connection pool is thread-safe, so one store serves every
thread of a threaded WSGI server.

Do not use it under an event loop in production: each call blocks the loop for a
round trip (the contract tests do, which is fine: that is what they measure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis
from redis.retry import Retry

from .redis import RedisStore, _connect

__all__ = ["SyncRedisStore"]


class _AsyncScript:
    """A registered Lua script whose call is a coroutine that never suspends."""

    __slots__ = ("_script",)

    def __init__(self, script: Any) -> None:
        self._script = script

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        return self._script(keys=keys, args=args, client=client)


class _AsyncPool:
    __slots__ = ("_pool",)

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        return self._pool.connection_kwargs

    async def disconnect(self) -> None:
        self._pool.disconnect()


class _AsyncFacade:
    """Looks like ``redis.asyncio.Redis`` to RedisStore; runs the sync client inline."""

    __slots__ = ("_sync",)

    def __init__(self, client: redis.Redis) -> None:
        self._sync = client

    def register_script(self, source: str) -> _AsyncScript:
        return _AsyncScript(self._sync.register_script(source))

    @property
    def connection_pool(self) -> _AsyncPool:
        return _AsyncPool(self._sync.connection_pool)

    async def aclose(self) -> None:
        self._sync.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Any other command (get, scan, delete, ping ...): same name, same arguments.
        method = getattr(self._sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


class SyncRedisStore(RedisStore):
    """:class:`~coatcheck.stores.redis.RedisStore` over the blocking ``redis.Redis`` client.

    ``client`` is a ``redis.Redis`` made with ``decode_responses=False``; prefer
    :meth:`from_url`. Raises what RedisStore raises (ConfigurationError for a bad
    prefix; StoreUnavailable / StoreError from its methods).
    """

    __slots__ = ("_sync_client",)

    def __init__(self, client: redis.Redis, *, prefix: str = "cc:") -> None:
        # RedisStore only awaits its client's commands; the facade's never suspend.
        super().__init__(cast("Any", _AsyncFacade(client)), prefix=prefix)
        self._sync_client = client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        connect_timeout: float = 1.0,
        timeout: float = 2.0,
    ) -> SyncRedisStore:
        """A store for ``redis://host:port/db`` (or ``rediss://``), optional ``?prefix=``.

        The same URL rules, timeouts and reconnecting retry as
        :meth:`RedisStore.from_url <coatcheck.stores.redis.RedisStore.from_url>`.
        Raises ConfigurationError for a malformed URL.
        """
        client, chosen = _connect(
            redis.Redis, Retry, url, prefix, connect_timeout, timeout,
            pool_class=redis.BlockingConnectionPool,
        )  # fmt: skip
        return cls(client, prefix=chosen)

    def __repr__(self) -> str:
        return "Sync" + super().__repr__()
