"""The demo in hybrid mode: two cookies, transparent refresh, rotation, revocation.

The library's rules (rotation, reuse detection, the feed) are tested in tests/auth;
these tests drive them through the demo's pages and API, with a frozen clock.
"""

from __future__ import annotations

from datetime import timedelta
from http.cookiejar import Cookie
from typing import Any

import pytest
from starlette.testclient import TestClient

from coatcheck.clock import FrozenClock

from .conftest import ALICE, MakeClient, register_and_login
from .test_app import test_fuzz_endpoints_never_500 as _fuzz_every_endpoint

ACCESS, REFRESH, REFRESH_PATH = "coatcheck_access", "coatcheck_refresh", "/auth/refresh"
PAST_ACCESS = 5 * 60 + 11  # past the access token's 5 minutes and the 10 s leeway
PAST_GRACE = 11  # past the 10 s in which a retired refresh token is still honoured


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def hybrid(make_client: MakeClient, clock: FrozenClock) -> TestClient:
    return make_client("hybrid", clock=clock)


def _set_cookies(response: Any) -> dict[str, str]:
    return {line.partition("=")[0]: line for line in response.headers.get_list("set-cookie")}


def _jar(client: TestClient) -> list[Cookie]:
    return list(client.cookies.jar)


def _restore(client: TestClient, cookies: list[Cookie]) -> None:
    # Cookie by cookie, with their paths: the refresh cookie lives on its own path.
    client.cookies.clear()
    for cookie in cookies:
        client.cookies.jar.set_cookie(cookie)


def _refresh_cookie(client: TestClient) -> str:
    [value] = [c.value for c in client.cookies.jar if c.name == REFRESH]
    return value or ""


def _api_login(client: TestClient) -> dict[str, Any]:
    client.post("/api/register", json=ALICE)
    response = client.post("/api/login", json={"username": "alice", "password": ALICE["password"]})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _me(client: TestClient, token: str) -> int:
    status: int = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
    return status


def test_login_sets_an_access_and_a_narrow_refresh_cookie(hybrid: TestClient) -> None:
    hybrid.post("/register", data=ALICE)
    form = {"username": "alice", "password": ALICE["password"], "remember": "on"}
    response = hybrid.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    cookies = _set_cookies(response)
    assert "; Path=/;" in cookies[ACCESS]
    assert "HttpOnly" in cookies[ACCESS]
    assert f"; Path={REFRESH_PATH};" in cookies[REFRESH]
    assert "HttpOnly" in cookies[REFRESH]
    assert "Max-Age=" in cookies[ACCESS]
    assert "Max-Age=" in cookies[REFRESH]
    page = hybrid.get("/").text
    assert "Hello, Alice Example" in page
    assert '<span class="mode hybrid">hybrid mode</span>' in page
    assert "Your tokens right now" in page  # the countdown panel
    assert "x-csrf-token" in page  # its fetch calls carry the CSRF token
    assert REFRESH in page
    assert "Path=/auth/refresh" in page


def test_without_remember_me_both_cookies_end_with_the_browser(hybrid: TestClient) -> None:
    hybrid.post("/register", data=ALICE)
    form = {"username": "alice", "password": ALICE["password"]}
    cookies = _set_cookies(hybrid.post("/login", data=form, follow_redirects=False))
    for line in (cookies[ACCESS], cookies[REFRESH]):
        assert "Max-Age" not in line
        assert "Expires" not in line


def test_expired_access_cookie_is_refreshed_transparently(
    hybrid: TestClient, clock: FrozenClock
) -> None:
    register_and_login(hybrid)
    before = hybrid.cookies[ACCESS]
    status = hybrid.get("/api/refresh-status").json()
    assert status["mode"] == "hybrid"
    assert status["access_expires_at"] == clock.now() + 300
    clock.advance(PAST_ACCESS)
    page = hybrid.get("/")
    assert page.status_code == 200
    assert "Hello, Alice Example" in page.text
    hops = [(r.status_code, r.url.path) for r in page.history]
    assert hops == [(307, "/"), (307, REFRESH_PATH)]
    assert hybrid.cookies[ACCESS] != before
    after = hybrid.get("/api/refresh-status").json()
    assert after["access_expires_at"] == clock.now() + 300
    assert after["session_id"] == status["session_id"]  # same session, new tokens


def test_api_refresh_rotates_and_detects_reuse(hybrid: TestClient, clock: FrozenClock) -> None:
    login = _api_login(hybrid)
    assert set(login) >= {"token", "refresh_token", "expires_in"}
    assert login["expires_in"] == 300
    first = hybrid.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert first.status_code == 200
    pair = first.json()
    assert pair["refresh_token"] != login["refresh_token"]
    assert _me(hybrid, pair["token"]) == 200
    # Within the grace window (two tabs at once) the same old token gives the same pair.
    again = hybrid.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert again.status_code == 200
    assert again.json()["refresh_token"] == pair["refresh_token"]
    # After it, while the successor is unused: a lost answer, the same successor again.
    clock.advance(PAST_GRACE)
    retry = hybrid.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert retry.status_code == 200
    assert retry.json()["refresh_token"] == pair["refresh_token"]
    # Once the successor has been used, the retired token is a stolen one: the whole
    # session is revoked.
    used = hybrid.post("/api/refresh", json={"refresh_token": pair["refresh_token"]})
    assert used.status_code == 200
    reused = hybrid.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert (reused.status_code, reused.json()["error"]) == (401, "refresh_token_reused")
    assert _me(hybrid, used.json()["token"]) == 401
    fresh = hybrid.post("/api/refresh", json={"refresh_token": used.json()["refresh_token"]})
    assert fresh.status_code == 401


def test_a_lost_refresh_answer_in_the_browser_recovers(
    hybrid: TestClient, clock: FrozenClock
) -> None:
    # Issue 12 item 7: GET /auth/refresh with RT1, the connection drops before the
    # answer (the browser keeps its old cookies), RT1 again after the 10 s grace.
    register_and_login(hybrid)
    old = _jar(hybrid)
    clock.advance(PAST_ACCESS)
    lost = hybrid.get(REFRESH_PATH, params={"next": "/"}, follow_redirects=False)
    assert lost.status_code == 307
    _restore(hybrid, old)  # the answer never arrived
    clock.advance(30)
    page = hybrid.get("/")
    assert "Hello, Alice Example" in page.text  # refreshed again, not logged out
    assert _set_cookies(lost)[REFRESH].startswith(f"{REFRESH}={_refresh_cookie(hybrid)};")
    # The successor is now in use: the old refresh cookie is a thief's.
    clock.advance(PAST_ACCESS)
    assert "Hello, Alice Example" in hybrid.get("/").text
    current = _jar(hybrid)
    _restore(hybrid, old)
    stolen = hybrid.get(REFRESH_PATH, params={"next": "/"}, follow_redirects=False)
    assert stolen.status_code == 307  # back, with both cookies cleared
    assert "Max-Age=0" in _set_cookies(stolen)[REFRESH]
    _restore(hybrid, current)
    assert "Hello, guest" in hybrid.get("/").text  # the whole session was revoked


def test_api_refresh_refuses_bad_input(hybrid: TestClient, make_client: MakeClient) -> None:
    for body in ({}, {"refresh_token": ""}, {"refresh_token": 5}):
        assert hybrid.post("/api/refresh", json=body).status_code == 400
    for token in ("nonsense", "a~b", "deadbeef." + "A" * 43 + "~" + "B" * 43):
        assert hybrid.post("/api/refresh", json={"refresh_token": token}).status_code == 401
    session = make_client("session")
    assert session.post("/api/refresh", json={"refresh_token": "x"}).status_code == 404


def test_logout_stops_the_access_token_at_once(hybrid: TestClient) -> None:
    login = _api_login(hybrid)
    assert _me(hybrid, login["token"]) == 200
    bearer = {"Authorization": f"Bearer {login['token']}"}
    assert hybrid.post("/api/logout", headers=bearer).status_code == 200
    # Well within its 5 minutes: the revocation set refuses it in this process.
    assert _me(hybrid, login["token"]) == 401
    refused = hybrid.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    assert refused.status_code == 401


def test_form_logout_clears_both_cookies(hybrid: TestClient) -> None:
    register_and_login(hybrid)
    response = hybrid.post("/logout", follow_redirects=False)
    cleared = _set_cookies(response)
    assert "Max-Age=0" in cleared[ACCESS]
    assert "Max-Age=0" in cleared[REFRESH]
    assert "Hello, guest" in hybrid.get("/").text


def test_sessions_page_revokes_a_device(hybrid: TestClient) -> None:
    register_and_login(hybrid)
    other = _api_login(hybrid)
    page = hybrid.get("/sessions")
    assert page.status_code == 200
    assert page.text.count('action="/sessions/revoke"') == 2
    [theirs] = [s for s in hybrid.get("/api/sessions").json()["sessions"] if not s["current"]]
    revoked = hybrid.post(
        "/sessions/revoke", data={"session_id": theirs["id"]}, follow_redirects=False
    )
    assert revoked.status_code == 303
    saved = dict(hybrid.cookies)
    hybrid.cookies.clear()
    assert _me(hybrid, other["token"]) == 401  # at once, not after 5 minutes
    hybrid.cookies.update(saved)
    assert "Hello, Alice Example" in hybrid.get("/").text


def test_log_out_everywhere_needs_a_recent_login(hybrid: TestClient, clock: FrozenClock) -> None:
    register_and_login(hybrid)
    other = _api_login(hybrid)
    clock.advance(11 * 60)
    stale = hybrid.post("/sessions/revoke-all", follow_redirects=False)
    assert stale.status_code == 401
    assert "reauthentication_required" in stale.text
    fresh = hybrid.post("/api/refresh", json={"refresh_token": other["refresh_token"]})
    assert fresh.status_code == 200  # nothing was revoked
    relogin = hybrid.post(
        "/login", data={"username": "alice", "password": ALICE["password"]},
        follow_redirects=False,
    )
    assert relogin.status_code == 303
    everywhere = hybrid.post("/sessions/revoke-all", follow_redirects=False)
    assert everywhere.status_code == 303
    assert "Hello, guest" in hybrid.get("/").text
    assert _me(hybrid, fresh.json()["token"]) == 401


def test_jwks_is_published(hybrid: TestClient) -> None:
    keys = hybrid.get("/.well-known/jwks.json").json()["keys"]
    assert [k["alg"] for k in keys] == ["ES256"]
    assert all("d" not in k for k in keys)


def test_https_prefixes_the_access_cookie_host_and_the_refresh_cookie_secure(
    make_client: MakeClient,
) -> None:
    # __Host- wherever Path=/ allows it (issue 12); the refresh cookie's narrow Path
    # allows only __Secure- (tests/demo/test_cookie_tossing.py has its defence).
    client = make_client("hybrid", https=True)
    client.post("/register", data=ALICE)
    form = {"username": "alice", "password": ALICE["password"]}
    cookies = _set_cookies(client.post("/login", data=form, follow_redirects=False))
    assert set(cookies) == {"__Host-" + ACCESS, "__Secure-" + REFRESH}
    assert all("; Secure" in line for line in cookies.values())


def test_fuzz_endpoints_never_500_in_hybrid_mode(hybrid: TestClient) -> None:
    _fuzz_every_endpoint(hybrid)
    for path in ("/api/refresh", REFRESH_PATH):
        response = hybrid.post(path, content=b"{", headers={"Content-Type": "application/json"})
        assert response.status_code < 500
    assert hybrid.get(REFRESH_PATH, headers={"Cookie": f"{REFRESH}=\x7f~~"}).status_code < 500


def test_session_mode_log_out_everywhere_needs_a_recent_login_too(
    make_client: MakeClient, clock: FrozenClock
) -> None:
    client = make_client("session", clock=clock)
    register_and_login(client)
    clock.advance(11 * 60)
    stale = client.post("/sessions/revoke-all", follow_redirects=False)
    assert stale.status_code == 401
    assert "reauthentication_required" in stale.text
    assert "Hello, Alice Example" in client.get("/").text  # nothing was revoked


def test_refresh_status_tells_when_the_server_refreshes(
    hybrid: TestClient, clock: FrozenClock
) -> None:
    register_and_login(hybrid)
    status = hybrid.get("/api/refresh-status").json()
    assert status["leeway"] == 10
    assert status["refresh_after"] == status["access_expires_at"] + 10
    # Within the leeway the same token is still accepted: no refresh yet ...
    clock.advance(300 + 9)
    same = hybrid.get("/api/refresh-status")
    assert same.history == []
    assert same.json()["access_token_id"] == status["access_token_id"]
    # ... and once past exp + leeway the next request is refreshed.
    clock.advance(1)
    renewed = hybrid.get("/api/refresh-status")
    assert [r.status_code for r in renewed.history] == [307, 307]
    assert renewed.json()["access_expires_at"] == clock.now() + 300


def test_hybrid_texts_state_the_bounds_exactly(
    make_client: MakeClient, clock: FrozenClock
) -> None:
    client = make_client("hybrid", clock=clock, access_ttl=timedelta(seconds=12))
    guest = client.get("/").text
    assert "at most 22 s" in guest  # one access-token lifetime plus the 10 s leeway
    assert "past exp + leeway" in guest
    assert "has expired, the next request" not in guest
    register_and_login(client)
    home = client.get("/").text
    assert "Access token: lives 12 seconds" in home
    assert "Session and refresh token: valid until" in home
    assert "This credential expires at" not in home  # it would go stale at the refresh
    assert "Remember me: on. The refresh cookie" in home
    assert 'data-leeway="10.0"' in home


def test_the_home_page_reads_the_session_once(make_client: MakeClient, clock: FrozenClock) -> None:
    # Regression: the picture, the details and the hybrid panel each read the login's
    # session record (three store reads per page view); one is enough.
    from coatcheck import events
    from coatcheck.events import StoreCalled

    client = make_client("hybrid", clock=clock, metrics=True)
    register_and_login(client)
    assert client.get("/").status_code == 200  # the page as it is after login, warmed
    calls: list[StoreCalled] = []
    with events.subscribe(calls.append, StoreCalled):
        page = client.get("/")
    assert page.status_code == 200
    assert "Session and refresh token: valid until" in page.text
    assert [c.operation for c in calls] == ["get"]
