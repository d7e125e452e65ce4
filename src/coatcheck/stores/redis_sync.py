"""SyncRedisStore: the :class:`~coatcheck.stores.redis.RedisStore`, on blocking I/O.

For WSGI apps and Flask (see :mod:`coatcheck.sync`). It is RedisStore itself (key
layout, Lua scripts, record mapping, error mapping) over a blocking driver
(:mod:`coatcheck.stores._redis_io` with ``sync=True``: ``redis.Redis`` for one
server or a Sentinel master, one ``redis.Redis`` per master on a cluster). Every
method is still a coroutine, but none ever suspends, so
:func:`~coatcheck.sync.run_sync` can drive the core without an event loop.
redis-py's connection pools are thread-safe, so one store serves every thread of a
threaded WSGI server.

Do not use it under an event loop in production: each call blocks the loop for a
round trip (the contract tests do, which is fine: that is what they measure).
"""

from __future__ import annotations

from .redis import RedisStore

__all__ = ["SyncRedisStore"]


class SyncRedisStore(RedisStore):
    """:class:`~coatcheck.stores.redis.RedisStore` over blocking I/O.

    Same arguments as RedisStore (an I/O object, or a ``redis.Redis`` client made with
    ``decode_responses=False``); prefer :meth:`from_url`. Raises what RedisStore raises.
    """

    __slots__ = ()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        connect_timeout: float = 1.0,
        timeout: float = 2.0,
    ) -> SyncRedisStore:
        """A store for the same URLs as :meth:`RedisStore.from_url
        <coatcheck.stores.redis.RedisStore.from_url>` (one server, ``redis+cluster://``,
        ``redis+sentinel://``), with blocking connections.

        Raises ConfigurationError for a malformed URL.
        """
        store: SyncRedisStore = cls._from_url(url, True, prefix, connect_timeout, timeout)
        return store
