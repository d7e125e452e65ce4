"""RedisStore against the real server: the contract, plus layout, TTLs and concurrency."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreError, StoreUnavailable
from coatcheck.ratelimit import AttemptRule
from coatcheck.sessions import SessionStore
from coatcheck.sessions.ids import new_token, session_id
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import open_store
from coatcheck.stores import redis as redis_store
from coatcheck.stores._redis_io import NodeIO, Script
from coatcheck.stores.redis import RedisStore

from .contract import DAY, StoreContract, make_record, new_user

pytestmark = pytest.mark.redis

# One prefix per test run, so parallel runs sharing db 15 never see each other's keys.
RUN_PREFIX = f"cct:{secrets.token_hex(4)}:"


async def _clean(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


async def _load_scripts(url: str) -> None:
    # A fresh server has no script cached, and the first EVALSHA of each would add an
    # EVAL to the commands a test counts: load them all up front.
    client = aioredis.Redis.from_url(url)
    try:
        for script in vars(redis_store).values():
            if isinstance(script, Script):
                await client.script_load(script.source)
    finally:
        await client.aclose()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url, prefix=RUN_PREFIX)
    await _load_scripts(redis_url)
    yield store
    await store.close()


@pytest.fixture(scope="module", autouse=True)
def _cleanup(redis_url: str) -> Any:
    yield
    asyncio.run(_clean(redis_url, RUN_PREFIX))


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class TestRedisStore(StoreContract):
    expires_by_own_clock = True

    @pytest.fixture
    async def store(self, redis_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_url, prefix=RUN_PREFIX)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, redis_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_url, prefix=RUN_PREFIX)
        yield store
        await store.close()


def _keys(prefix: str, sid: str, user: str) -> tuple[bytes, bytes]:
    head = prefix.encode() + b"{" + sid[:4].encode() + b"}"
    return head + b"s" + bytes.fromhex(sid[9:])[:16], head + b"u" + user.encode()


class _Counting:
    """Counts the commands a store sends, at the wire (a script call is one EVALSHA).

    Both paths: the redis-py link, and the lean GET of the per-request read.
    """

    def __init__(self, store: RedisStore) -> None:
        self.commands: list[str] = []
        io = store._io
        assert isinstance(io, NodeIO)
        io._link = _CountingLink(io._link, self.commands)  # type: ignore[assignment]
        inner_get = store._get

        async def get(key: bytes) -> bytes | None:
            if inner_get is not io._get:  # the lean GET; redis-py's is counted by the link
                self.commands.append("GET")
            return await inner_get(key)

        store._get = get


class _CountingLink:
    def __init__(self, inner: Any, commands: list[str]) -> None:
        self._inner = inner
        self._commands = commands

    async def get_raw(self, key: bytes) -> Any:
        self._commands.append("GET")
        return await self._inner.get_raw(key)

    async def execute(self, *args: Any, idempotent: bool = False) -> Any:
        self._commands.append(bytes(args[0]).decode())
        return await self._inner.execute(*args, idempotent=idempotent)

    async def execute_many(self, commands: list[Any], *, idempotent: bool = False) -> Any:
        self._commands.extend(bytes(c[0]).decode() for c in commands)
        return await self._inner.execute_many(commands, idempotent=idempotent)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_is_a_session_store(redis_url: str) -> None:
    assert isinstance(RedisStore.from_url(redis_url), SessionStore)


def test_open_store_and_url_options(redis_url: str) -> None:
    store = open_store(redis_url + "?prefix=app1:")
    assert isinstance(store, RedisStore)
    assert "prefix='app1:'" in repr(store)
    assert "prefix='cc:'" in repr(RedisStore.from_url("redis://127.0.0.1:6379/0"))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379/0", "redis://", "redis://127.0.0.1:6379/notadb"]
)
def test_from_url_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore.from_url(url)


def test_prefix_cannot_break_the_hash_tag(redis_url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore.from_url(redis_url, prefix="a{b}:")


@pytest.mark.anyio
async def test_validate_without_renewal_is_exactly_one_command(
    store: RedisStore, clock: FrozenClock
) -> None:
    manager = SessionManager(store, clock=clock)
    token, record = await manager.create(new_user())
    counting = _Counting(store)
    clock.advance(60)
    assert await manager.validate(token) == record
    assert counting.commands == ["GET"]
    clock.advance(2 * 3600)  # renewal due: the read, then one script for the write
    assert await manager.validate(token) is not None
    assert counting.commands == ["GET", "GET", "EVALSHA"]


@pytest.mark.anyio
async def test_ttl_follows_expiry_and_keys_share_a_slot(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    now = clock.now()
    user = new_user()
    record = make_record(now, user, expires_at=now + 100.0, absolute_expires_at=now + 1000.0)
    await store.create(record)
    key, index = _keys(RUN_PREFIX, record.id, user)
    assert key_slot(key) == key_slot(index)
    assert 99_000 <= await raw.pttl(key) <= 100_000
    # The index lives as long as the longest possible session, with a margin.
    assert await raw.pttl(index) >= 1_000_000
    await store.touch(record.id, now + 50.0, now + 250.0)
    assert 199_000 <= await raw.pttl(key) <= 200_000
    await store.touch(record.id, now + 60.0, now + 5000.0)  # capped by the absolute expiry
    assert 939_000 <= await raw.pttl(key) <= 940_000
    current = await store.get(record.id, now + 60.0)
    assert current is not None
    assert await store.update(current.with_data({"x": 1})) is True  # same expiry: same TTL
    assert 938_000 <= await raw.pttl(key) <= 940_000
    # A stale copy writes its own (earlier) expiry, and the TTL moves with it.
    assert await store.update(replace(record, data={"x": 2}, version=3)) is True
    assert 38_000 <= await raw.pttl(key) <= 40_000


@pytest.mark.anyio
async def test_record_is_compact(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    now = clock.now()
    record = make_record(now, data={}, user_agent="", ip="")
    await store.create(record)
    key, _ = _keys(RUN_PREFIX, record.id, record.user_id)
    value = await raw.get(key)
    assert value is not None
    # The key: prefix, a 4-digit hash tag, a type byte and half the digest (with
    # the default "cc:" prefix, 26 bytes: jemalloc's 32-byte class with sds header).
    assert len(key) == len(RUN_PREFIX) + 6 + 1 + 16
    # The value: the digest's other half, then ten fields with no names; a fresh
    # session's last_seen and auth_time equal created_at and are stored as null.
    assert value[:16] == bytes.fromhex(record.id[9:])[16:]
    assert value[16:].count(b"null") == 2
    assert len(value) <= 16 + 60 + len(record.user_id)


@pytest.mark.anyio
async def test_the_whole_id_must_match(store: RedisStore, clock: FrozenClock) -> None:
    # Same key (first half of the digest), different second half: not the session.
    now = clock.now()
    record = make_record(now, data={"a": 1})
    await store.create(record)
    last = record.id[-1]
    twin = record.id[:-1] + ("0" if last != "0" else "1")
    assert await store.get(twin, now) is None
    await store.touch(twin, now + 10, now + 2 * DAY)
    assert await store.update(replace(record, id=twin, version=2)) is False
    assert await store.delete(twin) is None
    assert await store.get(record.id, now) == record
    assert [r.id for r in await store.list_user(record.user_id, now)] == [record.id]
    assert await store.delete_user(record.user_id) == [record.id]


@pytest.mark.anyio
async def test_index_entries_of_sessions_redis_dropped_are_pruned(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    user = new_user()
    records = [make_record(clock.now() + i, user) for i in range(3)]
    for record in records:
        await store.create(record)
    key, index = _keys(RUN_PREFIX, records[0].id, user)
    await raw.delete(key)  # as if its TTL ran out
    assert await raw.hlen(index) == 3
    assert await store.list_user(user, clock.now()) == records[1:]
    assert await raw.hlen(index) == 2
    assert await store.delete(records[0].id) is None
    assert await store.delete_user(user) == [r.id for r in records[1:]]
    assert await raw.exists(index) == 0


@pytest.mark.anyio
async def test_delete_expired_tidies_indexes(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    now = clock.now()
    user = new_user()
    dead = make_record(now - 50, user, expires_at=now - 10)
    gone = make_record(now - 40, user)
    live = make_record(now - 30, user)
    for record in (dead, gone, live):
        await store.create(record)
    await raw.delete(_keys(RUN_PREFIX, gone.id, user)[0])
    assert await store.delete_expired(now) >= 1
    _, index = _keys(RUN_PREFIX, live.id, user)
    assert await raw.hkeys(index) == [bytes.fromhex(live.id[9:])[:16]]
    assert await store.get(live.id, now) == live


@pytest.mark.anyio
async def test_create_refuses_an_id_of_another_user(store: RedisStore, clock: FrozenClock) -> None:
    record = make_record(clock.now(), "alice")
    foreign = session_id(new_token("bob"))
    assert foreign is not None
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), "alice", id=foreign))
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), "alice", id="not-an-id"))
    assert await store.get("not-an-id", clock.now()) is None
    assert await store.get(record.id.upper(), clock.now()) is None


@pytest.mark.anyio
async def test_data_that_is_not_json_is_refused(store: RedisStore, clock: FrozenClock) -> None:
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), data={"when": object()}))
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), data={"nan": float("nan")}))


@pytest.mark.anyio
async def test_unreadable_record_is_a_store_error(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    record = make_record(clock.now())
    await store.create(record)
    tail = bytes.fromhex(record.id[9:])[16:]
    await raw.set(_keys(RUN_PREFIX, record.id, record.user_id)[0], tail + b"{garbage")
    with pytest.raises(StoreError) as caught:
        await store.get(record.id, clock.now())
    assert caught.value.code == "store_error"
    with pytest.raises(StoreError):
        await store.touch(record.id, clock.now(), clock.now() + DAY)


@pytest.mark.anyio
async def test_unreachable_server_is_store_unavailable(clock: FrozenClock) -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    record = make_record(clock.now())
    with pytest.raises(StoreUnavailable) as caught:
        await store.get(record.id, clock.now())
    assert caught.value.__cause__ is not None
    with pytest.raises(StoreUnavailable):
        await store.create(record)
    with pytest.raises(StoreUnavailable):
        await store.delete_expired(clock.now())
    assert await store.ping() is False
    await store.close()


@pytest.mark.anyio
async def test_attempt_counter_is_one_script_call_and_expires_by_itself(
    store: RedisStore, raw: aioredis.Redis, clock: FrozenClock
) -> None:
    key = secrets.token_hex(32)
    rule = AttemptRule(5, 900.0, 1.0, 60.0)
    counting = _Counting(store)
    assert await store.reserve_attempt(key, rule, clock.now()) == 0.0
    assert counting.commands == ["EVALSHA"]  # the lock check and the count: one script
    assert await store.peek_attempts(key, clock.now()) == (1, clock.now() + 900.0)
    # The count is judged by the caller's clock; the TTL only collects the key.
    ttl = await raw.pttl(RUN_PREFIX.encode() + b"a:" + key.encode())
    assert 900_000 < ttl <= 960_000
    counting.commands.clear()
    await store.release_attempt(key)
    assert counting.commands == ["EVALSHA"]
    assert await raw.exists(RUN_PREFIX.encode() + b"a:" + key.encode()) == 0
    await raw.set(RUN_PREFIX.encode() + b"a:" + key.encode(), b"garbage")
    assert await store.peek_attempts(key, clock.now()) == (0, clock.now())
    assert await store.reserve_attempt(key, rule, clock.now()) == 0.0
    assert await store.peek_attempts(key, clock.now()) == (1, clock.now() + 900.0)
    await store.release_attempt("never-counted")  # nothing to take back: no error


@pytest.mark.anyio
async def test_a_burst_beyond_the_pool_waits_instead_of_failing(
    store: RedisStore, clock: FrozenClock
) -> None:
    # 300 writes at once from one process: redis-py's asyncio pool alone would refuse
    # every one past its 100th connection ("Too many connections", a 503 here).
    records = [make_record(clock.now()) for _ in range(300)]
    await asyncio.gather(*(store.create(r) for r in records))
    assert all([await store.get(r.id, clock.now()) == r for r in records])
