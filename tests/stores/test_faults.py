"""Faults, for real: each test starts its own Redis / PostgreSQL on a free port, stops it,
checks that the store fails closed with StoreUnavailable, restarts it on the same port
and checks that the store recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import StoreUnavailable
from coatcheck.sessions.manager import SessionManager
from coatcheck.sessions.store import SessionStore
from coatcheck.stores.postgres import PostgresStore
from coatcheck.stores.redis import RedisStore

from .._net import free_port
from .contract import make_record, new_user

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FAIL_BOUND = 15.0  # seconds: generous, only to catch a hang (the pools time out in ~2 s)
RECOVER_BOUND = 30.0


def _wait_port(port: int, up: bool, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come {'up' if up else 'down'}")


class _Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        _wait_port(self.port, up=False)


class _Postgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not candidates:
            pytest.fail("PostgreSQL server binaries are not installed")
        self.bin = Path(candidates[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="cc-pg-"))
        self.as_user: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.dir / "data"),
             "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self.as_user,
        )

    def start(self, *settings: str) -> None:
        """Start the server; ``settings`` are extra ``name=value`` server settings."""
        extra = [arg for setting in settings for arg in ("-c", setting)]
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.dir / "data"),
             "-p", str(self.port), "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off", "-c", "max_connections=20", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self.as_user,
        )
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: it drops connected clients.
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
        _wait_port(self.port, up=False)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[_Redis]:
    server = _Redis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_server() -> Iterator[_Postgres]:
    server = _Postgres()
    server.start()
    yield server
    with contextlib.suppress(Exception):
        server.stop()
    server.remove()


async def _fails_closed(call: Callable[[], Awaitable[Any]]) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await call()
    assert caught.value.code == "store_unavailable"
    assert caught.value.__cause__ is not None
    assert time.monotonic() - started < FAIL_BOUND


async def _recovers(call: Callable[[], Awaitable[Any]]) -> int:
    """Poll ``call`` until it works; return how many attempts failed on the way."""
    deadline = time.monotonic() + RECOVER_BOUND
    failures = 0
    while True:
        try:
            await call()
            return failures
        except StoreUnavailable:
            failures += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _outage(store: SessionStore, stop: Callable[[], None], start: Callable[[], None],
                  clock: FrozenClock) -> None:
    manager = SessionManager(store, clock=clock)
    user = new_user()
    token, record = await manager.create(user, data={"before": True})
    assert await manager.validate(token) == record

    stop()
    probe = make_record(clock.now(), user)
    # Every kind of call fails closed: a visitor is never treated as logged in.
    await _fails_closed(lambda: manager.validate(token))
    await _fails_closed(lambda: store.get(record.id, clock.now()))
    await _fails_closed(lambda: store.create(probe))
    await _fails_closed(lambda: store.list_user(user, clock.now()))
    await _fails_closed(lambda: store.delete_expired(clock.now()))

    start()
    await _recovers(lambda: store.get(record.id, clock.now()))
    # Recovered for real: writes and reads go through again.
    token2, record2 = await manager.create(user, data={"after": True})
    assert await manager.validate(token2) == record2
    assert record2 in await store.list_user(user, clock.now())


async def test_redis_outage_fails_closed_and_recovers(
    redis_server: _Redis, clock: FrozenClock
) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{redis_server.port}/0")
    try:
        await _outage(store, redis_server.stop, redis_server.start, clock)
    finally:
        await store.close()


async def test_postgres_outage_fails_closed_and_recovers(
    postgres_server: _Postgres, clock: FrozenClock
) -> None:
    store = PostgresStore.from_url(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres")
    try:
        await _outage(store, postgres_server.stop, postgres_server.start, clock)
    finally:
        await store.close()


async def test_postgres_down_at_start_up_then_up(clock: FrozenClock) -> None:
    server = _Postgres()
    try:
        store = PostgresStore.from_url(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
        record = make_record(clock.now())
        await _fails_closed(lambda: store.create(record))  # the pool cannot open yet
        server.start()
        await _recovers(lambda: store.create(record))  # opens and migrates on first use
        assert await store.get(record.id, clock.now()) == record
        await store.close()
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        server.remove()
