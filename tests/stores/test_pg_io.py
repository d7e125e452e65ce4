"""The PostgreSQL I/O seam: placeholders, and asyncpg's free-list pool on the real server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from coatcheck.errors import StoreUnavailable
from coatcheck.stores._pg_io import AsyncpgIO, to_pyformat

pytestmark = pytest.mark.postgres


def test_placeholders_become_psycopg_s() -> None:
    assert to_pyformat("SELECT $1, $2 WHERE x = $3") == "SELECT %s, %s WHERE x = %s"
    with pytest.raises(ValueError, match="in order"):
        to_pyformat("SELECT $2, $1")
    with pytest.raises(ValueError, match="in order"):
        to_pyformat("SELECT $1, $1")


@pytest.mark.anyio
async def test_more_requests_than_connections_wait_their_turn(postgres_url: str) -> None:
    io = AsyncpgIO(postgres_url, max_size=2, timeout=5.0)
    rows = await asyncio.gather(
        *(io.execute("SELECT $1::int, pg_sleep(0.01)", (i,), "one") for i in range(20))
    )
    assert [row[0] for row in rows] == list(range(20))
    assert io._size <= 2
    await io.close()


@pytest.mark.anyio
async def test_no_free_connection_in_time_is_unavailable(postgres_url: str) -> None:
    io = AsyncpgIO(postgres_url, max_size=1, timeout=0.2, command_timeout=5.0)
    busy = asyncio.create_task(io.execute("SELECT pg_sleep(1)", (), "one"))
    await asyncio.sleep(0.1)
    with pytest.raises(StoreUnavailable, match="free"):
        await io.execute("SELECT 1", (), "one")
    await busy
    assert (await io.execute("SELECT 1", (), "one"))[0] == 1  # and it serves again
    await io.close()


@pytest.mark.anyio
async def test_a_broken_connection_is_replaced(postgres_url: str) -> None:
    io = AsyncpgIO(postgres_url, max_size=1)
    killer = AsyncpgIO(postgres_url)
    # Several times: the server ending a connection races with the next call, and each
    # way it lands (asyncpg saw the close, or fails mid-call, even with an internal
    # error of its own) must be a StoreUnavailable at most once, never another error.
    for _ in range(5):
        pid = (await io.execute("SELECT pg_backend_pid()", (), "one"))[0]
        await killer.execute("SELECT pg_terminate_backend($1)", (pid,), "one")
        with contextlib.suppress(StoreUnavailable):
            await io.execute("SELECT 1", (), "one")
        assert (await io.execute("SELECT pg_backend_pid()", (), "one"))[0] != pid
        assert io._size == 1
    await io.close()
    await killer.close()
