"""Revocation within the bound, across two real app processes sharing Redis.

Two ``coatcheck demo --mode hybrid`` servers use the same Redis store and users
file. A token issued by one is accepted by the other with no store round trip;
revoking through one makes the other refuse it within about a second (the feed),
not one access-token lifetime. Then the fallback: the second server's feed
connection goes through a TCP relay the test cuts, and while it is cut that server
still refuses a token revoked meanwhile (it checks the store for every request),
until the feed is back and has replayed what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from .._net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PASSWORD = "correct horse battery"
#: The bound we claim with a healthy feed is "about a second"; allow for a slow CI box.
FEED_BOUND = 3.0


class Relay:
    """A TCP relay to Redis that the test can cut (closing every connection) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class HybridServer:
    """One ``coatcheck demo --mode hybrid`` process."""

    def __init__(self, folder: Path, store: str, feed: str | None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "coatcheck", "demo", "--mode", "hybrid", "--alg", "HS256",
            "--port", str(self.port), "--store", store,
        ] + (["--feed", feed] if feed else [])  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=log
        )
        log.close()
        _until(lambda: self._listening(), 20.0, "the demo did not start")

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("the demo exited: " + self._log())
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _log(self) -> str:
        return "".join(p.read_text() for p in self.folder.glob("server-*.log"))

    def feed_state(self) -> str:
        state: str = httpx.get(self.url + "/healthz", timeout=2).json()["feed"]
        return state

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def _until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until true (bounded); return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what} (within {timeout} s)")


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[HybridServer, HybridServer, Relay]]:
    folder = tmp_path_factory.mktemp("hybrid-feed")
    prefix = f"cche2e{secrets.token_hex(3)}:"
    store = f"{redis_url}?prefix={prefix}"
    host, _, rest = redis_url.removeprefix("redis://").partition(":")
    port, _, db = rest.partition("/")
    relay = Relay((host, int(port)))
    relay.start()
    a = HybridServer(folder, store, None)
    b = HybridServer(folder, store, f"redis://127.0.0.1:{relay.port}/{db}")
    a.start()
    b.start()
    try:
        yield a, b, relay
    finally:
        a.stop()
        b.stop()
        relay.cut()
        asyncio.run(_clean(redis_url, prefix))


async def _clean(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


def _login(server: HybridServer, username: str) -> dict[str, str]:
    httpx.post(
        server.url + "/api/register",
        json={"username": username, "password": PASSWORD, "name": username.title()},
    )
    answer = httpx.post(
        server.url + "/api/login", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


def _me(server: HybridServer, token: str) -> int:
    return httpx.get(
        server.url + "/api/me", headers={"authorization": f"Bearer {token}"}, timeout=5
    ).status_code


def test_revocation_reaches_the_other_process_within_the_bound(
    servers: tuple[HybridServer, HybridServer, Relay],
) -> None:
    a, b, _ = servers
    _until(lambda: b.feed_state() == "up", 10.0, "b's feed did not come up")
    login = _login(a, "alice")
    assert {"token", "refresh_token", "expires_in"} <= login.keys()
    assert _me(b, login["token"]) == 200
    # Log out everywhere through A (one device here): B must refuse within the bound,
    # although the access token itself has minutes left and B never asks the store.
    logout = httpx.post(
        a.url + "/api/logout", headers={"authorization": f"Bearer {login['token']}"}
    )
    assert logout.status_code == 200
    took = _until(lambda: _me(b, login["token"]) == 401, FEED_BOUND, "B still accepts it")
    print(f"revocation seen by the other process after {took * 1000:.0f} ms")


def test_native_refresh_across_processes(servers: tuple[HybridServer, HybridServer, Relay]) -> None:
    a, b, _ = servers
    login = _login(a, "bob")
    pair = httpx.post(b.url + "/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert pair.status_code == 200
    fresh = pair.json()
    assert fresh["refresh_token"] != login["refresh_token"]
    assert _me(a, fresh["token"]) == 200
    # The same old token again, within the grace window: the very same pair.
    again = httpx.post(a.url + "/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert again.json()["refresh_token"] == fresh["refresh_token"]


def test_fallback_to_the_store_while_the_feed_is_down(
    servers: tuple[HybridServer, HybridServer, Relay],
) -> None:
    a, b, relay = servers
    _until(lambda: b.feed_state() == "up", 10.0, "b's feed did not come up")
    doomed, kept = _login(a, "carol"), _login(a, "dave")
    assert _me(b, doomed["token"]) == 200
    relay.cut()  # B's feed connection dies; B cannot hear revocations now
    _until(lambda: b.feed_state() == "down", 10.0, "b did not notice its feed is down")
    httpx.post(a.url + "/api/logout", headers={"authorization": f"Bearer {doomed['token']}"})
    # Fail safe: B checks the store for every access token while its feed is down.
    assert _me(b, doomed["token"]) == 401
    assert _me(b, kept["token"]) == 200
    assert b.feed_state() == "down"
    relay.start()
    _until(lambda: b.feed_state() == "up", 15.0, "b's feed did not come back")
    # Back on the in-memory set: the revocation it missed was replayed from the backlog.
    assert _me(b, doomed["token"]) == 401
    assert _me(b, kept["token"]) == 200
