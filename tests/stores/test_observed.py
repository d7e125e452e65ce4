"""ObservedStore: the contract through the wrapper (real Redis), and what it reports."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from coatcheck import events
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.events import StoreCalled
from coatcheck.ratelimit import AttemptCounter, AttemptRule, LoginLimiter
from coatcheck.sessions import ReplayCache, SessionStore
from coatcheck.sessions.ids import new_token
from coatcheck.sessions.manager import SessionManager
from coatcheck.sessions.record import SessionRecord
from coatcheck.stores import (
    MemoryStore,
    ObservedStore,
    RedisStore,
    SQLiteStore,
    observe_store,
    open_store,
)
from coatcheck.sync import run_sync

from .._net import free_port
from .contract import StoreContract, make_record, new_user

pytestmark = pytest.mark.redis

RUN_PREFIX = f"cco:{secrets.token_hex(4)}:"


@pytest.fixture(scope="module", autouse=True)
def _cleanup(redis_url: str) -> Iterator[None]:
    yield

    async def clean() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async for key in client.scan_iter(match=RUN_PREFIX + "*", count=1000):
                await client.delete(key)
        finally:
            await client.aclose()

    asyncio.run(clean())


@pytest.fixture
def calls() -> Iterator[list[StoreCalled]]:
    seen: list[StoreCalled] = []
    with events.subscribe(seen.append, StoreCalled):
        yield seen


class TestObservedRedisStore(StoreContract):
    """Every rule of the contract holds through the wrapper, while it reports."""

    expires_by_own_clock = True

    @pytest.fixture
    async def store(self, redis_url: str, calls: list[StoreCalled]) -> AsyncIterator[Any]:
        store = observe_store(RedisStore.from_url(redis_url, prefix=RUN_PREFIX))
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, redis_url: str) -> AsyncIterator[Any]:
        store = observe_store(RedisStore.from_url(redis_url, prefix=RUN_PREFIX))
        yield store
        await store.close()


class _SessionsOnly:
    """A session store with none of the optional capabilities (as a third party's may be)."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        return await self._inner.get(session_id, now)

    async def create(self, record: SessionRecord) -> None:
        await self._inner.create(record)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        await self._inner.touch(session_id, last_seen, expires_at)

    async def update(self, record: SessionRecord) -> bool:
        return await self._inner.update(record)

    async def delete(self, session_id: str) -> SessionRecord | None:
        return await self._inner.delete(session_id)

    async def delete_user(self, user_id: str) -> list[str]:
        return await self._inner.delete_user(user_id)

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._inner.list_user(user_id, now)

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        return await self._inner.delete_expired(now, limit)

    async def close(self) -> None:
        await self._inner.close()


def test_the_wrapper_has_the_capabilities_of_the_store_and_no_more(tmp_path: Any) -> None:
    full = observe_store(SQLiteStore(str(tmp_path / "s.db")))
    assert isinstance(full, SessionStore)
    assert isinstance(full, ReplayCache)
    assert isinstance(full, AttemptCounter)
    bare = observe_store(_SessionsOnly())  # type: ignore[arg-type]
    assert isinstance(bare, SessionStore)
    assert not isinstance(bare, ReplayCache)
    assert not isinstance(bare, AttemptCounter)
    assert observe_store(full) is full  # never wrapped twice
    assert full.store.__class__ is SQLiteStore
    assert "SQLiteStore" in repr(full)


def test_only_a_session_store_is_wrapped() -> None:
    with pytest.raises(ConfigurationError):
        ObservedStore(object())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_each_call_is_reported_with_its_store_operation_and_time(
    calls: list[StoreCalled], clock: FrozenClock
) -> None:
    store = observe_store(MemoryStore())
    record = make_record(clock.now(), user_id=new_user())
    await store.create(record)
    assert await store.get(record.id, clock.now()) == record
    await store.delete(record.id)
    assert [(c.store, c.operation, c.error) for c in calls] == [
        ("MemoryStore", "create", None),
        ("MemoryStore", "get", None),
        ("MemoryStore", "delete", None),
    ]
    assert all(0 <= c.seconds < 1 for c in calls)


@pytest.mark.anyio
async def test_the_limiter_and_the_replay_cache_are_timed_through_it(
    calls: list[StoreCalled], clock: FrozenClock
) -> None:
    store = observe_store(MemoryStore())
    limiter = LoginLimiter(store, clock=clock)  # type: ignore[arg-type]
    async with limiter.attempt("alice", "192.0.2.1") as attempt:
        await attempt.succeeded()
    assert await store.remember_once("jti-hash", 60, clock.now()) is True  # type: ignore[attr-defined]
    assert await store.remember_once("jti-hash", 60, clock.now()) is False  # type: ignore[attr-defined]
    rule = AttemptRule(allowed=1, window=60, base_delay=1, max_delay=60)
    assert await store.peek_attempts("k", clock.now()) == (0, clock.now())  # type: ignore[attr-defined]
    assert await store.reserve_attempt("k", rule, clock.now()) == 0.0  # type: ignore[attr-defined]
    operations = [c.operation for c in calls]
    assert operations == [
        "reserve_attempt", "reserve_attempt", "clear_attempts", "release_attempt",
        "remember_once", "remember_once", "peek_attempts", "reserve_attempt",
    ]  # fmt: skip


@pytest.mark.anyio
async def test_a_failing_call_reports_its_error_code_and_still_raises(
    calls: list[StoreCalled], clock: FrozenClock
) -> None:
    # A real Redis client towards a port nobody listens on: the outage as it happens.
    port = free_port()
    store = observe_store(RedisStore.from_url(f"redis://127.0.0.1:{port}/15", prefix="x:"))
    manager = SessionManager(store, clock=clock)
    try:
        with pytest.raises(StoreUnavailable):
            await manager.validate(new_token(new_user()))
        with pytest.raises(StoreUnavailable):
            await manager.create(new_user())
    finally:
        await store.close()
    assert [(c.operation, c.error) for c in calls] == [
        ("get", "store_unavailable"),
        ("create", "store_unavailable"),
    ]


@pytest.mark.anyio
async def test_nothing_is_reported_while_nobody_listens(clock: FrozenClock) -> None:
    heard: list[events.Event] = []
    store = observe_store(MemoryStore())
    with events.subscribe(heard.append, events.LoginSucceeded):  # another kind only
        assert not events.observed(StoreCalled)
        await store.create(make_record(clock.now()))
    assert heard == []


def test_a_blocking_store_stays_blocking_through_the_wrapper(
    redis_url: str, calls: list[StoreCalled], clock: FrozenClock
) -> None:
    # WSGI drives the core with run_sync over a store that never suspends: the wrapper
    # must not suspend either.
    store = observe_store(open_store(f"{redis_url}?prefix={RUN_PREFIX}", sync=True))
    manager = SessionManager(store, clock=clock)
    token, record = run_sync(manager.create(new_user()))
    assert run_sync(manager.validate(token)) == record
    run_sync(store.close())
    assert [(c.store, c.operation) for c in calls] == [
        ("SyncRedisStore", "create"), ("SyncRedisStore", "get"),
    ]  # fmt: skip
