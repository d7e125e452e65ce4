"""SQLiteStore: the contract, durability, sharing one file, URLs and failures."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreError, StoreUnavailable
from coatcheck.ratelimit import AttemptRule
from coatcheck.sessions import SessionManager, SessionStore
from coatcheck.stores import sqlite as sqlite_module
from coatcheck.stores.sqlite import SCHEMA_VERSION, SQLiteStore

from .contract import StoreContract, make_record, new_user


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "sessions.db")
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "sessions.db")  # its own connection, same file
        yield store
        await store.close()


class TestSQLiteMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[SQLiteStore]:
        store = SQLiteStore.from_url("sqlite://")
        yield store
        await store.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sessions.db")
    yield store
    await store.close()


def test_is_a_session_store(tmp_path: Path) -> None:
    assert isinstance(SQLiteStore(tmp_path / "s.db"), SessionStore)


def test_nothing_is_opened_before_first_use(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "s.db")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SQLiteStore(tmp_path / "nowhere" / "s.db")


@pytest.mark.parametrize("kwargs", [{"busy_timeout": -1.0}])
def test_bad_options_are_configuration_errors(tmp_path: Path, kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStore(tmp_path / "s.db", **kwargs)


def test_empty_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStore("")


# -- durability and schema ----------------------------------------------------------------


@pytest.mark.anyio
async def test_sessions_survive_a_restart(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "sessions.db"
    first = SQLiteStore(path)
    manager = SessionManager(first, clock=clock)
    token, record = await manager.create(new_user(), data={"name": "Zoë"}, ip="10.0.0.1")
    await first.close()

    second = SQLiteStore(path)
    assert await SessionManager(second, clock=clock).validate(token) == record
    await second.close()


@pytest.mark.anyio
async def test_close_then_use_reopens(store: SQLiteStore, clock: FrozenClock) -> None:
    record = make_record(clock.now())
    await store.create(record)
    await store.close()
    await store.close()  # idempotent
    assert await store.get(record.id, clock.now()) == record


@pytest.mark.anyio
async def test_schema_wal_and_indexes(store: SQLiteStore, tmp_path: Path) -> None:
    await store.get("x", 0.0)  # first use creates the schema
    db = sqlite3.connect(tmp_path / "sessions.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT version FROM coatcheck_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        indexes = {
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert {"coatcheck_sessions_user", "coatcheck_sessions_expiry"} <= indexes
    finally:
        db.close()


@pytest.mark.anyio
async def test_schema_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    for _ in range(3):
        store = SQLiteStore(path)
        await store.get("x", 0.0)
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT count(*) FROM coatcheck_schema").fetchone() == (1,)
    finally:
        db.close()


@pytest.mark.anyio
async def test_settings_on_the_connection(store: SQLiteStore) -> None:
    await store.get("x", 0.0)
    conn = store._conn
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (sqlite_module._GET, ("a", 0.0, 0.0), "PRIMARY KEY"),
        (sqlite_module._LIST_USER, ("u", 0.0, 0.0), "coatcheck_sessions_user"),
        (sqlite_module._DELETE_EXPIRED, (0.0, 10), "coatcheck_sessions_expiry"),
        (sqlite_module._DELETE_USER, ("u",), "coatcheck_sessions_user"),
    ],
)
async def test_queries_use_an_index(
    store: SQLiteStore, sql: str, params: tuple[object, ...], index: str
) -> None:
    await store.get("x", 0.0)
    conn = store._conn
    assert conn is not None
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert index in plan
    assert "SCAN coatcheck_sessions" not in plan


@pytest.mark.anyio
async def test_version_1_file_gains_the_attempts_and_replay_tables(
    tmp_path: Path, clock: FrozenClock
) -> None:
    path = tmp_path / "v1.db"
    store = SQLiteStore(path)
    record = make_record(clock.now())
    await store.create(record)
    await store.close()
    db = sqlite3.connect(path)  # as version 1 left it: no attempts table
    db.execute("DROP TABLE coatcheck_attempts")
    db.execute("DROP TABLE coatcheck_replay")
    db.execute("UPDATE coatcheck_schema SET version = 1")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert await store.reserve_attempt("k", AttemptRule(5, 60.0, 1.0, 60.0), clock.now()) == 0
    assert await store.peek_attempts("k", clock.now()) == (1, clock.now() + 60.0)
    assert await store.remember_once("k", 60.0, clock.now()) is True
    assert await store.get(record.id, clock.now()) == record
    await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM coatcheck_schema").fetchall() == [(3,)]
    finally:
        db.close()


@pytest.mark.anyio
async def test_attempt_queries_use_an_index(store: SQLiteStore) -> None:
    await store.get("x", 0.0)
    conn = store._conn
    assert conn is not None
    for sql, params in (
        (sqlite_module._PEEK_ATTEMPTS, ("k", 0.0)),
        (sqlite_module._RELEASE_ATTEMPT, ("k",)),
        (sqlite_module._DELETE_SPENT_ATTEMPTS, (0.0,)),
    ):
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "SCAN coatcheck_attempts" not in plan


@pytest.mark.anyio
async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE coatcheck_schema (version INTEGER NOT NULL)")
    db.execute("INSERT INTO coatcheck_schema VALUES (?)", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="schema version"):
        await store.get("x", 0.0)
    assert store._conn is None


# -- sharing one file ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_connections_share_one_file(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "shared.db"
    a, b = SQLiteStore(path), SQLiteStore(path)
    record = make_record(clock.now(), data={"n": 0})
    await a.create(record)
    assert await b.get(record.id, clock.now()) == record
    assert await b.update(record.with_data({"n": "b"})) is True
    assert await a.update(record.with_data({"n": "a"})) is False  # stale in a's view
    got = await a.get(record.id, clock.now())
    assert got is not None
    assert got.data == {"n": "b"}
    await a.close()
    await b.close()


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from coatcheck.clock import FrozenClock
    from coatcheck.sessions import SessionManager
    from coatcheck.stores.sqlite import SQLiteStore

    async def main(path, sid, name, count):
        store = SQLiteStore(path)
        manager = SessionManager(store, clock=FrozenClock(1_800_000_000.0), update_attempts=1000)
        for i in range(count):
            await manager.update_data(sid, lambda d, i=i: d.__setitem__(f"{name}-{i}", i))
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


@pytest.mark.anyio
async def test_processes_writing_one_session_lose_nothing(
    tmp_path: Path, clock: FrozenClock
) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    manager = SessionManager(store, clock=clock)
    _, record = await manager.create(new_user())
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), record.id, f"p{n}", "25"])
        for n in range(3)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0]
    final = await store.get(record.id, clock.now())
    assert final is not None
    assert final.data == {f"p{n}-{i}": i for n in range(3) for i in range(25)}
    assert final.version == record.version + 75
    await store.close()


@pytest.mark.anyio
async def test_forked_child_reopens(store: SQLiteStore, clock: FrozenClock) -> None:
    record = make_record(clock.now())
    await store.create(record)
    inherited = store._conn
    sqlite_module._forget_connections_after_fork()  # what os.fork() runs in the child
    assert store._conn is None
    assert await store.get(record.id, clock.now()) == record
    assert store._conn is not inherited


def test_a_real_fork_shares_the_file_not_the_connection(
    tmp_path: Path, clock: FrozenClock
) -> None:
    # What a pre-forking server (gunicorn) does: open in the parent, fork the workers.
    from coatcheck.sync import run_sync

    store = SQLiteStore(str(tmp_path / "forked.db"))
    parent_record = make_record(clock.now())
    run_sync(store.create(parent_record))
    inherited = store._conn
    child_record = make_record(clock.now())
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the parent's sessions, its own writes
        ok = (
            run_sync(store.get(parent_record.id, clock.now())) == parent_record
            and store._conn is not inherited
        )
        run_sync(store.create(child_record))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run_sync(store.get(child_record.id, clock.now())) == child_record
    assert store._conn is inherited  # the parent keeps its own
    mode = sqlite3.connect(str(tmp_path / "forked.db")).execute("PRAGMA journal_mode")
    assert mode.fetchone() == ("wal",)
    run_sync(store.close())


# -- pruning ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_delete_expired_in_batches(
    store: SQLiteStore, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_PRUNE_BATCH", 3)
    now = clock.now()
    for i in range(10):
        await store.create(make_record(now - 100, expires_at=now - i - 1))
    live = make_record(now)
    await store.create(live)
    assert await store.delete_expired(now, limit=5) == 5
    assert await store.delete_expired(now, limit=0) == 0
    assert await store.delete_expired(now) == 5
    assert await store.delete_expired(now) == 0
    assert await store.get(live.id, now) == live


# -- failures -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unserialisable_data_is_a_store_error(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    with pytest.raises(StoreError, match="JSON") as info:
        await store.create(make_record(clock.now(), data={"when": object()}))
    assert isinstance(info.value.__cause__, TypeError)
    record = make_record(clock.now())
    await store.create(record)
    with pytest.raises(StoreError):
        await store.update(record.with_data({"nan": float("nan")}))


@pytest.mark.anyio
async def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an sqlite database" * 100)
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as info:
        await store.get("x", 0.0)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


@pytest.mark.anyio
async def test_locked_database_is_unavailable(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, busy_timeout=0)
    record = make_record(clock.now())
    await store.create(record)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable) as info:
            await store.touch(record.id, clock.now(), clock.now() + 60)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert str(info.value).startswith("store_unavailable: ")
        # WAL: readers are not blocked by the writer.
        assert await store.get(record.id, clock.now()) == record
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await store.touch(record.id, clock.now(), clock.now() + 60)
    await store.close()


@pytest.mark.anyio
async def test_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    store = SQLiteStore(folder)
    with pytest.raises(StoreUnavailable):
        await store.get("x", 0.0)


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "busy_timeout"),
    [
        ("sqlite:///coatcheck.db", "coatcheck.db", 5.0),
        ("sqlite:///data/sessions.db", "data/sessions.db", 5.0),
        ("sqlite:////tmp/sessions.db", "/tmp/sessions.db", 5.0),
        ("sqlite:////tmp/with%20space.db", "/tmp/with space.db", 5.0),
        ("sqlite://", ":memory:", 5.0),
        ("sqlite:///:memory:", ":memory:", 5.0),
        ("sqlite:////tmp/s.db?busy_timeout=0.5", "/tmp/s.db", 0.5),
    ],
)
def test_parse_url(url: str, path: str, busy_timeout: float) -> None:
    assert sqlite_module._parse_url(url) == (path, busy_timeout)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://relative.db", "three slashes"),
        ("sqlite://relative.db", r"sqlite:///relative\.db"),
        ("sqlite:relative.db", "sqlite:///relative.db"),
        ("sqlite:////tmp/s.db?timeout=3", "unknown SQLite store URL option"),
        ("sqlite:////tmp/s.db?busy_timeout=soon", "number of seconds"),
        ("sqlite:////tmp/s.db#frag", "fragment"),
        ("postgresql:///x", "sqlite:"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SQLiteStore.from_url(url)


@pytest.mark.anyio
async def test_relative_url_is_relative_to_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore.from_url("sqlite:///here.db")
    await store.create(make_record(clock.now()))
    await store.close()
    assert (tmp_path / "here.db").is_file()
    assert store.path == str(tmp_path / "here.db")
    assert repr(store) == f"SQLiteStore({str(tmp_path / 'here.db')!r})"


def test_threads_sharing_the_connection_win_a_compare_and_set_once(
    tmp_path: Path, clock: FrozenClock
) -> None:
    # Regression: update() judged its compare-and-set by cursor.rowcount, which reads
    # the connection's last change count; under a threaded WSGI server another thread's
    # UPDATE on the shared connection could set it in between, so a lost compare-and-set
    # looked won and that request's change was silently lost.
    from coatcheck.sync import run_sync

    store = SQLiteStore(tmp_path / "threads.db")
    record = make_record(clock.now())
    run_sync(store.create(record))
    threads = 16
    for round_ in range(40):
        current = run_sync(store.get(record.id, clock.now()))
        assert current is not None
        gate = threading.Barrier(threads)
        won: list[int] = []

        def attempt(
            i: int, base: Any = current, gate: threading.Barrier = gate, won: list[int] = won
        ) -> None:
            gate.wait()
            if run_sync(store.update(base.with_data({"winner": i}))):
                won.append(i)

        workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(won) == 1, f"round {round_}: {len(won)} threads won one compare-and-set"
        final = run_sync(store.get(record.id, clock.now()))
        assert final is not None
        assert final.data == {"winner": won[0]}
    run_sync(store.close())


@pytest.mark.anyio
async def test_replay_table_is_swept_as_it_is_written(tmp_path: Path, clock: FrozenClock) -> None:
    # Without `coatcheck sessions prune`, one-time values must not pile up forever.
    store = SQLiteStore(tmp_path / "replay.db")
    try:
        for i in range(300):
            assert await store.remember_once(f"old-{i}", 1.0, clock.now())
        for i in range(256):
            assert await store.remember_once(f"new-{i}", 60.0, clock.now() + 10)
        db = sqlite3.connect(tmp_path / "replay.db")
        try:
            (left,) = db.execute("SELECT count(*) FROM coatcheck_replay").fetchone()
        finally:
            db.close()
        assert left <= 300
    finally:
        await store.close()


def _hammer(threads: int, work: Any) -> list[BaseException]:
    """Run ``work(i)`` in ``threads`` real threads released together; their exceptions."""
    gate = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        gate.wait()
        try:
            work(i)
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures


def _put(key: str, value: int, data: dict[str, Any]) -> None:
    data[key] = value


def test_sixteen_threads_on_two_connections_neither_raise_nor_lose_writes(
    tmp_path: Path, clock: FrozenClock
) -> None:
    # A threaded WSGI server (16 threads) in each of two processes (two stores, so two
    # connections on one WAL file): reads, compare-and-set writes, one-time values and
    # sweeps interleave. Each session-data write must land, and no call may fail with
    # SQLITE_BUSY / BUSY_SNAPSHOT ("database is locked") or a half-read statement.
    from coatcheck.sync import run_sync

    path = tmp_path / "wsgi.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    managers = [SessionManager(s, clock=clock, update_attempts=10_000) for s in stores]
    _, shared = run_sync(managers[0].create(new_user()))
    rounds = 30
    seen: list[bool] = []

    def work(i: int) -> None:
        manager = managers[i % 2]
        own_token, own = run_sync(manager.create(new_user()))
        for n in range(rounds):
            run_sync(manager.update_data(shared.id, partial(_put, f"{i}-{n}", n)))
            run_sync(manager.update_data(own.id, partial(_put, "n", n)))
            assert run_sync(manager.validate(own_token)) is not None
            seen.append(run_sync(stores[i % 2].remember_once(f"jti-{i}-{n}", 60, clock.now())))
            if n % 10 == 0:
                run_sync(manager.prune())

    failures = _hammer(16, work)
    assert failures == []
    final = run_sync(stores[1].get(shared.id, clock.now()))
    assert final is not None
    assert final.data == {f"{i}-{n}": n for i in range(16) for n in range(rounds)}
    assert seen == [True] * (16 * rounds)
    for store in stores:
        run_sync(store.close())


def test_threads_racing_the_first_use_open_one_connection(clock: FrozenClock) -> None:
    # The connection opens lazily. Sixteen threads arriving together must share one: in
    # memory each connection is its own database, so a second one loses the writes made
    # through the first (and on a file, all but one would be dropped mid-statement).
    from coatcheck.sync import run_sync

    for _ in range(5):
        store = SQLiteStore.from_url("sqlite://")
        records = [make_record(clock.now()) for _ in range(16)]

        def create(i: int, store: SQLiteStore = store, records: list[Any] = records) -> None:
            run_sync(store.create(records[i]))

        assert _hammer(16, create) == []
        found = [run_sync(store.get(r.id, clock.now())) for r in records]
        assert found == records
        run_sync(store.close())
