"""PostgresStore against the real server: the contract, plus schema, pruning and concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreError, StoreUnavailable
from coatcheck.ratelimit import AttemptRule
from coatcheck.sessions import SessionStore
from coatcheck.stores import SyncPostgresStore, open_store
from coatcheck.stores._pg_io import to_pyformat
from coatcheck.stores.postgres import PostgresStore
from coatcheck.sync import run_sync

from ..conftest import POSTGRES_URL
from .contract import StoreContract, make_record
from .test_faults import _Postgres

pytestmark = pytest.mark.postgres

# One table per test run, so parallel runs sharing the database never collide.
TABLE = f"cct_{secrets.token_hex(4)}"


def _url(base: str, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{base}{'&' if '?' in base else '?'}{query}" if query else base


def _drop(base: str, *tables: str) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"DROP TABLE IF EXISTS {table}_attempts")
            conn.execute(f"DROP TABLE IF EXISTS {table}_replay")
            conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))


@pytest.fixture(scope="module", autouse=True)
def _cleanup(postgres_url: str) -> Iterator[None]:
    yield
    _drop(postgres_url, TABLE, f"{TABLE}_m", f"{TABLE}_p")


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore.from_url(_url(postgres_url, table=TABLE))
    yield store
    await store.close()


class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[PostgresStore]:
        # No opportunistic pruning here: the contract counts what delete_expired removes.
        store = PostgresStore.from_url(_url(postgres_url, table=TABLE))
        store._prune_every = 0
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, postgres_url: str) -> AsyncIterator[PostgresStore]:
        store = PostgresStore.from_url(_url(postgres_url, table=TABLE))
        store._prune_every = 0
        yield store
        await store.close()


def test_is_a_session_store(postgres_url: str) -> None:
    assert isinstance(PostgresStore.from_url(postgres_url), SessionStore)


def test_open_store_and_url_options(postgres_url: str) -> None:
    store = open_store(_url(postgres_url.replace("postgresql://", "postgres://"), table="t_1"))
    assert isinstance(store, PostgresStore)
    assert "table='t_1'" in repr(store)
    assert "connect_timeout=2" in store._conninfo
    other = PostgresStore.from_url("postgresql://u:secret@db:5433/app?schema=s1&sslmode=disable")
    assert "table='s1.coatcheck_sessions'" in repr(other)
    assert "secret" not in repr(other)
    assert "sslmode=disable" in other._conninfo


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "postgresql://u@h:notaport/db",
        "postgresql://u@h/db?table=Robert');DROP",
        "postgresql://u@h/db?schema=a.b",
    ],
)
def test_from_url_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore.from_url(url)


@pytest.mark.anyio
async def test_schema_is_versioned_and_migration_is_safe_to_race(postgres_url: str) -> None:
    table = f"{TABLE}_m"
    stores = [PostgresStore.from_url(_url(postgres_url, table=table)) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))  # four "processes" start at once
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            "SELECT version FROM coatcheck_schema_version WHERE name = %s", (table,)
        )
        assert await cur.fetchall() == [(3,)]
        cur = await conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,))
        names = sorted(row[0] for row in await cur.fetchall())
        assert names == [f"{table}_expiry_idx", f"{table}_pkey", f"{table}_user_idx"]
        cur = await conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (f"{table}_attempts",)
        )
        names = sorted(row[0] for row in await cur.fetchall())
        assert names == [f"{table}_attempts_pkey", f"{table}_resets_idx"]
        cur = await conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (f"{table}_replay",)
        )
        names = sorted(row[0] for row in await cur.fetchall())
        assert names == [f"{table}_forget_idx", f"{table}_replay_pkey"]
    for s in stores:
        await s.close()


@pytest.mark.anyio
async def test_newer_schema_is_refused(postgres_url: str) -> None:
    table = f"{TABLE}_m"
    store = PostgresStore.from_url(_url(postgres_url, table=table))
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE coatcheck_schema_version SET version = 99 WHERE name = %s", (table,)
        )
    with pytest.raises(ConfigurationError):
        await store.open()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE coatcheck_schema_version SET version = 3 WHERE name = %s", (table,)
        )


@pytest.mark.anyio
async def test_version_1_table_migrates_to_3(postgres_url: str, clock: FrozenClock) -> None:
    table = f"{TABLE}_v"
    store = PostgresStore.from_url(_url(postgres_url, table=table))
    record = make_record(clock.now())
    await store.create(record)
    await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(f"DROP TABLE {table}_attempts")  # as version 1 left it
        await conn.execute(f"DROP TABLE {table}_replay")
        await conn.execute(
            "UPDATE coatcheck_schema_version SET version = 1 WHERE name = %s", (table,)
        )
    try:
        rule = AttemptRule(5, 60.0, 1.0, 60.0)
        assert await store.reserve_attempt("k", rule, clock.now()) == 0.0
        assert await store.peek_attempts("k", clock.now()) == (1, clock.now() + 60.0)
        assert await store.remember_once("k", 60.0, clock.now()) is True
        assert await store.get(record.id, clock.now()) == record
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cur = await conn.execute(
                "SELECT version FROM coatcheck_schema_version WHERE name = %s", (table,)
            )
            assert await cur.fetchall() == [(3,)]
    finally:
        await store.close()
        _drop(postgres_url, table)


@pytest.mark.anyio
async def test_lookup_uses_the_primary_key(store: PostgresStore, clock: FrozenClock) -> None:
    record = make_record(clock.now())
    await store.create(record)
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
        cur = await conn.execute(
            "EXPLAIN (FORMAT JSON) " + to_pyformat(store._sql_get),  # type: ignore[arg-type]
            (record.id, clock.now(), clock.now()),
        )
        plan = str(await cur.fetchone())
    assert f"{TABLE}_pkey" in plan


@pytest.mark.anyio
async def test_every_nth_create_prunes_a_small_batch(
    postgres_url: str, clock: FrozenClock
) -> None:
    table = f"{TABLE}_p"
    store = PostgresStore(
        _url(postgres_url), table=table, prune_every=4, prune_batch=2
    )
    now = clock.now()
    expired = [make_record(now - 100, expires_at=now - 50) for _ in range(3)]
    for record in expired:
        await store.create(record)  # creates 1-3: no pruning yet
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        count = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        assert await count.fetchone() == (3,)
        await store.create(make_record(now))  # the 4th create prunes two rows
        count = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        assert await count.fetchone() == (2,)
    await store.close()


@pytest.mark.anyio
async def test_data_that_is_not_json_is_refused(store: PostgresStore, clock: FrozenClock) -> None:
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), data={"when": object()}))
    with pytest.raises(StoreError):
        await store.create(make_record(clock.now(), data={"nul": "a\x00b"}))


@pytest.mark.anyio
async def test_unreachable_server_is_store_unavailable(clock: FrozenClock) -> None:
    store = PostgresStore.from_url("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailable) as caught:
        await store.get(make_record(clock.now()).id, clock.now())
    assert caught.value.__cause__ is not None
    assert caught.value.code == "store_unavailable"
    await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h1:5432,h2:notaport/db",
        "postgresql://u@h1:5432,:5433/db",
        "postgresql://u@h1:0/db",
        "postgresql://u@h/db?connect_timeout=soon",
    ],
)
def test_multi_host_urls_are_checked(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore.from_url(url)


def _multi(*ports: int, attrs: str = "any", table: str = TABLE) -> str:
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    return f"postgresql://postgres@{hosts}/postgres?target_session_attrs={attrs}&table={table}"


@pytest.mark.anyio
async def test_a_dead_first_host_is_skipped(postgres_url: str, clock: FrozenClock) -> None:
    # libpq multi-host: nothing listens on port 1, so the second address serves.
    url = _multi(1, 5432, table=f"{TABLE}_h").replace("/postgres?", "/test?")
    for store in (PostgresStore.from_url(url), SyncPostgresStore.from_url(url)):
        record = make_record(clock.now())
        if isinstance(store, SyncPostgresStore):
            run_sync(store.create(record))
            assert run_sync(store.get(record.id, clock.now())) == record
            run_sync(store.close())
        else:
            await store.create(record)
            assert await store.get(record.id, clock.now()) == record
            await store.close()
    _drop(postgres_url, f"{TABLE}_h")


@pytest.mark.anyio
async def test_read_write_skips_a_read_only_server(clock: FrozenClock) -> None:
    # A pair as after a failover: the first address is a read-only server (as a standby
    # is), the second a writable one; target_session_attrs=read-write picks the latter.
    standby, primary = _Postgres(), _Postgres()
    try:
        standby.start("default_transaction_read_only=on")
        primary.start()
        url = _multi(standby.port, primary.port, attrs="read-write")
        for store in (PostgresStore.from_url(url), SyncPostgresStore.from_url(url)):
            record = make_record(clock.now())
            if isinstance(store, SyncPostgresStore):
                run_sync(store.create(record))
                run_sync(store.close())
            else:
                await store.create(record)
                await store.close()
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{primary.port}/postgres"
            ) as conn:
                found = conn.execute(
                    f"SELECT count(*) FROM {TABLE} WHERE id = %s", (record.id,)  # noqa: S608
                ).fetchone()
            assert found == (1,)
        # Without the attribute the read-only server is taken, and its refusal to write
        # is a StoreUnavailable (503: the primary may be moving), never a 500.
        store = PostgresStore.from_url(_multi(standby.port, primary.port, table="ro_table"))
        with pytest.raises(StoreUnavailable):
            await store.create(make_record(clock.now()))
        await store.close()
    finally:
        for server in (standby, primary):
            with contextlib.suppress(Exception):
                server.stop()
            server.remove()


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("keepalives=1", "'keepalives' is not one the asyncio store (asyncpg) understands"),
        ("sslmode=requre", "sslmode='requre' is not valid: use one of allow, disable"),
        ("target_session_attrs=readwrite", "use one of any, prefer-standby"),
    ],
)
def test_asyncpg_url_options_are_checked_at_start_up(
    postgres_store_url: str, option: str, says: str
) -> None:
    # Regression: asyncpg sends an option it does not know to the server as a setting,
    # and checks sslmode only when it connects: the first request failed, not start-up.
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        open_store(f"{postgres_store_url}&{option}")
    # psycopg (sync=True) is libpq: its options are libpq's, checked by libpq.
    assert open_store(f"{postgres_store_url}&keepalives=1", sync=True) is not None


@pytest.mark.anyio
async def test_asyncpg_url_options_it_knows_reach_the_connection(
    postgres_store_url: str, clock: FrozenClock
) -> None:
    good = open_store(f"{postgres_store_url}&sslmode=disable&application_name=cc-options")
    record = make_record(clock.now())
    await good.create(record)
    assert await good.get(record.id, clock.now()) == record
    await good.close()
    tls = open_store(f"{postgres_store_url}&sslmode=require")  # this server has no TLS
    with pytest.raises(StoreError):
        await tls.get(record.id, clock.now())
    await tls.close()
