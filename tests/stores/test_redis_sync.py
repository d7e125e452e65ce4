"""SyncRedisStore: RedisStore's logic on the blocking client, driven without an event loop."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.sessions import SessionStore
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import RedisStore, SyncRedisStore, open_store
from coatcheck.sync import run_sync

from .contract import StoreContract, make_record, new_user
from .sync_driver import RunSyncStore

pytestmark = pytest.mark.redis

PREFIX = f"ccs{secrets.token_hex(1)}:"


class TestSyncRedisStore(StoreContract):
    expires_by_own_clock = True

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[SessionStore]:
        inner = SyncRedisStore.from_url(redis_url, prefix=PREFIX)
        yield RunSyncStore(inner)
        run_sync(inner.close())


def test_open_store_sync_picks_the_blocking_store(redis_url: str) -> None:
    store = open_store(redis_url + "?prefix=px:", sync=True)
    assert isinstance(store, SyncRedisStore)
    assert isinstance(store, SessionStore)
    assert "prefix='px:'" in repr(store)
    assert repr(store).startswith("SyncRedisStore(")
    assert type(open_store(redis_url)) is RedisStore


@pytest.mark.parametrize("url", ["redis://", "redis://h:0/0", "redis://h/x", "http://h/0"])
def test_bad_urls_are_refused_as_the_async_store_refuses_them(url: str) -> None:
    with pytest.raises(ConfigurationError):
        SyncRedisStore.from_url(url)


def test_a_session_round_trip_with_no_event_loop(redis_url: str, clock: FrozenClock) -> None:
    store = SyncRedisStore.from_url(redis_url, prefix=PREFIX)
    manager = SessionManager(store, clock=clock)
    token, record = run_sync(manager.create(new_user(), data={"n": 1}))
    assert run_sync(manager.validate(token)) == record
    assert run_sync(manager.revoke(token)) is True
    assert run_sync(manager.validate(token)) is None
    assert run_sync(store.ping()) is True
    run_sync(store.close())


def test_threads_share_one_store(redis_url: str, clock: FrozenClock) -> None:
    # A threaded WSGI server: one store, many threads, each driving its own coroutines.
    store = SyncRedisStore.from_url(redis_url, prefix=PREFIX)
    manager = SessionManager(store, clock=clock)
    token, _ = run_sync(manager.create(new_user()))
    seen: list[bool] = []

    def worker() -> None:
        for _ in range(20):
            seen.append(run_sync(manager.validate(token)) is not None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 160
    run_sync(store.close())


def test_the_async_store_is_refused_clearly_in_sync_mode(
    redis_url: str, clock: FrozenClock
) -> None:
    store = RedisStore.from_url(redis_url, prefix=PREFIX)
    with pytest.raises(ConfigurationError, match="sync=True"):
        run_sync(store.get(make_record(clock.now()).id, clock.now()))


def test_unreachable_server_is_store_unavailable(clock: FrozenClock) -> None:
    store = SyncRedisStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable) as caught:
        run_sync(store.get(make_record(clock.now()).id, clock.now()))
    assert caught.value.__cause__ is not None
    assert run_sync(store.ping()) is False
    run_sync(store.close())
