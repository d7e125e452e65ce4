"""Forwarded headers are trusted only from the proxies the operator names (issue 12 item 10).

Before: ``coatcheck demo`` ran uvicorn with its defaults, which trust
``X-Forwarded-For`` from any loopback peer, so any local client chose the IP the
per-IP login limiter counts (and the IP a session records). Now the demo trusts the
header only with ``--forwarded-allow-ips``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .._net import free_port
from .test_hybrid_feed import _until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
SPOOFED = "203.0.113.7"


class Demo:
    def __init__(self, folder: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "coatcheck", "demo", "--port", str(self.port),
                   "--store", f"sqlite:///{folder / 'x.db'}", *extra]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        _until(self._up, 20.0, "the demo did not start")

    def _up(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def recorded_ip(self, username: str, forwarded: str) -> str:
        """The IP the demo records for a login sending ``forwarded``: the one the login
        limiter counts too (both read ``coatcheck.demo.context.client_ip``)."""
        header = {"x-forwarded-for": forwarded}
        httpx.post(self.url + "/api/register", headers=header,
                   json={"username": username, "password": PASSWORD, "name": "X"})  # fmt: skip
        login = {"username": username, "password": PASSWORD}
        token = httpx.post(self.url + "/api/login", headers=header, json=login).json()["token"]
        sessions = httpx.get(
            self.url + "/api/sessions", headers={"authorization": f"Bearer {token}"}
        ).json()["sessions"]
        ip: str = sessions[0]["ip"]
        return ip


@pytest.fixture
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Demo]:
    server = Demo(tmp_path, *request.param)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("demo", [()], indirect=True)
def test_by_default_a_local_client_cannot_choose_its_ip(demo: Demo) -> None:
    assert "X-Forwarded-For ignored" in demo.banner
    assert demo.recorded_ip("alice", SPOOFED) == "127.0.0.1"


@pytest.mark.parametrize("demo", [("--forwarded-allow-ips", "127.0.0.1,::1")], indirect=True)
def test_a_named_proxy_is_trusted(demo: Demo) -> None:
    assert "X-Forwarded-For trusted from 127.0.0.1, ::1" in demo.banner
    assert demo.recorded_ip("alice", SPOOFED) == SPOOFED


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "1.2.3"])
def test_a_bad_proxy_list_is_usage(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coatcheck", "demo", "--forwarded-allow-ips", value],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not an IP address or network" in done.stderr
