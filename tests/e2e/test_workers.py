"""The demo under ``coatcheck demo --workers 2``: what one worker learns, every worker knows.

Requests go out on fresh connections, so the kernel hands them to either worker; each
answer says which worker served it (``X-Coatcheck-Worker``), and every check is made
until both workers have answered it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .._net import free_port

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
#: The feed's bound with a healthy feed is about a second; allow for a slow CI box.
FEED_BOUND = 3.0


class WorkersDemo:
    """``coatcheck demo --workers 2`` on a loopback port."""

    def __init__(self, folder: Path, mode: str, store: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "coatcheck", "demo", "--workers", "2", "--mode", mode,
            "--alg", "HS256", "--port", str(self.port), "--store", store,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.workers: set[int] = set()

    def start(self) -> None:
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 30
        while len(self.workers) < 2:
            if self.process.poll() is not None:
                raise RuntimeError("the demo exited: " + (self.folder / "server.log").read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("two workers did not both answer in time")
            try:
                answer = httpx.get(self.url + "/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            feed = answer.json().get("revocation_feed", "off")
            if answer.status_code == 200 and feed in ("up", "off", None):
                self.workers.add(int(answer.headers["x-coatcheck-worker"]))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        # uvicorn's supervisor stops its workers: none may be left behind.
        for pid in self.workers:
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(pid), f"worker {pid} outlived the demo"

    def on_every_worker(self, request: Callable[[str], httpx.Response]) -> dict[int, int]:
        """``request`` until each worker answered; ``{worker pid: last status}``."""
        seen: dict[int, int] = {}
        for _ in range(400):
            answer = request(self.url)
            seen[int(answer.headers["x-coatcheck-worker"])] = answer.status_code
            if set(seen) == self.workers:
                return seen
        raise AssertionError(f"only workers {sorted(seen)} of {sorted(self.workers)} answered")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _login(demo: WorkersDemo, username: str) -> dict[str, str]:
    httpx.post(
        demo.url + "/api/register",
        json={"username": username, "password": PASSWORD, "name": username.title()},
    )
    answer = httpx.post(demo.url + "/api/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


def _me(token: str) -> Callable[[str], httpx.Response]:
    def request(url: str) -> httpx.Response:
        # A fresh connection per request: either worker may take it.
        return httpx.get(url + "/api/me", headers={"authorization": f"Bearer {token}"}, timeout=5)

    return request


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[Callable[[str, str], WorkersDemo]]:
    started: list[WorkersDemo] = []

    def make(mode: str, store: str) -> WorkersDemo:
        demo = WorkersDemo(tmp_path, mode, store)
        started.append(demo)
        demo.start()
        return demo

    yield make
    for demo in started:
        demo.stop()


def test_session_mode_on_sqlite_shares_sessions_limits_and_logouts(
    demo_factory: Callable[[str, str], WorkersDemo], tmp_path: Path
) -> None:
    # One SQLite file (WAL), one connection per worker process.
    demo = demo_factory("session", f"sqlite:///{tmp_path / 'sessions.db'}")
    login = _login(demo, "alice")
    assert set(demo.on_every_worker(_me(login["token"])).values()) == {200}
    # Failed logins counted by either worker lock the account on both.
    _login(demo, "bob")
    for _ in range(5):
        httpx.post(demo.url + "/api/login", json={"username": "bob", "password": "wrong!"})

    def bob(url: str) -> httpx.Response:
        return httpx.post(url + "/api/login", json={"username": "bob", "password": PASSWORD})

    assert set(demo.on_every_worker(bob).values()) == {429}
    logout = httpx.post(
        demo.url + "/api/logout", headers={"authorization": f"Bearer {login['token']}"}
    )
    assert logout.status_code == 200
    # Session mode asks the store on every request: refused everywhere at once.
    assert set(demo.on_every_worker(_me(login["token"])).values()) == {401}


@pytest.mark.redis
@pytest.mark.parametrize("where", ["redis", "redis_cluster"])
def test_hybrid_revocation_reaches_every_worker_within_the_feed_bound(
    demo_factory: Callable[[str, str], WorkersDemo],
    request: pytest.FixtureRequest,
    where: str,
) -> None:
    url = request.getfixturevalue(where + "_url")
    demo = demo_factory("hybrid", f"{url}?prefix=ccw{secrets.token_hex(3)}:")
    login = _login(demo, "carol")
    assert set(demo.on_every_worker(_me(login["token"])).values()) == {200}
    logout = httpx.post(
        demo.url + "/api/logout", headers={"authorization": f"Bearer {login['token']}"}
    )
    assert logout.status_code == 200
    # The access token is a JWT with minutes left, checked without the store: only the
    # revocation feed can stop it, in the worker that did not serve the logout too.
    start = time.monotonic()
    while True:
        statuses = demo.on_every_worker(_me(login["token"]))
        if set(statuses.values()) == {401}:
            break
        assert time.monotonic() - start < FEED_BOUND, f"still accepted by {statuses}"
        time.sleep(0.02)
    print(f"{where}: every worker refused the revoked token after "
          f"{(time.monotonic() - start) * 1000:.0f} ms")  # fmt: skip
