"""CSRF in the demo: every form carries the token, every unsafe cookie request needs it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from .conftest import ALICE, MakeClient, page_token

MODES = ["session", "jwt", "hybrid"]
_FORMS_RE = re.compile(r"<form method=post")
_HIDDEN_RE = re.compile(r'<input type=hidden name="csrf_token" value="[A-Za-z0-9_-]{64}">')


def _login(client: TestClient) -> None:
    token = page_token(client)
    assert client.post(
        "/register", data={**ALICE, "csrf_token": token}, csrf=False, follow_redirects=False
    ).status_code == 303
    login = {"username": "alice", "password": ALICE["password"], "csrf_token": token}
    response = client.post("/login", data=login, csrf=False, follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize("mode", MODES)
def test_every_form_carries_a_token(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    guest = client.get("/").text
    # Log in, register, the guest's name, and the cart's buttons.
    assert len(_FORMS_RE.findall(guest)) == len(_HIDDEN_RE.findall(guest)) == 7
    _login(client)
    home = client.get("/").text
    assert len(_FORMS_RE.findall(home)) == len(_HIDDEN_RE.findall(home)) >= 1
    sessions = client.get("/sessions").text
    assert len(_FORMS_RE.findall(sessions)) == len(_HIDDEN_RE.findall(sessions))


@pytest.mark.parametrize("mode", MODES)
def test_forms_work_with_their_token_and_fail_without(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    missing = client.post("/register", data=ALICE, csrf=False)
    assert missing.status_code == 403
    assert missing.json()["error"] == "csrf_token_missing"
    browser = client.post("/register", data=ALICE, csrf=False, headers={"Accept": "text/html"})
    assert browser.status_code == 403
    assert "csrf_token_missing" in browser.text
    assert "<!doctype html>" in browser.text
    _login(client)
    assert "Hello, Alice Example" in client.get("/").text
    no_token = client.post("/logout", csrf=False)
    assert no_token.json()["error"] == "csrf_token_missing"
    forged = client.post("/logout", data={"csrf_token": "A" * 64}, csrf=False)
    assert forged.json()["error"] == "csrf_token_invalid"
    token = page_token(client)
    cross = client.post(
        "/logout", data={"csrf_token": token}, csrf=False,
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.json()["error"] == "csrf_cross_origin"
    assert "Hello, Alice Example" in client.get("/").text  # nothing was done
    done = client.post("/logout", data={"csrf_token": token}, csrf=False, follow_redirects=False)
    assert done.status_code == 303
    assert "Hello, guest" in client.get("/").text


@pytest.mark.parametrize("mode", MODES)
def test_pre_login_token_stops_working_after_login(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    before = page_token(client)
    _login(client)
    stale = client.post("/logout", data={"csrf_token": before}, csrf=False)
    assert stale.status_code == 403
    assert stale.json()["error"] in ("csrf_token_invalid", "csrf_token_missing")


@pytest.mark.parametrize("mode", MODES)
def test_another_users_token_is_refused(make_client: MakeClient, mode: str) -> None:
    victim = make_client(mode)
    _login(victim)
    attacker = make_client(mode)
    attacker.post("/api/register", json={"username": "mallory", "password": "x" * 12, "name": "M"})
    token = page_token(attacker)
    attacker.post(
        "/login", data={"username": "mallory", "password": "x" * 12, "csrf_token": token},
        csrf=False,
    )
    theirs = page_token(attacker)
    forged = victim.post("/logout", headers={"x-csrf-token": theirs}, csrf=False)
    assert forged.status_code == 403
    assert "Hello, Alice Example" in victim.get("/").text


@pytest.mark.parametrize("mode", MODES)
def test_json_api_with_cookie_needs_the_header(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    _login(client)
    refused = client.post("/api/logout", csrf=False)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_token_missing"
    accepted = client.post("/api/logout", headers={"x-csrf-token": page_token(client)}, csrf=False)
    assert accepted.status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_bearer_requests_need_no_token(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    assert client.post("/api/register", json=ALICE).status_code == 201
    login = client.post("/api/login", json={"username": "alice", "password": ALICE["password"]})
    assert login.status_code == 200
    assert not client.cookies
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    assert client.post("/api/logout", headers=bearer, csrf=False).status_code == 200
    # Layer 1 still applies to a browser that says it is elsewhere (as Go does).
    cross = client.post(
        "/api/logout", headers={**bearer, "Sec-Fetch-Site": "cross-site"}, csrf=False
    )
    assert cross.status_code == 403


def test_jwt_mode_double_submit_cookie(make_client: MakeClient) -> None:
    client = make_client("jwt")
    _login(client)
    page = client.get("/")
    token = _HIDDEN_RE.search(page.text)
    assert token is not None
    cookie = client.cookies.get("csrf")
    assert cookie is not None
    assert cookie in token.group(0)  # the form echoes the cookie
    set_cookie = [v for k, v in page.headers.multi_items() if k == "set-cookie"]
    assert any(v.startswith("csrf=") and "HttpOnly" not in v for v in set_cookie)
    # Echo without the cookie: refused.
    client.cookies.delete("csrf")
    refused = client.post("/logout", data={"csrf_token": cookie}, csrf=False)
    assert refused.json()["error"] == "csrf_token_missing"


def test_session_id_planted_as_pre_session_gives_no_token(make_client: MakeClient) -> None:
    """A pre-session cookie equal to a victim's session id must not mint tokens for it."""
    victim = make_client("session")
    _login(victim)
    session_id = victim.get("/api/me").json()["session_id"]
    attacker = make_client("session")
    attacker.cookies.set("csrf_pre", session_id)
    minted = page_token(attacker)
    forged = victim.post("/logout", headers={"x-csrf-token": minted}, csrf=False)
    assert forged.status_code == 403
    assert forged.json()["error"] == "csrf_token_invalid"


def test_https_csrf_cookies_have_the_host_prefix(make_client: MakeClient) -> None:
    client = make_client("jwt", https=True)
    page = client.get("/")
    [pre] = [v for k, v in page.headers.multi_items() if k == "set-cookie"]
    assert pre.startswith("__Host-csrf_pre=")
    assert "; Secure" in pre
    assert "; HttpOnly" in pre
    _login(client)
    home = client.get("/")
    assert any(
        v.startswith("__Host-csrf=") and "; Secure" in v
        for k, v in home.headers.multi_items()
        if k == "set-cookie"
    )


def test_hybrid_script_sends_the_header(make_client: MakeClient) -> None:
    client = make_client("hybrid")
    _login(client)
    page = client.get("/").text
    assert "'x-csrf-token'" in page
    assert "input[name=csrf_token]" in page


def test_public_origin_is_the_csrf_checks_own_origin(make_client: MakeClient) -> None:
    # Behind a proxy the Host the demo sees is not the one in the browser's Origin:
    # `coatcheck demo --public-origin URL` names the origin the browser uses.
    client = make_client("session", public_origin="https://demo.example")
    _login(client)
    token = page_token(client)
    proxied = {"Origin": "https://demo.example", "Host": "10.0.0.5:8000"}
    other = client.post("/logout", data={"csrf_token": token}, csrf=False,
                        headers={**proxied, "Origin": "https://elsewhere.example"})  # fmt: skip
    assert other.json()["error"] == "csrf_cross_origin"
    plain = client.post("/logout", data={"csrf_token": token}, csrf=False,
                        headers={**proxied, "Origin": "http://demo.example"})  # fmt: skip
    assert plain.json()["error"] == "csrf_cross_origin"  # another scheme
    done = client.post("/logout", data={"csrf_token": token}, csrf=False, headers=proxied,
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303


def test_a_bad_public_origin_fails_at_start_up(tmp_path: Any) -> None:
    from coatcheck.demo import DemoConfig, create_app
    from coatcheck.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="without a trailing '/'"):
        create_app(DemoConfig(store_url="memory://", users_path=str(tmp_path / "u.db"),
                              public_origin="https://demo.example/"))  # fmt: skip
