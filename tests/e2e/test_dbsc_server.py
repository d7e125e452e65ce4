"""DBSC against ``coatcheck demo`` as a real server (uvicorn, plain HTTP on loopback):
the protocol client registers and refreshes over the wire, and 200 hostile requests at
once get no 5xx."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from ..dbsc_client import DbscBrowser, DeviceKey
from .test_demo_server import DemoServer

pytestmark = pytest.mark.slow

_TOKEN = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module", params=["session", "hybrid"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    demo = DemoServer(request.param, tmp_path_factory.mktemp(f"dbsc-{request.param}"),
                      args=("--bound-ttl", "60"))  # fmt: skip
    demo.start()
    try:
        with httpx.Client(base_url=demo.url) as http:
            created = http.post("/api/register", json={
                "username": "alice", "password": PASSWORD, "name": "Alice"})  # fmt: skip
            assert created.status_code == 201, created.text
        yield demo
    finally:
        demo.stop()


def _logged_in(http: httpx.Client) -> DbscBrowser:
    browser = DbscBrowser(http)
    token = _TOKEN.search(browser.get("/").text)
    assert token is not None
    form = {"username": "alice", "password": PASSWORD, "remember": "on",
            "csrf_token": token.group(1)}  # fmt: skip
    response = browser.post("/login", data=form)
    assert response.status_code == 200
    return browser


def test_register_and_refresh_over_http(server: DemoServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        browser = _logged_in(http)
        assert browser.events == [("register", 200)]
        (session,) = browser.sessions.values()
        assert browser.get("/api/me").json()["name"] == "Alice"
        # The bound cookie runs out (dropped from the jar, as its Max-Age would): the
        # next request is held back for a refresh signed with the device key.
        for name in session.credentials:
            browser.jar.cookies.pop(name)
        assert browser.get("/api/me").json()["name"] == "Alice"
        assert browser.events[-1] == ("refresh", 200)
        # Logout ends the device session too.
        page = browser.get("/").text
        token = _TOKEN.search(page)
        assert token is not None
        browser.post("/logout", data={"csrf_token": token.group(1)})
        for name in session.credentials:
            browser.jar.cookies.pop(name, None)
        assert browser.get("/api/me").status_code == 401
        assert browser.sessions == {}


def test_hostile_burst_gets_no_5xx(server: DemoServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        browser = _logged_in(http)
        (session,) = browser.sessions.values()
        cookies = browser.cookie_header()
    signed = session.key.proof("not-a-challenge", with_jwk=False)
    forged = DeviceKey("ES256").proof(session.challenge or "x", with_jwk=False)
    register = DeviceKey("RS256").proof("x", with_jwk=True)
    paths = ("/auth/dbsc/register", "/auth/dbsc/refresh", "/auth/refresh/dbsc")
    cases = [
        {},
        {"secure-session-response": "x" * 7000},
        {"secure-session-response": register, "cookie": cookies},
        {"sec-secure-session-id": session.id, "secure-session-response": signed,
         "cookie": cookies},
        {"sec-secure-session-id": session.id, "secure-session-response": forged,
         "cookie": cookies},
        {"sec-secure-session-id": '"' + "\\" * 50, "cookie": cookies},
        {"sec-secure-session-id": "nobody", "cookie": "junk=" + "A" * 3000},
    ]  # fmt: skip

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            requests = [client.post(paths[i % 3], headers=cases[i % len(cases)])
                        for i in range(200)]  # fmt: skip
            return [r.status_code for r in await asyncio.gather(*requests)]

    statuses = asyncio.run(burst())
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    # No hostile registration binds anything (every third request went there).
    assert 200 not in statuses[::3]
