"""End to end: the demo as a real server process, driven by httpx with a cookie jar.

Each mode gets one server (started with ``python -m coatcheck demo``), restarted in
the middle of the flows to show that logins survive a restart.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from .._net import free_port
from ._csrf import CsrfClient

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
_START_TIMEOUT = 20.0


class DemoServer:
    """One ``coatcheck demo`` process on a loopback port, restartable; ``args`` are extra
    command-line options (``--dpop-nonce`` ...)."""

    def __init__(
        self, mode: str, folder: Path, args: tuple[str, ...] = (), store: str | None = None
    ) -> None:
        self.mode = mode
        self.args = args
        self.folder = folder
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store or f"sqlite:///{folder / 'x.db'}"
        self.process: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None
        self.banner = ""

    def start(self) -> None:
        command = [
            sys.executable, "-m", "coatcheck", "demo",
            "--port", str(self.port), "--store", self.store, "--mode", self.mode, *self.args,
        ]  # fmt: skip
        self.log = (self.folder / "server.log").open("a")
        self.process = subprocess.Popen(
            command, cwd=self.folder, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo exited: {(self.folder / 'server.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the demo did not start listening in time")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.log is not None:
            self.log.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(
    scope="module",
    params=["session", "jwt", "session-redis-cluster", "session-redis-sentinel"],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    mode, _, where = request.param.partition("-")
    store = None
    if where:
        # The same flows on the real Redis Cluster and Sentinel group (.ci/services).
        url = request.getfixturevalue(where.replace("-", "_") + "_url")
        store = f"{url}?prefix=cce{secrets.token_hex(3)}:"
    demo = DemoServer(mode, tmp_path_factory.mktemp(f"demo-{request.param}"), store=store)
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def _client(server: DemoServer) -> httpx.Client:
    # Sends the page's CSRF token on unsafe requests, as a browser on the page would.
    return CsrfClient(base_url=server.url, timeout=10.0, follow_redirects=False)


def test_banner_names_the_url(server: DemoServer) -> None:
    assert f"http://127.0.0.1:{server.port}/" in server.banner
    assert server.mode in server.banner


def test_browser_flow_survives_a_restart(server: DemoServer) -> None:
    with _client(server) as browser:
        assert "Hello, guest" in browser.get("/").text
        registered = browser.post(
            "/register", data={"username": "alice", "password": PASSWORD, "name": "Alice Example"}
        )
        assert registered.status_code == 303
        login = browser.post(
            "/login", data={"username": "alice", "password": PASSWORD, "remember": "on"}
        )
        assert login.status_code == 303
        assert login.headers["location"] == "/"
        assert "Max-Age=" in login.headers["set-cookie"]
        assert "Hello, Alice Example" in browser.get("/").text

        server.restart()
        assert "Hello, Alice Example" in browser.get("/").text
        assert browser.get("/api/me").json()["via"] == "cookie"

        logout = browser.post("/logout")
        assert logout.status_code == 303
        assert "Hello, guest" in browser.get("/").text
        assert browser.get("/api/me").status_code == 401


def test_remember_me_off_gives_a_browser_session_cookie(server: DemoServer) -> None:
    with _client(server) as browser:
        browser.post(
            "/register", data={"username": "carol", "password": PASSWORD, "name": "Carol"}
        )
        login = browser.post("/login", data={"username": "carol", "password": PASSWORD})
        assert login.status_code == 303
        set_cookie = login.headers["set-cookie"]
        assert "Max-Age" not in set_cookie
        assert "Expires" not in set_cookie
        assert "HttpOnly" in set_cookie
        assert "Hello, Carol" in browser.get("/").text


def test_bearer_flow_survives_a_restart(server: DemoServer) -> None:
    with _client(server) as app:
        created = app.post(
            "/api/register",
            json={"username": "bob", "password": PASSWORD, "name": "Alice Example"},
        )
        assert created.status_code == 201
        assert app.post(
            "/api/login", json={"username": "bob", "password": "wrong password"}
        ).json()["error"] == "invalid_credentials"
        login = app.post("/api/login", json={"username": "bob", "password": PASSWORD}).json()
        assert login["token_type"] == "Bearer"
        assert not app.cookies
        bearer = {"Authorization": f"Bearer {login['token']}"}
        assert app.get("/api/me", headers=bearer).json()["name"] == "Alice Example"

        server.restart()
        me = app.get("/api/me", headers=bearer).json()
        assert (me["username"], me["via"], me["mode"]) == ("bob", "bearer", server.mode)

        assert app.post("/api/logout", headers=bearer).status_code == 200
        after = app.get("/api/me", headers=bearer)
        if server.mode == "session":
            # Session mode: the token stops working at once.
            assert after.status_code == 401
            assert after.json()["error"] == "invalid_credentials"
        else:
            # jwt mode: stateless, the token stays valid until exp (the demo says so).
            assert after.status_code == 200


def test_jwks_in_jwt_mode_only(server: DemoServer) -> None:
    with _client(server) as app:
        response = app.get("/.well-known/jwks.json")
        if server.mode == "jwt":
            [key] = response.json()["keys"]
            assert key["alg"] == "ES256"
            assert "d" not in key
        else:
            assert response.status_code == 404
