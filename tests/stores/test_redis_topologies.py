"""RedisStore on a real Redis Cluster and a real Sentinel group (started by .ci/services).

The whole store contract runs on both, asyncio and blocking; so do the layout checks
that only a cluster can make (every script's keys in one slot, the scan reaching every
master, the per-request read going straight to the slot's master).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError
from coatcheck.sessions import SessionStore
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import RedisStore, SyncRedisStore, open_store
from coatcheck.stores._redis_io import ClusterIO, NodeIO
from coatcheck.stores._resp import FastGet
from coatcheck.sync import run_sync

from .contract import StoreContract, make_record, new_user
from .sync_driver import RunSyncStore

pytestmark = pytest.mark.redis

PREFIX = f"cct{secrets.token_hex(2)}:"


class TestClusterStore(StoreContract):
    expires_by_own_clock = True  # Redis drops one-time values by its own clock

    @pytest.fixture
    async def store(self, redis_cluster_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_cluster_url + "?prefix=" + PREFIX)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, redis_cluster_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_cluster_url + "?prefix=" + PREFIX)
        yield store
        await store.close()


class TestSyncClusterStore(StoreContract):
    expires_by_own_clock = True  # Redis drops one-time values by its own clock

    @pytest.fixture
    def store(self, redis_cluster_url: str) -> Iterator[SessionStore]:
        inner = SyncRedisStore.from_url(redis_cluster_url, prefix=PREFIX)
        yield RunSyncStore(inner)
        run_sync(inner.close())


class TestSentinelStore(StoreContract):
    expires_by_own_clock = True  # Redis drops one-time values by its own clock

    @pytest.fixture
    async def store(self, redis_sentinel_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_sentinel_url, prefix=PREFIX)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, redis_sentinel_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore.from_url(redis_sentinel_url, prefix=PREFIX)
        yield store
        await store.close()


class TestSyncSentinelStore(StoreContract):
    expires_by_own_clock = True  # Redis drops one-time values by its own clock

    @pytest.fixture
    def store(self, redis_sentinel_url: str) -> Iterator[SessionStore]:
        inner = SyncRedisStore.from_url(redis_sentinel_url, prefix=PREFIX)
        yield RunSyncStore(inner)
        run_sync(inner.close())


def _cluster_ports(url: str) -> list[int]:
    return [int(h.rpartition(":")[2]) for h in url.split("://")[1].strip("/").split(",")]


def _node_clients(url: str) -> list[redis.Redis]:
    return [redis.Redis(port=p) for p in _cluster_ports(url)]


def test_open_store_takes_cluster_and_sentinel_urls(
    redis_cluster_url: str, redis_sentinel_url: str
) -> None:
    cluster = open_store(redis_cluster_url + "?prefix=app1:")
    assert isinstance(cluster, RedisStore)
    assert isinstance(cluster._io, ClusterIO)
    assert repr(cluster).startswith("RedisStore(cluster 127.0.0.1:")
    assert "prefix='app1:'" in repr(cluster)
    sentinel = open_store(redis_sentinel_url)
    assert isinstance(sentinel._io, NodeIO)  # type: ignore[attr-defined]
    # The per-request read is the lean GET, on the master the sentinels name.
    assert type(sentinel._get.__self__) is FastGet  # type: ignore[attr-defined]
    assert "/coatcheck/15" in repr(sentinel)
    assert type(open_store(redis_cluster_url, sync=True)) is SyncRedisStore
    assert type(open_store(redis_sentinel_url, sync=True)) is SyncRedisStore


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://127.0.0.1/",
        "redis+cluster://127.0.0.1:0/",
        "redis+cluster://127.0.0.1:7000/3",
        "redis+cluster://127.0.0.1:7000/?colour=red",
        "redis+cluster://127.0.0.1:7000/?wait=x",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1:26379/svc/db",
        "redis+sentinel://127.0.0.1:26379/svc/0/extra",
        "redis+sentinel://127.0.0.1:26379/svc/0?colour=red",
        "redis+cluster://127.0.0.1:7000/?prefix=a{b",
    ],
)
def test_malformed_topology_urls_fail_at_start(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)
    with pytest.raises(ConfigurationError):
        open_store(url, sync=True)


@pytest.mark.anyio
async def test_a_user_s_keys_share_one_slot_and_users_spread_over_every_master(
    redis_cluster_url: str, clock: FrozenClock
) -> None:
    store = RedisStore.from_url(redis_cluster_url, prefix=PREFIX)
    manager = SessionManager(store, clock=clock)
    owners: set[int] = set()
    for _ in range(24):
        user = new_user()
        for _ in range(3):
            await manager.create(user)
        sessions = await store.list_user(user, clock.now())
        assert len(sessions) == 3
        index, _, _ = store._user_keys(user)
        keys = [store._session_key(s.id) for s in sessions]
        assert {key_slot(k[0]) for k in keys if k is not None} == {key_slot(index)}
        owners.add(key_slot(index) * 3 // 16384)
    assert owners == {0, 1, 2}  # the test cluster splits the slots in three equal parts
    await store.close()


@pytest.mark.anyio
async def test_delete_expired_reaches_every_master(
    redis_cluster_url: str, clock: FrozenClock
) -> None:
    prefix = f"ccx{secrets.token_hex(2)}:"
    store = RedisStore.from_url(redis_cluster_url, prefix=prefix)
    now = clock.now()
    dead = [make_record(now - 50, expires_at=now - 10) for _ in range(30)]
    for record in dead:
        await store.create(record)
    masters = {key_slot(store._session_key(r.id)[0]) * 3 // 16384 for r in dead}  # type: ignore[index]
    assert masters == {0, 1, 2}
    assert await store.delete_expired(now) == 30
    for client in _node_clients(redis_cluster_url):
        assert client.keys(prefix + "*") == []
        client.close()
    await store.close()


@pytest.mark.anyio
async def test_the_per_request_read_is_one_get_on_the_slot_s_master(
    redis_cluster_url: str, clock: FrozenClock
) -> None:
    store = RedisStore.from_url(redis_cluster_url, prefix=PREFIX)
    manager = SessionManager(store, clock=clock)
    token, record = await manager.create(new_user())
    assert await manager.validate(token) == record  # the table is read by now
    io = store._io
    assert isinstance(io, ClusterIO)
    seen: list[tuple[Any, ...]] = []
    for link in io._links.values():
        inner = link.fast  # type: ignore[attr-defined]
        original = inner.get_raw

        async def get_raw(key: bytes, inner: Any = inner, original: Any = original) -> Any:
            seen.append((inner.address, key))
            return await original(key)

        link.get_raw = get_raw  # type: ignore[attr-defined]
    clock.advance(60)
    assert await manager.validate(token) == record
    key = store._session_key(record.id)[0]  # type: ignore[index]
    owner = redis.Redis(port=_cluster_ports(redis_cluster_url)[0]).cluster("keyslot", key)
    assert len(seen) == 1
    assert seen[0][1] == key
    nodes = redis.Redis(port=_cluster_ports(redis_cluster_url)[0]).cluster("slots")
    (address,) = [
        (n[2][0].decode(), n[2][1]) for n in nodes if n[0] <= owner <= n[1]
    ]
    assert seen[0][0] == address
    await store.close()


@pytest.mark.anyio
async def test_wait_for_a_replica_on_creation(
    redis_cluster_url: str, redis_sentinel_url: str, clock: FrozenClock
) -> None:
    for url in (redis_cluster_url + "?wait=1", redis_sentinel_url + "?wait=1"):
        store = RedisStore.from_url(url + "&prefix=" + PREFIX)
        record = make_record(clock.now())
        await store.create(record)
        assert await store.get(record.id, clock.now()) == record
        assert await store.delete(record.id) == record
        await store.close()
    # Asking for more replicas than there are: the write is not acknowledged.
    store = RedisStore.from_url(redis_cluster_url + f"?wait=2&wait_timeout=50&prefix={PREFIX}")
    from coatcheck.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="replicas"):
        await store.create(make_record(clock.now()))
    await store.close()
