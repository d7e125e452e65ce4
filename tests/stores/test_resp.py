"""coatcheck.stores._resp: the lean pipelined GET, against the real Redis (db 15)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from coatcheck.errors import StoreError, StoreUnavailable
from coatcheck.stores._resp import FastGet, pack_command
from coatcheck.stores.redis import RedisStore

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

PREFIX = f"cct:resp:{secrets.token_hex(4)}:".encode()


def _fast(redis_url: str, **kwargs: float) -> FastGet:
    parts = urlsplit(redis_url)
    return FastGet(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        db=int(parts.path.lstrip("/") or 0),
        connect_timeout=kwargs.get("connect_timeout", 1.0),
        timeout=kwargs.get("timeout", 2.0),
    )


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    async for key in client.scan_iter(match=PREFIX + b"*"):
        await client.delete(key)
    await client.aclose()


def test_pack_command() -> None:
    assert pack_command(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert pack_command(b"SELECT", b"15") == b"*2\r\n$6\r\nSELECT\r\n$2\r\n15\r\n"


async def test_get_reads_values_in_the_selected_database(
    redis_url: str, raw: aioredis.Redis
) -> None:
    fast = _fast(redis_url)
    await raw.set(PREFIX + b"a", b"\x00binary\r\nvalue")
    assert await fast.get(PREFIX + b"a") == b"\x00binary\r\nvalue"
    assert await fast.get(PREFIX + b"missing") is None
    fast.close()


async def test_concurrent_gets_share_one_connection_in_order(
    redis_url: str, raw: aioredis.Redis
) -> None:
    fast = _fast(redis_url)
    keys = [PREFIX + b"k%d" % i for i in range(200)]
    for i, key in enumerate(keys):
        await raw.set(key, b"v%d" % i)
    values = await asyncio.gather(*(fast.get(key) for key in keys))
    assert values == [b"v%d" % i for i in range(200)]
    fast.close()


async def test_a_cancelled_request_does_not_shift_the_replies(
    redis_url: str, raw: aioredis.Redis
) -> None:
    fast = _fast(redis_url)
    await raw.set(PREFIX + b"x", b"x")
    await raw.set(PREFIX + b"y", b"y")
    assert await fast.get(PREFIX + b"x") == b"x"  # connected
    first = asyncio.ensure_future(fast.get(PREFIX + b"x"))
    await asyncio.sleep(0)  # written, reply not read yet
    first.cancel()
    assert await fast.get(PREFIX + b"y") == b"y"
    fast.close()


async def test_error_replies_are_store_errors(redis_url: str, raw: aioredis.Redis) -> None:
    fast = _fast(redis_url)
    await raw.hset(PREFIX + b"h", b"f", b"v")
    with pytest.raises(StoreError) as caught:
        await fast.get(PREFIX + b"h")  # WRONGTYPE
    assert not isinstance(caught.value, StoreUnavailable)
    await raw.set(PREFIX + b"s", b"ok")
    assert await fast.get(PREFIX + b"s") == b"ok"  # the connection is still in step
    fast.close()


async def test_a_dropped_connection_is_retried_once(redis_url: str, raw: aioredis.Redis) -> None:
    fast = _fast(redis_url)
    await raw.set(PREFIX + b"z", b"z")
    assert await fast.get(PREFIX + b"z") == b"z"
    # Kill our connection (and only it) from the server side, as a restart would.
    protocol = fast._protocols[asyncio.get_running_loop()]
    assert protocol is not None
    assert protocol._transport is not None
    host, port = protocol._transport.get_extra_info("sockname")[:2]
    assert await raw.client_kill_filter(addr=f"{host}:{port}") == 1
    assert await fast.get(PREFIX + b"z") == b"z"
    fast.close()


async def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fast = FastGet("127.0.0.1", port, connect_timeout=1.0, timeout=1.0)
    with pytest.raises(StoreUnavailable):
        await fast.get(b"k")
    fast.close()


async def test_a_silent_server_times_out_then_the_store_reconnects() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fast = FastGet("127.0.0.1", port, connect_timeout=1.0, timeout=0.05)
    results = await asyncio.gather(fast.get(b"a"), fast.get(b"b"), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    with pytest.raises(StoreUnavailable):
        await fast.get(b"c")
    assert len(accepted) == 2  # the timed-out connection was dropped, a new one made
    fast.close()
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


def test_a_store_survives_a_new_event_loop(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, prefix=PREFIX.decode())
    assert _lean(store)

    async def read() -> None:
        assert await store.get("0" * 8 + "." + "0" * 64, 0.0) is None

    asyncio.run(read())
    asyncio.run(read())  # the first loop's connection is gone; a new one is made
    asyncio.run(store.close())


def _lean(store: RedisStore) -> bool:
    """Whether the store's per-request read is the lean GET."""
    return getattr(store._get, "__self__", None).__class__ is FastGet


def test_only_plain_tcp_clients_take_the_lean_path(redis_url: str) -> None:
    assert _lean(RedisStore.from_url(redis_url))
    assert _lean(RedisStore(aioredis.Redis.from_url(redis_url)))
    tls = aioredis.Redis.from_url("rediss://127.0.0.1:6379/0")
    assert not _lean(RedisStore(tls))
    unix = aioredis.Redis.from_url("unix:///tmp/none.sock")
    assert not _lean(RedisStore(unix))
    keepalive = aioredis.Redis.from_url(redis_url, socket_keepalive=True)
    assert not _lean(RedisStore(keepalive))


def test_each_event_loop_gets_its_own_connection(redis_url: str) -> None:
    # Two loops in two threads must not close or share each other's transport.
    import threading

    parts = urlsplit(redis_url)
    fast = FastGet(parts.hostname or "127.0.0.1", parts.port or 6379,
                   db=int(parts.path.lstrip("/") or 0), timeout=2.0)
    results: list[object] = []

    def run() -> None:
        async def work() -> None:
            for _ in range(50):
                results.append(await fast.get(b"coatcheck-test-missing-key"))

        asyncio.run(work())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fast.close()
    assert results == [None] * 100
