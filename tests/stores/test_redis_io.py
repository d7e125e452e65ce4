"""The Redis I/O seam against the real cluster: routing, redirects, errors, scripts."""

from __future__ import annotations

import secrets

import pytest
from redis.crc import key_slot

from coatcheck.errors import StoreError
from coatcheck.stores._redis_io import ClusterIO, Script, _slot, open_io

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


def _io(url: str) -> ClusterIO:
    io, _, _ = open_io(url, sync=False, prefix=None, connect_timeout=1.0, timeout=2.0)
    assert isinstance(io, ClusterIO)
    return io


def test_the_slot_is_the_cluster_s() -> None:
    for key in (b"plain", b"a{tag}b", b"{}x", b"{x", b"cc:{1a2b}s" + bytes(16)):
        assert _slot(key) == key_slot(key)


async def test_a_stale_slot_table_is_corrected_by_moved(redis_cluster_url: str) -> None:
    io = _io(redis_cluster_url)
    key = f"cct-io:{secrets.token_hex(4)}".encode()
    await io.call(b"SET", key, b"v", b"PX", 60_000)
    # Point every slot at one master, as a table read before a resharding would.
    right = io._slots[_slot(key)]
    wrong = next(link for link in set(io._slots) if link is not right)
    io._slots = [wrong] * len(io._slots)
    assert await io.get(key) == b"v"  # MOVED, followed
    assert io._slots[_slot(key)] is right
    assert await io.call(b"DEL", key) == 1
    await io.close()


async def test_scripts_load_themselves_and_refusals_are_store_errors(
    redis_cluster_url: str,
) -> None:
    io = _io(redis_cluster_url)
    script = Script(f"return ARGV[1] .. '{secrets.token_hex(8)}'")  # never loaded before
    assert (await io.eval(script, [b"k"], [b"x"])).startswith(b"x")
    assert (await io.eval(script, [b"k"], [b"y"])).startswith(b"y")
    with pytest.raises(StoreError):
        await io.eval(Script("return redis.call('NOSUCHCOMMAND')"), [b"k"], [])
    # Keys of two slots in one script: Redis refuses, and so does the store.
    with pytest.raises(StoreError):
        await io.eval(Script("return 1"), [b"{a}x", b"{b}x"], [])
    await io.close()


async def test_ping_needs_every_master(redis_cluster_url: str) -> None:
    io = _io(redis_cluster_url)
    assert await io.ping() is True
    await io.close()
    dead = _io("redis+cluster://127.0.0.1:1/")
    assert await dead.ping() is False
    await dead.close()
