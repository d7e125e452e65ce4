from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from coatcheck.demo import DemoConfig, create_app
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.sessions import SessionRecord
from coatcheck.stores import MemoryStore

from .conftest import ALICE, MakeClient, register_and_login


def _api_login(client: TestClient, **extra: object) -> dict[str, object]:
    client.post("/api/register", json=ALICE)
    response = client.post(
        "/api/login", json={"username": "alice", "password": ALICE["password"], **extra}
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_home_greets_guest_and_explains_mode(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Hello, guest" in page.text
    assert "What your browser holds" in page.text
    assert "plain HTTP" in page.text
    assert 'name=remember value=on checked' in page.text


def test_form_login_flow(client: TestClient) -> None:
    register_and_login(client)
    [cookie] = [c for c in client.cookies.jar if not c.name.startswith("csrf")]
    assert cookie.name in ("coatcheck_session", "coatcheck_token")
    assert not cookie.secure
    assert "Hello, Alice Example" in client.get("/").text
    response = client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "Hello, guest" in client.get("/").text


def test_remember_me_controls_cookie_lifetime(make_client: MakeClient) -> None:
    for mode in ("session", "jwt"):
        client = make_client(mode)
        client.post("/register", data=ALICE)
        form = {"username": "alice", "password": ALICE["password"]}
        response = client.post("/login", data=form, follow_redirects=False)
        assert "Max-Age" not in response.headers["set-cookie"]
        assert "Expires" not in response.headers["set-cookie"]
        response = client.post("/login", data={**form, "remember": "on"}, follow_redirects=False)
        assert "Max-Age=" in response.headers["set-cookie"]
        client.cookies.clear()
        (client._transport.app.state.demo.users.connection  # type: ignore[attr-defined]
         .execute("DELETE FROM demo_users"))


def test_wrong_password_and_empty_form(client: TestClient) -> None:
    client.post("/register", data=ALICE)
    wrong = client.post("/login", data={"username": "alice", "password": "nope nope"})
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.text
    unknown = client.post("/login", data={"username": "bob", "password": "nope nope"})
    assert unknown.status_code == 401
    assert "Wrong username or password" in unknown.text
    empty = client.post("/login", data={})
    assert empty.status_code == 400
    bad_register = client.post("/register", data={"username": "x"})
    assert bad_register.status_code == 400
    taken = client.post("/register", data=ALICE)
    assert taken.status_code == 409


def test_display_name_is_escaped(client: TestClient) -> None:
    client.post("/register", data={**ALICE, "name": "<script>alert(1)</script>"})
    client.post("/login", data={"username": "alice", "password": ALICE["password"]})
    page = client.get("/").text
    assert "<script>alert(1)</script>" not in page
    assert "Hello, &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_api_flow(client: TestClient) -> None:
    created = client.post("/api/register", json=ALICE)
    assert created.status_code == 201
    assert created.json()["username"] == "alice"
    assert client.post("/api/register", json=ALICE).status_code == 409
    body = _api_login(client)
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    assert not client.cookies  # native clients get a token, not a cookie
    bearer = {"Authorization": f"Bearer {body['token']}"}
    me = client.get("/api/me", headers=bearer).json()
    assert (me["username"], me["name"], me["via"]) == ("alice", "Alice Example", "bearer")
    assert me["mode"] in ("session", "jwt")


def test_api_me_without_or_with_bad_credentials(client: TestClient) -> None:
    missing = client.get("/api/me")
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_credentials"
    # RFC 9449 §7.2: both schemes are spoken here; DPoP says which proof keys it takes.
    assert missing.headers["www-authenticate"] == (
        'Bearer, DPoP algs="ES256 Ed25519 EdDSA PS256 RS256"'
    )
    for header in ("Bearer nonsense", "Bearer deadbeef." + "A" * 43, "Basic abc", "Bearer"):
        bad = client.get("/api/me", headers={"Authorization": header})
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_credentials"
    cookie = client.get("/api/me", headers={"Cookie": "coatcheck_session=x; coatcheck_token=y"})
    assert cookie.status_code == 401


def test_api_login_refuses_alike(client: TestClient) -> None:
    client.post("/api/register", json=ALICE)
    wrong = client.post("/api/login", json={"username": "alice", "password": "wrong pass"})
    unknown = client.post("/api/login", json={"username": "nobody", "password": "wrong pass"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {
        "error": "invalid_credentials",
        "message": "wrong username or password",
    }


def test_session_mode_api_logout_kills_the_token(make_client: MakeClient) -> None:
    client = make_client("session")
    bearer = {"Authorization": f"Bearer {_api_login(client)['token']}"}
    assert client.post("/api/logout", headers=bearer).status_code == 200
    assert client.get("/api/me", headers=bearer).status_code == 401


def test_jwt_mode_api_logout_says_the_token_lives_on(make_client: MakeClient) -> None:
    client = make_client("jwt")
    bearer = {"Authorization": f"Bearer {_api_login(client)['token']}"}
    body = client.post("/api/logout", headers=bearer).json()
    assert "until its exp" in body["note"]
    assert client.get("/api/me", headers=bearer).status_code == 200


def test_sessions_page_lists_and_revokes(make_client: MakeClient) -> None:
    client = make_client("session")
    register_and_login(client)
    other = _api_login(client)  # a second device
    page = client.get("/sessions", headers={"User-Agent": "TestBrowser/1.0"})
    assert page.status_code == 200
    assert page.text.count("Revoke</button>") == 2
    assert "this device" in page.text
    listing = client.get("/api/sessions").json()["sessions"]
    [theirs] = [s for s in listing if not s["current"]]
    revoked = client.post(
        "/sessions/revoke", data={"session_id": theirs["id"]}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert [s["current"] for s in client.get("/api/sessions").json()["sessions"]] == [True]
    saved = dict(client.cookies)
    client.cookies.clear()
    gone = client.get("/api/me", headers={"Authorization": f"Bearer {other['token']}"})
    assert gone.status_code == 401
    client.cookies.update(saved)
    assert "Hello, Alice Example" in client.get("/").text
    foreign = client.post("/sessions/revoke", data={"session_id": "ffffffff." + "0" * 64})
    assert foreign.status_code == 404
    everywhere = client.post("/sessions/revoke-all", follow_redirects=False)
    assert everywhere.status_code == 303
    assert "Hello, guest" in client.get("/").text


def test_jwt_sessions_page_explains(make_client: MakeClient) -> None:
    client = make_client("jwt")
    register_and_login(client)
    page = client.get("/sessions")
    assert page.status_code == 200
    assert "no list of logins" in page.text


def test_jwks(make_client: MakeClient) -> None:
    jwt = make_client("jwt")
    keys = jwt.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]
    assert make_client("session").get("/.well-known/jwks.json").status_code == 404


def test_store_outage_is_503_but_health_and_guests_work(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client("session")
    register_and_login(client)

    async def down(self: MemoryStore, session_id: str, now: float) -> SessionRecord | None:
        raise StoreUnavailable("the session store cannot be reached")

    monkeypatch.setattr(MemoryStore, "get", down)
    page = client.get("/")
    assert page.status_code == 503
    assert page.json()["error"] == "store_unavailable"
    health = client.get("/healthz")  # says so too (issue 12 item 8), not {"ok": true}
    assert (health.status_code, health.json()["store"]) == (503, "down")
    client.cookies.clear()
    assert "Hello, guest" in client.get("/").text


def test_https_proxy_uses_host_prefix_and_secure(make_client: MakeClient) -> None:
    client = make_client("session", https=True)
    client.post("/register", data=ALICE)
    response = client.post(
        "/login", data={"username": "alice", "password": ALICE["password"]}, follow_redirects=False
    )
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__Host-coatcheck_session=")
    assert "; Secure" in set_cookie


def test_bad_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        DemoConfig(mode="magic")
    with pytest.raises(ConfigurationError):
        create_app(DemoConfig(store_url="bogus://x"))


# -- hostile input: a clear 4xx, never a 500 --------------------------------------------

_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b""),
    ("application/json", b"{"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'"text"'),
    ("application/json", b"null"),
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json", b'{"username": 1, "password": [], "name": {}}'),
    ("application/json", b'{"username": "a\\u0000", "password": "x", "remember": "yes"}'),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"%%%&&&==="),
    ("application/x-www-form-urlencoded", b"username=%FF%FE&password=%00"),
    ("application/x-www-form-urlencoded", b"a=1&" * 200),
    ("application/x-www-form-urlencoded", b"\xff\xfe"),
    ("text/plain", b"username=alice"),
    ("multipart/form-data; boundary=x", b"--x--"),
    ("", b"{}"),
]
_POSTS = [
    "/register",
    "/login",
    "/logout",
    "/sessions/revoke",
    "/sessions/revoke-all",
    "/api/register",
    "/api/login",
    "/api/logout",
]
_GETS = ["/", "/sessions", "/api/me", "/api/sessions", "/.well-known/jwks.json", "/healthz"]
_HEADERS: list[dict[str, str | bytes]] = [
    {"Cookie": "coatcheck_session=\x7f; coatcheck_token=..."},
    {"Cookie": "=" * 9000},
    {"Authorization": "Bearer " + "A" * 10000},
    {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."},
    {"Authorization": "Negotiate \u00e9".encode("latin-1")},
    {"Cookie": b"coatcheck_session=\xff\xfe; coatcheck_token=\x80"},
    {"Content-Length": "abc"},
]


def test_fuzz_endpoints_never_500(client: TestClient) -> None:
    register_and_login(client)
    statuses: set[int] = set()
    for path in _POSTS:
        for content_type, body in _BODIES:
            headers = {"Content-Type": content_type} if content_type else {}
            response = client.post(path, content=body, headers=headers, follow_redirects=False)
            assert response.status_code < 500, (path, content_type, body[:40], response.text)
            statuses.add(response.status_code)
            if response.headers.get("content-type", "").startswith("application/json"):
                assert "error" in response.json() or response.status_code < 400
    client.cookies.clear()
    for path in _GETS:
        for headers in _HEADERS:
            response = client.get(path, headers=headers)
            assert response.status_code < 500, (path, headers, response.text)
    assert {400, 415} <= statuses


def test_oversized_body_is_413(client: TestClient) -> None:
    big = json.dumps({"username": "a" * 70_000}).encode()
    response = client.post("/api/login", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    def chunks() -> object:
        for _ in range(20):
            yield b"a" * 8192

    streamed = client.post(
        "/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413


# -- walkthrough fixes: texts, 404, favicon, the register form ------------------------------


def test_unknown_path_is_a_404_page_or_json(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "404: not found" in page.text
    assert 'href="/password"' in page.text
    api = client.get("/api/nothing")
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"
    wrong_method = client.delete("/login")
    assert wrong_method.status_code == 405
    assert "allow" in wrong_method.headers


def test_favicon_answers_without_a_404(client: TestClient) -> None:
    assert client.get("/favicon.ico").status_code == 204


def test_session_texts_explain_the_slot_and_humanise_durations(make_client: MakeClient) -> None:
    client = make_client("session")
    guest = client.get("/").text
    assert "opaque" not in guest
    assert "&lt;slot&gt;.&lt;SHA-256 hex of the token&gt;" in guest
    assert "not secret" in guest
    assert "7 days idle or 30 days in all" in guest
    assert "0:00:00" not in guest
    register_and_login(client)
    home = client.get("/").text
    sid = client.get("/api/me").json()["session_id"]
    slot = sid.partition(".")[0]
    assert f"Session id {slot}." in home
    assert f"The slot {slot} is the same for all your sessions" in home


def test_refused_registration_keeps_username_and_name_not_password(client: TestClient) -> None:
    fields = {"username": "bad name!", "password": "secret password", "name": "Bob <B>"}
    page = client.post("/register", data=fields)
    assert page.status_code == 400
    form = page.text[page.text.index('action="/register"') :]
    assert 'value="bad name!"' in form
    assert 'value="Bob &lt;B&gt;"' in form
    assert "secret password" not in page.text
    client.post("/register", data=ALICE)
    taken = client.post("/register", data={**ALICE, "name": "Other"})
    assert taken.status_code == 409
    assert 'value="alice"' in taken.text[taken.text.index('action="/register"') :]


def test_worker_configuration_carries_every_option() -> None:
    # Workers rebuild the config from the environment: every option the CLI sets survives.
    from datetime import timedelta

    from coatcheck.demo.app import _config_from_env, _config_to_env

    config = DemoConfig(
        mode="hybrid", store_url="memory://", https=True, access_ttl=timedelta(seconds=90),
        dpop_required=True, public_origin="https://example.com", dbsc=False,
        bound_ttl=timedelta(seconds=45), jwt_ttl=timedelta(hours=3),
    )  # fmt: skip
    again = _config_from_env(_config_to_env(config))
    for name in ("mode", "store_url", "https", "access_ttl", "dpop_required", "public_origin",
                 "dbsc", "bound_ttl", "jwt_ttl"):  # fmt: skip
        assert getattr(again, name) == getattr(config, name), name
