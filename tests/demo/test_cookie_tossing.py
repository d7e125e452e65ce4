"""Cookie tossing against the demo served over HTTPS (issue 12, item 1).

A sibling subdomain (``evil.example.com`` beside ``app.example.com``) can set a
``__Secure-`` or unprefixed cookie for the parent domain, but never a ``__Host-`` one;
the browser then sends both copies of a name. These tests send exactly the headers such
a browser sends, to the real demo app (``create_app``), and check that no copy of an
ambiguous name is trusted and that a tossed refresh cookie cannot log a victim in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from coatcheck.clock import FrozenClock
from coatcheck.demo import DemoConfig, create_app

from .conftest import FAST_HASHER, Browser, MakeClient

HOST_ACCESS = "__Host-coatcheck_access"
OLD_ACCESS = "__Secure-coatcheck_access"  # the hybrid access cookie's name before issue 12
REFRESH = "__Secure-coatcheck_refresh"
REFRESH_PATH = "/auth/refresh"
PAST_ACCESS = 5 * 60 + 11  # past the access token's 5 minutes and the 10 s leeway
VICTIM = {"username": "victim", "password": "victim password", "name": "Victim"}
ATTACKER = {"username": "mallory", "password": "mallory password", "name": "Mallory"}


def _login(client: TestClient, who: dict[str, str]) -> None:
    client.post("/register", data=who, follow_redirects=False)
    form = {"username": who["username"], "password": who["password"], "remember": "on"}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def _raw(client: TestClient, method: str, path: str, cookie: str) -> Any:
    """A request to ``client``'s app with exactly this Cookie header (no cookie jar)."""
    # Not entered as a context: the app is already running, its lifespan is client's.
    bare = TestClient(client.app, base_url=str(client.base_url))
    return bare.request(method, path, headers={"cookie": cookie}, follow_redirects=False)


def _whoami(client: TestClient, cookie: str) -> str | None:
    response = _raw(client, "GET", "/api/me", cookie)
    if response.status_code == 401:
        return None
    assert response.status_code == 200, response.text
    name: str = response.json()["username"]
    return name


def _set_cookie_names(response: Any) -> list[str]:
    return [line.partition("=")[0] for line in response.headers.get_list("set-cookie")]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def pair(make_client: MakeClient, clock: FrozenClock) -> tuple[TestClient, TestClient]:
    """The victim's and the attacker's browsers on one hybrid demo over HTTPS."""
    victim = make_client("hybrid", https=True, clock=clock)
    attacker = Browser(victim.app, base_url="https://127.0.0.1")
    clock.advance(1)  # logins happen after the app started (see renamed_from)
    _login(victim, VICTIM)
    _login(attacker, ATTACKER)
    return victim, attacker


def test_https_hybrid_cookies_are_host_and_secure_prefixed(
    pair: tuple[TestClient, TestClient],
) -> None:
    victim, _ = pair
    assert set(victim.cookies.keys()) >= {HOST_ACCESS, REFRESH}
    assert OLD_ACCESS not in victim.cookies


def test_the_issues_duplicated_access_cookie_is_a_guest(
    pair: tuple[TestClient, TestClient],
) -> None:
    victim, attacker = pair
    mine, theirs = victim.cookies[HOST_ACCESS], attacker.cookies[HOST_ACCESS]
    # The exact header of the issue: it authenticated as the attacker (first copy wins).
    assert _whoami(victim, f"{OLD_ACCESS}={theirs}; {OLD_ACCESS}={mine}") is None
    assert _whoami(victim, f"{OLD_ACCESS}={mine}; {OLD_ACCESS}={theirs}") is None
    # The access cookie is __Host- now: a duplicate of it (which no sibling can toss)
    # is refused all the same, and a tossed __Secure- copy beside it changes nothing.
    assert _whoami(victim, f"{HOST_ACCESS}={theirs}; {HOST_ACCESS}={mine}") is None
    assert _whoami(victim, f"{OLD_ACCESS}={theirs}; {HOST_ACCESS}={mine}") == "victim"
    assert _whoami(victim, f"{HOST_ACCESS}={mine}") == "victim"


def test_a_lone_tossed_old_name_cookie_is_not_trusted(
    pair: tuple[TestClient, TestClient],
) -> None:
    victim, attacker = pair
    theirs = attacker.cookies[HOST_ACCESS]
    # A logged-out visitor with only the attacker's cookie under the old name: the login
    # is newer than the rename, so it was never written under that name by the demo.
    response = _raw(victim, "GET", "/api/me", f"{OLD_ACCESS}={theirs}")
    assert response.status_code == 401
    assert OLD_ACCESS in _set_cookie_names(response)  # and it is expired


def test_the_issues_duplicated_refresh_cookie_is_refused(
    pair: tuple[TestClient, TestClient], clock: FrozenClock
) -> None:
    victim, attacker = pair
    access = victim.cookies[HOST_ACCESS]
    mine, theirs = victim.cookies[REFRESH], attacker.cookies[REFRESH]
    clock.advance(PAST_ACCESS)
    # It issued an access cookie for the attacker's account.
    cookie = f"{REFRESH}={theirs}; {REFRESH}={mine}; {HOST_ACCESS}={access}"
    response = _raw(victim, "GET", f"{REFRESH_PATH}?next=/", cookie)
    assert response.status_code == 307
    assert all(
        line.startswith(f"{name}=;")
        for name, line in zip(
            _set_cookie_names(response), response.headers.get_list("set-cookie"), strict=True
        )
    ), "only expiring cookies, no new credential"
    # The attacker's refresh token was not spent either: nothing was rotated.
    assert attacker.get("/api/me").json()["username"] == "mallory"


def test_a_lone_tossed_refresh_cookie_cannot_log_a_victim_in(
    pair: tuple[TestClient, TestClient], clock: FrozenClock
) -> None:
    victim, attacker = pair
    theirs = attacker.cookies[REFRESH]
    their_access = attacker.cookies[HOST_ACCESS]
    clock.advance(PAST_ACCESS)
    # A logged-out visitor lured to the refresh path with only the tossed cookie: before
    # the binding this was a login into the attacker's account (login CSRF).
    alone = _raw(victim, "GET", f"{REFRESH_PATH}?next=/", f"{REFRESH}={theirs}")
    assert alone.status_code == 307
    assert HOST_ACCESS + "=;" in alone.headers["set-cookie"]
    # Beside the victim's own access cookie (another session): refused too.
    mine = victim.cookies[HOST_ACCESS]
    refresh = f"{REFRESH_PATH}?next=/"
    beside = _raw(victim, "GET", refresh, f"{REFRESH}={theirs}; {HOST_ACCESS}={mine}")
    assert all(
        line.split("=", 1)[1].startswith(";") for line in beside.headers.get_list("set-cookie")
    )
    # The pair that belongs together still refreshes.
    ok = _raw(attacker, "GET", refresh, f"{REFRESH}={theirs}; {HOST_ACCESS}={their_access}")
    assert ok.status_code == 307
    assert {HOST_ACCESS, REFRESH} <= set(_set_cookie_names(ok))
    renewed = ok.headers.get_list("set-cookie")
    assert not any(line.startswith(f"{HOST_ACCESS}=;") for line in renewed)


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_a_duplicated_credential_cookie_is_a_guest_in_every_mode(
    make_client: MakeClient, mode: str
) -> None:
    client = make_client(mode, https=True)
    _login(client, VICTIM)
    name = {"session": "__Host-coatcheck_session", "jwt": "__Host-coatcheck_token"}.get(
        mode, HOST_ACCESS
    )
    value = client.cookies[name]
    assert _whoami(client, f"{name}={value}") == "victim"
    assert _whoami(client, f"{name}={value}; {name}={value}") is None


def test_a_login_from_before_the_rename_keeps_working(tmp_path: Path, clock: FrozenClock) -> None:
    # No stored session is lost: a browser still holding the old __Secure- access cookie
    # (and its refresh cookie) of a login made before this demo started is moved over.
    config = DemoConfig(
        mode="hybrid",
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        users_path=str(tmp_path / "users.db"),
        hasher=FAST_HASHER,
        https=True,
        clock=clock,
    )
    with Browser(create_app(config), base_url="https://127.0.0.1") as before:
        _login(before, VICTIM)
        access, refresh = before.cookies[HOST_ACCESS], before.cookies[REFRESH]
    clock.advance(60)
    with Browser(create_app(config), base_url="https://127.0.0.1") as after:
        # The old name, access token still valid: read (the next refresh moves it, so
        # the new cookie gets the refresh token's lifetime, not the access token's).
        response = _raw(after, "GET", "/api/me", f"{OLD_ACCESS}={access}")
        assert response.json()["username"] == "victim"
        assert _set_cookie_names(response) == []
        # The old name, access token expired: refreshed through the binding, moved over.
        clock.advance(PAST_ACCESS)
        hop = _raw(after, "GET", "/api/me", f"{OLD_ACCESS}={access}")
        assert hop.status_code == 307
        both = f"{OLD_ACCESS}={access}; {REFRESH}={refresh}"
        back = _raw(after, "GET", hop.headers["location"], both)
        assert back.status_code == 307
        names = _set_cookie_names(back)
        assert names[:2] == [HOST_ACCESS, REFRESH]
        assert OLD_ACCESS in names
        fresh = next(
            line.partition("=")[2].partition(";")[0]
            for line in back.headers.get_list("set-cookie")
            if line.startswith(HOST_ACCESS + "=")
        )
        assert _whoami(after, f"{HOST_ACCESS}={fresh}") == "victim"
