"""connect-redis documents in a real Redis (db 15), without Node."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from coatcheck.clock import SystemClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.interop.connect_redis import ConnectRedisStore, connect_redis_ttl
from coatcheck.interop.express import new_express_session


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def store(client: redis.Redis) -> Iterator[ConnectRedisStore]:
    prefix = f"coatcheck-test:{secrets.token_hex(6)}:"
    yield ConnectRedisStore(client, prefix=prefix)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_ttl_rules() -> None:
    doc = new_express_session(now=100, max_age=timedelta(seconds=10))
    assert connect_redis_ttl(doc, now=100) == 10
    assert connect_redis_ttl(doc, now=100.5) == 10  # ceil, as Math.ceil
    assert connect_redis_ttl(doc, now=111) == -1
    assert connect_redis_ttl({"cookie": {"expires": None}}, now=0) == 86400
    assert connect_redis_ttl({}, now=0, default_ttl=5) == 5


def test_set_get_touch_destroy(store: ConnectRedisStore, client: redis.Redis) -> None:
    now = SystemClock().now()
    doc = new_express_session({"userId": "u"}, now=now, max_age=timedelta(minutes=5))
    store.set("sid1", doc)
    assert store.get("sid1") == doc
    assert 290 < client.ttl(store.key("sid1")) <= 300
    client.expire(store.key("sid1"), 5)
    store.touch("sid1", doc)
    assert client.ttl(store.key("sid1")) > 200
    store.destroy("sid1")
    assert store.get("sid1") is None


def test_expired_or_corrupt_documents_read_as_none(
    store: ConnectRedisStore, client: redis.Redis
) -> None:
    old = new_express_session(now=0, max_age=timedelta(seconds=1))
    store.set("gone", old)  # TTL <= 0: deleted, as connect-redis does
    assert client.exists(store.key("gone")) == 0
    client.set(store.key("stale"), '{"cookie":{"expires":"2000-01-01T00:00:00.000Z"}}', ex=60)
    assert store.get("stale") is None
    client.set(store.key("junk"), "not json", ex=60)
    assert store.get("junk") is None
    client.set(store.key("list"), "[1]", ex=60)
    assert store.get("list") is None


def test_unreachable_redis_is_store_unavailable() -> None:
    dead = ConnectRedisStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    with pytest.raises(StoreUnavailable):
        dead.get("x")


def test_ttl_must_be_positive(client: redis.Redis) -> None:
    with pytest.raises(ConfigurationError):
        ConnectRedisStore(client, ttl=0)
