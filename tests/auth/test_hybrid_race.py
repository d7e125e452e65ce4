"""Many concurrent refreshes of one refresh token yield exactly one successor, on every store;
many retries of a retired token whose answer was lost get that successor, and once it
has been used every retry is reuse.

Each of the 50 refreshes goes through one of several independent store clients
(their own connections, as separate app processes would have), all at once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis

from coatcheck.auth.hybrid import HybridIssued, HybridStrategy
from coatcheck.clock import FrozenClock
from coatcheck.errors import InvalidCredentials, RefreshReuse
from coatcheck.secret import SecretRing
from coatcheck.sessions import SessionManager, SessionRecord, SessionStore
from coatcheck.stores import MemoryStore, SQLiteStore
from coatcheck.stores.postgres import PostgresStore
from coatcheck.stores.redis import RedisStore
from coatcheck.tokens import JWTCodec, Key

pytestmark = pytest.mark.anyio

RACERS = 50
CLIENTS = 5
PREFIX = f"cchr:{secrets.token_hex(4)}:"
TABLE = f"cchr_{secrets.token_hex(4)}"


class _Widened:
    """A store whose reads return a little late, so every racer reads the same version
    before any of them writes: the compare-and-set race is forced, not left to luck."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        record = await self.inner.get(session_id, now)
        await asyncio.sleep(0.02)
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _strategies(stores: list[SessionStore], clock: FrozenClock) -> list[HybridStrategy]:
    # Warm the connection pools so that connecting does not stagger the racers.
    await asyncio.gather(*(s.get("x", 0.0) for s in stores for _ in range(RACERS // len(stores))))
    stores = [_Widened(s) for s in stores]  # type: ignore[misc]
    codec = JWTCodec([Key.from_secret("k" * 32, kid="k")], clock=clock)
    ring = SecretRing(["s" * 32])
    strategies = [
        HybridStrategy(SessionManager(store, clock=clock), codec, ring, clock=clock)
        for store in stores
    ]
    return strategies * (CLIENTS // len(strategies))


async def _race(stores: list[SessionStore], clock: FrozenClock) -> None:
    strategies = await _strategies(stores, clock)
    await _one_successor(strategies, clock)
    await _lost_response(strategies, clock)


async def _lost_response(strategies: list[HybridStrategy], clock: FrozenClock) -> None:
    """Issue 12 item 7 under concurrency: many retries of a retired token whose answer
    was lost all get the one successor; once the successor is used, every one is reuse."""
    login = await strategies[0].issue("bob", data={"name": "Bob"})
    lost = await strategies[1].refresh(login.refresh_token)
    clock.advance(60)  # past the 10 s grace
    retries = await asyncio.gather(
        *(strategies[i % len(strategies)].refresh(login.refresh_token) for i in range(RACERS)),
        return_exceptions=True,
    )
    assert all(isinstance(r, HybridIssued) for r in retries), retries
    assert {r.refresh_token for r in retries if isinstance(r, HybridIssued)} == {
        lost.refresh_token}  # fmt: skip
    record = await strategies[0].manager.get_id(login.session_id or "")
    assert record is not None
    assert record.data["_rt_n"] == 1  # retries never rotate
    # The successor's first use, then the retired token from everywhere at once.
    used = await strategies[2].refresh(lost.refresh_token)
    replays = await asyncio.gather(
        *(strategies[i % len(strategies)].refresh(login.refresh_token) for i in range(RACERS)),
        return_exceptions=True,
    )
    assert not any(isinstance(r, HybridIssued) for r in replays)
    assert any(isinstance(r, RefreshReuse) for r in replays)
    assert all(isinstance(r, (RefreshReuse, InvalidCredentials)) for r in replays), replays
    assert await strategies[3].manager.get_id(login.session_id or "") is None
    assert await strategies[0].verify(used.token) is None  # revoked: refused here at once


async def _one_successor(strategies: list[HybridStrategy], clock: FrozenClock) -> None:
    login = await strategies[0].issue("alice", data={"name": "Alice"})
    clock.advance(60)
    results = await asyncio.gather(
        *(strategies[i % len(strategies)].refresh(login.refresh_token) for i in range(RACERS)),
        return_exceptions=True,
    )
    pairs = [r for r in results if isinstance(r, HybridIssued)]
    assert len(pairs) == RACERS, [r for r in results if not isinstance(r, HybridIssued)]
    assert len({(p.token, p.refresh_token) for p in pairs}) == 1
    successor = pairs[0]
    assert successor.refresh_token != login.refresh_token
    record = await strategies[0].manager.get_id(login.session_id or "")
    assert record is not None
    assert record.data["_rt_n"] == 1  # exactly one rotation happened
    # The successor works once more (its first use), and the original is now reuse.
    assert await strategies[1].verify(successor.token) is not None
    third = await strategies[2].refresh(successor.refresh_token)
    assert third.refresh_token != successor.refresh_token
    with pytest.raises(RefreshReuse):
        await strategies[3].refresh(login.refresh_token)


async def _closing(stores: list[SessionStore], clock: FrozenClock) -> None:
    try:
        await _race(stores, clock)
    finally:
        for store in stores:
            await store.close()


async def test_memory(clock: FrozenClock) -> None:
    store = MemoryStore()
    await _race([store], clock)


async def test_sqlite(clock: FrozenClock, tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    await _closing([SQLiteStore(path) for _ in range(CLIENTS)], clock)


@pytest.fixture
async def redis_cleanup(redis_url: str) -> AsyncIterator[None]:
    yield
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=PREFIX + "*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.mark.redis
@pytest.mark.usefixtures("redis_cleanup")
async def test_redis(clock: FrozenClock, redis_url: str) -> None:
    make: Callable[[], SessionStore] = lambda: RedisStore.from_url(redis_url, prefix=PREFIX)  # noqa: E731
    await _closing([make() for _ in range(CLIENTS)], clock)


@pytest.fixture
async def postgres_cleanup(postgres_url: str) -> AsyncIterator[None]:
    yield
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (TABLE,))


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_cleanup")
async def test_postgres(clock: FrozenClock, postgres_url: str) -> None:
    sep = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{sep}table={TABLE}"
    stores: list[SessionStore] = [PostgresStore.from_url(url) for _ in range(CLIENTS)]
    # Open one first: the others then find the schema made and skip the migration race.
    await stores[0].get("x", 0.0)
    await _closing(stores, clock)
