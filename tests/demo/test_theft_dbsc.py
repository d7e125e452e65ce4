"""The demo's DBSC theft section, driven by the protocol client from the draft."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from coatcheck.clock import FrozenClock
from coatcheck.demo import DemoConfig, create_app

from ..dbsc_client import DbscBrowser
from .conftest import ALICE, FAST_HASHER

_TOKEN = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


def _rows(html: str) -> dict[str, str]:
    cells = re.findall(r"<td>([^<]*)</td>", html)
    return dict(zip(cells[::2], cells[1::2], strict=True))


def _form(browser: DbscBrowser, path: str, page: str, **fields: str) -> httpx.Response:
    token = _TOKEN.search(page)
    assert token is not None
    response = browser.post(path, data={**fields, "csrf_token": token.group(1)})
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("mode", ["session", "hybrid"])
@pytest.mark.parametrize("dbsc", [True, False])
def test_theft_section(tmp_path: Path, mode: str, dbsc: bool) -> None:
    clock = FrozenClock()
    config = DemoConfig(mode=mode, store_url="memory://", users_path=str(tmp_path / "u.db"),
                        hasher=FAST_HASHER, https=True, clock=clock,
                        bound_ttl=timedelta(seconds=60))  # fmt: skip
    with TestClient(create_app(config), base_url="https://127.0.0.1") as http:
        assert http.post("/api/register", json=ALICE).status_code == 201
        browser = DbscBrowser(http, clock=clock.now, dbsc=dbsc)
        home = browser.get("/").text
        _form(browser, "/login", home, username=ALICE["username"], password=ALICE["password"],
              remember="on")  # fmt: skip
        assert (("register", 200) in browser.events) is dbsc
        clock.advance(6)  # past DbscPolicy.pending
        page = browser.get("/theft/dbsc").text
        assert ("Bound: this browser proved" in page) is dbsc
        assert ("Not bound" in page) is not dbsc
        stolen = _form(browser, "/theft/dbsc/steal", page)
        loot = stolen.url.params["loot"]
        rows = _rows(stolen.text)
        assert rows["every cookie sent here"].startswith("200: in as Alice")
        # Bound: dead at once, and the whole copy once the bound cookie runs out. Unbound
        # session mode: it lives on. Unbound hybrid: the copy sent to this page has no
        # refresh cookie (its path is /auth/refresh), so it dies with its access token.
        alive = not dbsc and mode == "session"
        assert rows["the long-lived cookie alone"].startswith("200" if alive else "401")
        clock.advance(400)  # past the bound cookie and hybrid's access token (+ leeways)
        later = _rows(_form(browser, "/theft/dbsc/replay", stolen.text, loot=loot).text)
        assert later["every cookie sent here"].startswith("200" if alive else "401")
        # The browser itself carries on (a DBSC refresh, or hybrid's refresh cookie).
        assert browser.get("/api/me").status_code == 200


def test_theft_section_for_guests_and_jwt_mode(make_client: object) -> None:
    client = make_client("jwt")  # type: ignore[operator]
    assert client.get("/theft/dbsc").status_code == 401
    client.post("/api/register", json=ALICE, csrf=False)
    client.post("/login", data={"username": ALICE["username"], "password": ALICE["password"]})
    page = client.get("/theft/dbsc").text
    assert "jwt mode keeps no server-side session" in page


@pytest.mark.parametrize("dbsc", [True, False])
def test_the_theft_page_has_a_dbsc_section(tmp_path: Path, dbsc: bool) -> None:
    clock = FrozenClock()
    config = DemoConfig(mode="session", store_url="memory://", users_path=str(tmp_path / "u.db"),
                        hasher=FAST_HASHER, https=True, clock=clock)  # fmt: skip
    with TestClient(create_app(config), base_url="https://127.0.0.1") as http:
        assert http.post("/api/register", json=ALICE).status_code == 201
        browser = DbscBrowser(http, clock=clock.now, dbsc=dbsc)
        _form(browser, "/login", browser.get("/").text, username=ALICE["username"],
              password=ALICE["password"], remember="on")  # fmt: skip
        clock.advance(6)  # past DbscPolicy.pending
        page = browser.get("/theft").text
        assert "Browser cookies: DBSC" in page
        shown = _form(browser, "/theft", page, section="dbsc").text
        rows = re.findall(r"<tr><td>(\w+)</td><td>thief</td><td>replays ([^<]*) from another "
                          r"machine.*?<td>(\d+)</td>", shown)  # fmt: skip
        assert [(binding, what) for binding, what, _ in rows] == [
            ("DBSC" if dbsc else "none", "every cookie this browser sent"),
            ("DBSC" if dbsc else "none", "the same without the bound cookie"),
        ]
        assert [status for *_, status in rows] == ["200", "401" if dbsc else "200"]
