"""/healthz tells the truth (issue 12 item 8), against real Redis servers that stop.

Before: ``200 {"ok": true}`` while Redis was down (and every authenticated request
got 503) and while the revocation feed was down. Now it says which parts are up:
503 when the store cannot be reached, so a load balancer takes the instance out;
200 ``"degraded"`` when only the feed is down (every instance shares it, and
meanwhile each access token is checked in the store: slower, never wrong).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from ..stores.test_faults import _Redis
from .conftest import ALICE, MakeClient

pytestmark = pytest.mark.slow


def _eventually(check: Callable[[], bool], bound: float = 15.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached within {bound} s")


def _health(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


@pytest.fixture
def servers() -> Iterator[tuple[_Redis, _Redis]]:
    store, feed = _Redis(), _Redis()
    store.start()
    feed.start()
    try:
        yield store, feed
    finally:
        store.stop()
        feed.stop()


def test_store_down_is_503_and_feed_down_is_degraded(
    make_client: MakeClient, servers: tuple[_Redis, _Redis]
) -> None:
    store, feed = servers
    client = make_client(
        "hybrid",
        store=f"redis://127.0.0.1:{store.port}/0",
        feed_url=f"redis://127.0.0.1:{feed.port}/0",
    )
    _eventually(lambda: _health(client)[1]["feed"] == "up")
    assert _health(client) == (200, {"ok": True, "status": "ok", "store": "up", "feed": "up"})
    assert client.post("/api/register", json=ALICE).status_code == 201

    feed.stop()  # only the feed: the instance still answers every request right
    _eventually(lambda: _health(client)[1]["feed"] == "down")
    assert _health(client) == (
        200, {"ok": True, "status": "degraded", "store": "up", "feed": "down"})  # fmt: skip

    store.stop()  # the store too: take this instance out
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"ok": False, "status": "down", "store": "down", "feed": "down"}
    login = client.post("/api/login", json={"username": "alice", "password": ALICE["password"]})
    assert login.status_code == 503  # what the health check now says

    store.start()
    feed.start()
    _eventually(lambda: _health(client) == (
        200, {"ok": True, "status": "ok", "store": "up", "feed": "up"}))  # fmt: skip


def test_without_a_feed_it_says_none(
    make_client: MakeClient, servers: tuple[_Redis, _Redis]
) -> None:
    store, _ = servers
    client = make_client("session", store=f"redis://127.0.0.1:{store.port}/0")
    assert _health(client) == (200, {"ok": True, "status": "ok", "store": "up", "feed": "none"})
    store.stop()
    assert _health(client)[0] == 503
