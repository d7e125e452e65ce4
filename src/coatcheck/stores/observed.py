"""A store that times every call of the store it wraps, for metrics.

``ObservedStore(store)`` is a drop-in for ``store`` (give it to the manager, the login
limiter and the DPoP transport alike): each call is passed on unchanged and reported as
one :class:`~coatcheck.events.StoreCalled` event (the store's class, the operation,
its wall time, the error code if it raised) to whoever observes them
(:mod:`coatcheck.events`). An app that does not wrap its store pays nothing; one that
does pays a clock read on each side of every call and, while nobody observes
``StoreCalled``, a set lookup (``bench/observe.py`` measures both).

It wraps the store's own capabilities and no more: the session store protocol always,
``remember_once`` (:class:`~coatcheck.sessions.ReplayCache`) and the attempt counters
(:class:`~coatcheck.ratelimit.AttemptCounter`) when the wrapped store has them, so a
capability check on the wrapper answers as it would on the store. Every store of
:func:`~coatcheck.stores.open_store` has all three.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..errors import CoatcheckError, ConfigurationError
from ..events import StoreCalled, emit, observed
from ..ratelimit import AttemptCounter, AttemptRule
from ..sessions.record import SessionRecord
from ..sessions.store import ReplayCache, SessionStore

__all__ = ["ObservedStore", "observe_store"]


def _report(store: str, operation: str, start: float, exc: BaseException | None) -> None:
    if not observed(StoreCalled):
        return
    seconds = perf_counter() - start
    error = None
    if exc is not None:
        error = exc.code if isinstance(exc, CoatcheckError) else "unexpected"
    emit(StoreCalled(store=store, operation=operation, seconds=seconds, error=error))


class ObservedStore:
    """``store``, with every call timed and reported (see the module docstring).

    Build it with :func:`observe_store`, which keeps the wrapped store's capabilities
    (this class has the session store protocol only).

    :raises ConfigurationError: when ``store`` is not a session store.
    """

    __slots__ = ("_name", "_store")

    def __init__(self, store: SessionStore) -> None:
        if not isinstance(store, SessionStore):
            raise ConfigurationError("ObservedStore wraps a session store")
        self._store = store
        self._name = type(store).__name__

    @property
    def store(self) -> SessionStore:
        """The wrapped store."""
        return self._store

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        start = perf_counter()
        try:
            record = await self._store.get(session_id, now)
        except BaseException as exc:
            _report(self._name, "get", start, exc)
            raise
        _report(self._name, "get", start, None)
        return record

    async def create(self, record: SessionRecord) -> None:
        start = perf_counter()
        try:
            await self._store.create(record)
        except BaseException as exc:
            _report(self._name, "create", start, exc)
            raise
        _report(self._name, "create", start, None)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        start = perf_counter()
        try:
            await self._store.touch(session_id, last_seen, expires_at)
        except BaseException as exc:
            _report(self._name, "touch", start, exc)
            raise
        _report(self._name, "touch", start, None)

    async def update(self, record: SessionRecord) -> bool:
        start = perf_counter()
        try:
            done = await self._store.update(record)
        except BaseException as exc:
            _report(self._name, "update", start, exc)
            raise
        _report(self._name, "update", start, None)
        return done

    async def delete(self, session_id: str) -> SessionRecord | None:
        start = perf_counter()
        try:
            removed = await self._store.delete(session_id)
        except BaseException as exc:
            _report(self._name, "delete", start, exc)
            raise
        _report(self._name, "delete", start, None)
        return removed

    async def delete_user(self, user_id: str) -> list[str]:
        start = perf_counter()
        try:
            removed = await self._store.delete_user(user_id)
        except BaseException as exc:
            _report(self._name, "delete_user", start, exc)
            raise
        _report(self._name, "delete_user", start, None)
        return removed

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        start = perf_counter()
        try:
            records = await self._store.list_user(user_id, now)
        except BaseException as exc:
            _report(self._name, "list_user", start, exc)
            raise
        _report(self._name, "list_user", start, None)
        return records

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        start = perf_counter()
        try:
            count = await self._store.delete_expired(now, limit)
        except BaseException as exc:
            _report(self._name, "delete_expired", start, exc)
            raise
        _report(self._name, "delete_expired", start, None)
        return count

    async def close(self) -> None:
        await self._store.close()

    def __repr__(self) -> str:
        return f"ObservedStore({self._store!r})"


class _ReplayCache(ObservedStore):
    __slots__ = ()

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        inner: Any = self._store
        start = perf_counter()
        try:
            fresh: bool = await inner.remember_once(key, ttl, now)
        except BaseException as exc:
            _report(self._name, "remember_once", start, exc)
            raise
        _report(self._name, "remember_once", start, None)
        return fresh


class _AttemptCounter(ObservedStore):
    __slots__ = ()

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        inner: Any = self._store
        start = perf_counter()
        try:
            wait: float = await inner.reserve_attempt(key, rule, now)
        except BaseException as exc:
            _report(self._name, "reserve_attempt", start, exc)
            raise
        _report(self._name, "reserve_attempt", start, None)
        return wait

    async def release_attempt(self, key: str) -> None:
        inner: Any = self._store
        start = perf_counter()
        try:
            await inner.release_attempt(key)
        except BaseException as exc:
            _report(self._name, "release_attempt", start, exc)
            raise
        _report(self._name, "release_attempt", start, None)

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        inner: Any = self._store
        start = perf_counter()
        try:
            found: tuple[int, float] = await inner.peek_attempts(key, now)
        except BaseException as exc:
            _report(self._name, "peek_attempts", start, exc)
            raise
        _report(self._name, "peek_attempts", start, None)
        return found

    async def clear_attempts(self, key: str) -> None:
        inner: Any = self._store
        start = perf_counter()
        try:
            await inner.clear_attempts(key)
        except BaseException as exc:
            _report(self._name, "clear_attempts", start, exc)
            raise
        _report(self._name, "clear_attempts", start, None)


class _Both(_ReplayCache, _AttemptCounter):
    __slots__ = ()


def observe_store(store: SessionStore) -> ObservedStore:
    """``store`` wrapped in an :class:`ObservedStore` with the same capabilities
    (replay cache, attempt counters) as the store itself; a store already observed is
    returned as it is.

    :raises ConfigurationError: when ``store`` is not a session store.
    """
    if isinstance(store, ObservedStore):
        return store
    replay = isinstance(store, ReplayCache)
    attempts = isinstance(store, AttemptCounter)
    if replay and attempts:
        return _Both(store)
    if replay:
        return _ReplayCache(store)
    if attempts:
        return _AttemptCounter(store)
    return ObservedStore(store)
