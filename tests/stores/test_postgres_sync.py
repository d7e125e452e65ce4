"""SyncPostgresStore: PostgresStore's SQL on psycopg's blocking pool, without an event loop."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import psycopg
import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.sessions import SessionStore
from coatcheck.sessions.manager import SessionManager
from coatcheck.stores import PostgresStore, SyncPostgresStore, open_store
from coatcheck.sync import run_sync

from .contract import StoreContract, make_record, new_user
from .sync_driver import RunSyncStore

pytestmark = pytest.mark.postgres

TABLE = f"ccsync_{secrets.token_hex(4)}"


def _url(base: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}table={TABLE}"


@pytest.fixture(scope="module", autouse=True)
def _cleanup(postgres_url: str) -> Iterator[None]:
    yield
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}_attempts")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}_replay")
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (TABLE,))


class TestSyncPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[SessionStore]:
        inner = SyncPostgresStore.from_url(_url(postgres_url))
        inner._prune_every = 0  # the contract counts what delete_expired removes
        yield RunSyncStore(inner)
        run_sync(inner.close())


def test_open_store_sync_picks_the_blocking_store(postgres_url: str) -> None:
    store = open_store(_url(postgres_url), sync=True)
    assert isinstance(store, SyncPostgresStore)
    assert isinstance(store, SessionStore)
    assert repr(store).startswith("SyncPostgresStore(")
    assert type(open_store(postgres_url)) is PostgresStore
    with pytest.raises(ConfigurationError):
        open_store("postgresql://u@h/db?table=Robert');DROP", sync=True)


def test_threads_open_the_pool_once_and_share_it(postgres_url: str, clock: FrozenClock) -> None:
    store = SyncPostgresStore.from_url(_url(postgres_url))
    manager = SessionManager(store, clock=clock)
    token, record = run_sync(manager.create(new_user(), data={"n": 1}))
    run_sync(store.close())  # reopened below by eight threads at once
    seen: list[bool] = []

    def worker() -> None:
        for _ in range(10):
            seen.append(run_sync(manager.validate(token)) == record)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 80
    assert run_sync(manager.revoke(token)) is True
    run_sync(store.close())


def test_the_async_store_is_refused_clearly_in_sync_mode(
    postgres_url: str, clock: FrozenClock
) -> None:
    store = PostgresStore.from_url(_url(postgres_url))
    with pytest.raises(ConfigurationError, match="sync=True"):
        run_sync(store.get(make_record(clock.now()).id, clock.now()))


def test_unreachable_server_is_store_unavailable(clock: FrozenClock) -> None:
    store = SyncPostgresStore.from_url("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailable) as caught:
        run_sync(store.get(make_record(clock.now()).id, clock.now()))
    assert caught.value.__cause__ is not None
    run_sync(store.close())
