"""connect-redis sessions, read and written from Python (sync and async).

Checked against connect-redis 9: the key is ``prefix + sid`` (``sess:<sid>``), the value
``JSON.stringify(session)``, written with ``SET key value EX ttl`` where ``ttl`` is
``ceil((cookie.expires - now) / 1000)`` seconds, or the store's ``ttl`` option (default
86400) for a session without ``expires``. A TTL of 0 or less deletes the key; ``touch``
is ``EXPIRE key ttl``.

The client is a ``redis.Redis`` (or ``redis.asyncio.Redis``) made by the caller,
with or without ``decode_responses``; this module never imports redis itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Protocol

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, StoreError, StoreUnavailable
from .express import session_expires

__all__ = [
    "AsyncConnectRedisStore",
    "ConnectRedisStore",
    "connect_redis_ttl",
]

_DEFAULT_TTL = 86400
_MAX_DOCUMENT = 1 << 20


class _SyncClient(Protocol):
    def get(self, name: str) -> Any: ...
    def set(self, name: str, value: str, *, ex: int) -> Any: ...
    def expire(self, name: str, time: int) -> Any: ...
    def delete(self, *names: str) -> Any: ...


class _AsyncClient(Protocol):
    async def get(self, name: str) -> Any: ...
    async def set(self, name: str, value: str, *, ex: int) -> Any: ...
    async def expire(self, name: str, time: int) -> Any: ...
    async def delete(self, *names: str) -> Any: ...


def connect_redis_ttl(
    session: Mapping[str, Any], *, now: float, default_ttl: int = _DEFAULT_TTL
) -> int:
    """The TTL in seconds connect-redis gives ``session`` (``getTTL``)."""
    expires = session_expires(session)
    if expires is None:
        return default_ttl
    return math.ceil(round((expires - now) * 1000) / 1000)


def _parse(raw: object) -> dict[str, Any] | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or len(raw) > _MAX_DOCUMENT:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _store_error(exc: Exception) -> StoreError:
    # redis-py's ConnectionError/TimeoutError derive from its RedisError, not the builtins.
    unavailable = type(exc).__name__ in ("ConnectionError", "TimeoutError", "BusyLoadingError")
    if unavailable or isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return StoreUnavailable("Redis cannot be reached")
    return StoreError("Redis failed")


class _Base:
    __slots__ = ("_client", "_clock", "_prefix", "_ttl")

    def __init__(self, client: Any, *, prefix: str, ttl: int, clock: Clock) -> None:
        if ttl <= 0:
            raise ConfigurationError("the connect-redis default ttl must be positive")
        self._client = client
        self._prefix = prefix
        self._ttl = ttl
        self._clock = clock

    def key(self, sid: str) -> str:
        """The Redis key of session ``sid``."""
        return self._prefix + sid

    def _prepare(self, session: Mapping[str, Any]) -> tuple[str, int]:
        ttl = connect_redis_ttl(session, now=self._clock.now(), default_ttl=self._ttl)
        return json.dumps(session, separators=(",", ":"), ensure_ascii=False), ttl

    def _fresh(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        # Redis expires the key on its own; checking cookie.expires as well keeps
        # Python and Express agreeing when their clocks or a persisted key disagree.
        if document is None:
            return None
        expires = session_expires(document)
        if expires is not None and expires <= self._clock.now():
            return None
        return document


class ConnectRedisStore(_Base):
    """connect-redis's ``RedisStore`` over a synchronous ``redis.Redis`` client.

    :raises ConfigurationError: for a non-positive ``ttl``.
    """

    __slots__ = ()

    def __init__(
        self,
        client: _SyncClient,
        *,
        prefix: str = "sess:",
        ttl: int = _DEFAULT_TTL,
        clock: Clock = SystemClock(),  # noqa: B008  (stateless; one shared default is safe)
    ) -> None:
        super().__init__(client, prefix=prefix, ttl=ttl, clock=clock)

    def get(self, sid: str) -> dict[str, Any] | None:
        """The session, or None when absent, expired or not JSON.

        :raises StoreUnavailable: Redis cannot be reached. :raises StoreError: Redis failed.
        """
        try:
            raw = self._client.get(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc
        return self._fresh(_parse(raw))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        """Store ``session`` (deleted instead when its cookie has already expired).

        :raises StoreUnavailable: Redis cannot be reached. :raises StoreError: Redis failed.
        """
        value, ttl = self._prepare(session)
        try:
            if ttl > 0:
                self._client.set(self.key(sid), value, ex=ttl)
            else:
                self._client.delete(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Reset the key's TTL from ``session`` as connect-redis's ``touch`` does.

        :raises StoreUnavailable: Redis cannot be reached. :raises StoreError: Redis failed.
        """
        _, ttl = self._prepare(session)
        try:
            self._client.expire(self.key(sid), ttl)
        except Exception as exc:
            raise _store_error(exc) from exc

    def destroy(self, sid: str) -> None:
        """Delete the session.

        :raises StoreUnavailable: Redis cannot be reached. :raises StoreError: Redis failed.
        """
        try:
            self._client.delete(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc


class AsyncConnectRedisStore(_Base):
    """connect-redis's ``RedisStore`` over a ``redis.asyncio.Redis`` client.

    :raises ConfigurationError: for a non-positive ``ttl``.
    """

    __slots__ = ()

    def __init__(
        self,
        client: _AsyncClient,
        *,
        prefix: str = "sess:",
        ttl: int = _DEFAULT_TTL,
        clock: Clock = SystemClock(),  # noqa: B008  (stateless; one shared default is safe)
    ) -> None:
        super().__init__(client, prefix=prefix, ttl=ttl, clock=clock)

    async def get(self, sid: str) -> dict[str, Any] | None:
        """As :meth:`ConnectRedisStore.get`."""
        try:
            raw = await self._client.get(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc
        return self._fresh(_parse(raw))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        """As :meth:`ConnectRedisStore.set`."""
        value, ttl = self._prepare(session)
        try:
            if ttl > 0:
                await self._client.set(self.key(sid), value, ex=ttl)
            else:
                await self._client.delete(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """As :meth:`ConnectRedisStore.touch`."""
        _, ttl = self._prepare(session)
        try:
            await self._client.expire(self.key(sid), ttl)
        except Exception as exc:
            raise _store_error(exc) from exc

    async def destroy(self, sid: str) -> None:
        """As :meth:`ConnectRedisStore.destroy`."""
        try:
            await self._client.delete(self.key(sid))
        except Exception as exc:
            raise _store_error(exc) from exc
