"""Hostile JSON and form bodies against the demo app: a 4xx with a code, never a 5xx.

Issue 12 item 4: ``{"username": "\\ud800", "password": "x"}`` on /api/login was a 500
(argon2 could not encode the lone surrogate), and so were the register and
password-change fields. Hypothesis drives the real app (Starlette's TestClient) in
every mode with bodies full of lone surrogates (escaped and raw), NULs, huge strings
and numbers, deep nesting and wrong types, on every endpoint that reads a body.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coatcheck.clock import FrozenClock

from .._hostile import form_bodies, json_bodies
from .conftest import ALICE, Browser, MakeClient

#: Codes a refused body may carry (the demo's documented ones).
CODES = {
    "bad_request", "invalid_text", "payload_too_large", "unsupported_media_type",
    "invalid_credentials", "username_taken", "rate_limited", "refresh_token_reused",
    "wrong_password", "reauthentication_required", "missing_credentials",
    "csrf_token_missing", "csrf_token_invalid", "no_refresh",
    "password_too_long",  # issue 12 item 3: over 1024 characters, before any hashing
}  # fmt: skip
_LOGIN = {"username": "alice", "password": ALICE["password"]}
#: path -> the fields it reads, each with a plausible value for hypothesis to twist.
JSON_ENDPOINTS = {
    "/api/login": _LOGIN,
    "/api/register": {"username": "bob", "password": "bob's password", "name": "Bob"},
    "/api/password": {"current_password": ALICE["password"], "new_password": "a new password"},
    "/api/refresh": {"refresh_token": "x" * 40 + "~" + "y" * 43},
}
FORM_ENDPOINTS = {
    "/login": {**_LOGIN, "remember": "on", "next": "/sessions"},
    "/register": {"username": "bob", "password": "bob's password", "name": "Bob"},
    "/password": {"current_password": ALICE["password"], "new_password": "a new password"},
}
_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _refused_cleanly(response: httpx.Response, what: object) -> None:
    status = response.status_code
    assert status < 500, (what, status, response.text[:300])
    if status >= 400 and response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"] in CODES, what


class Demo:
    """One demo app (per mode) on a frozen clock, with alice registered."""

    def __init__(self, client: Browser, clock: FrozenClock) -> None:
        self.client = client
        self.clock = clock
        self.password = ALICE["password"]
        assert client.post("/api/register", json=ALICE).status_code == 201

    def fresh_login(self) -> str:
        """Past every throttling window and fresh-login limit, a new bearer token."""
        self.clock.advance(16 * 60)
        login = self.client.post("/api/login", json={**_LOGIN, "password": self.password})
        assert login.status_code == 200, login.text
        token: str = login.json()["token"]
        return token


@pytest.fixture(params=["session", "jwt", "hybrid"])
def demo(request: pytest.FixtureRequest, make_client: MakeClient) -> Demo:
    clock = FrozenClock()
    client = make_client(request.param, clock=clock)
    assert isinstance(client, Browser)
    return Demo(client, clock)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/login", b'{"username": "\\ud800", "password": "x"}'),
        ("/api/login", b'{"username": "alice", "password": "\\ud800 correct horse"}'),
        ("/api/register", b'{"username": "bob", "password": "\\udfffsecret!", "name": "Bob"}'),
        ("/api/register", b'{"username": "bob", "password": "secret\\u0000!", "name": "Bob"}'),
        ("/api/password", b'{"current_password": "correct horse", "new_password": "\\ud800xyz"}'),
        ("/api/password", b'{"current_password": "\\ud800", "new_password": "new password"}'),
    ],
)  # fmt: skip
def test_the_issue_requests_are_400_invalid_text(demo: Demo, path: str, body: bytes) -> None:
    token = demo.fresh_login()
    response = demo.client.post(
        path, content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert (response.status_code, response.json()["error"]) == (400, "invalid_text")


def test_a_form_with_an_encoded_surrogate_is_400(demo: Demo) -> None:
    response = demo.client.post(
        "/login", content=b"username=alice&password=%ED%A0%80xxxxxxxx",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "invalid_text" in response.text


@_SETTINGS
@given(data=st.data())
def test_hostile_json_never_5xx(demo: Demo, data: st.DataObject) -> None:
    token = demo.fresh_login()
    path = data.draw(st.sampled_from(sorted(JSON_ENDPOINTS)))
    body = data.draw(json_bodies(JSON_ENDPOINTS[path]))
    headers = {"content-type": "application/json"}
    if path == "/api/password":
        headers["authorization"] = f"Bearer {token}"
    response = demo.client.post(path, content=body, headers=headers, follow_redirects=False)
    _refused_cleanly(response, (path, body[:200]))
    if path == "/api/password" and response.status_code == 200:
        demo.password = json.loads(body)["new_password"]  # a valid twist was accepted


@_SETTINGS
@given(data=st.data())
def test_hostile_forms_never_5xx(demo: Demo, data: st.DataObject) -> None:
    demo.fresh_login()  # the cookie: /password needs a login
    path = data.draw(st.sampled_from(sorted(FORM_ENDPOINTS)))
    body = data.draw(form_bodies(FORM_ENDPOINTS[path]))
    response = demo.client.post(
        path, content=body, headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )  # fmt: skip
    _refused_cleanly(response, (path, body[:200]))
    if path == "/password" and response.status_code == 303:
        demo.password = parse_qs(body.decode())["new_password"][0]
