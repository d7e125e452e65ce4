"""The Flask extension through Flask's test client: cookie and bearer, CSRF, errors, sync stores."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string, request

from coatcheck.adapters.flask import CoatCheck, current_identity, json_body, login_required
from coatcheck.adapters.wsgi import CsrfMiddleware as WsgiCsrf
from coatcheck.auth import (
    Authenticator,
    AuthResult,
    CookieTransport,
    Identity,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.clock import FrozenClock
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import StoreUnavailable
from coatcheck.policies import CookiePolicy
from coatcheck.revocation import RevocationSet
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore, open_store
from coatcheck.tokens import JWTCodec, Key, KeyRing

from ..csrf.test_rules import FORM, JWT, PROTECTOR, SESSION, TABLE, fill, session_token

SECRET = b"s" * 32


def make_app(authenticator: Authenticator, *, csrf: bool = False) -> tuple[Flask, CoatCheck]:
    app = Flask(__name__)
    cc = CoatCheck(app, authenticator=authenticator,
                   csrf=CsrfProtector(SECRET) if csrf else None)  # fmt: skip

    @app.post("/login")
    def login() -> Any:
        result = cc.login("ada", data={"name": "Ada"}, persistent=bool(app.config.get("REMEMBER")))
        return {"token": result.token, "now": current_identity.user_id}

    @app.post("/logout")
    def logout() -> Any:
        cc.logout()
        return {"ok": True, "identity": bool(current_identity)}

    @app.get("/me")
    @login_required
    def me() -> Any:
        return {"name": current_identity.name, "via": current_identity.via}

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_identity %}{{ current_identity.name }}{% else %}guest{% endif %}"
            " [{{ csrf_token() }}]"
        )

    @app.post("/change")
    @login_required
    def change() -> Any:
        return {"changed": True}

    return app, cc


def _sessions(clock: FrozenClock, store: Any = None) -> Authenticator:
    manager = SessionManager(store if store is not None else MemoryStore(), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock))


def test_login_me_logout_with_a_cookie(clock: FrozenClock) -> None:
    app, _ = make_app(_sessions(clock))
    client = app.test_client()
    guest = client.get("/me", base_url="https://localhost")
    assert guest.status_code == 401
    assert guest.json == {
        "error": "missing_credentials",
        "message": "log in first: no session cookie or bearer token was sent",
    }
    assert guest.headers["www-authenticate"] == "Bearer"
    login = client.post("/login", base_url="https://localhost")
    assert login.json is not None
    assert login.json["now"] == "ada"
    [cookie] = login.headers.getlist("set-cookie")
    assert cookie.startswith("__Host-session=")  # the default name over HTTPS
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "Max-Age" not in cookie  # remember me off: a browser-session cookie
    me = client.get("/me", base_url="https://localhost")
    assert me.json == {"name": "Ada", "via": "cookie"}
    assert client.get("/page", base_url="https://localhost").text == "Ada []"
    logout = client.post("/logout", base_url="https://localhost")
    assert logout.json == {"ok": True, "identity": False}
    assert "Max-Age=0" in logout.headers["set-cookie"]
    assert client.get("/me", base_url="https://localhost").status_code == 401
    assert client.get("/page", base_url="https://localhost").text == "guest []"


def test_bearer_token_and_invalid_token(clock: FrozenClock) -> None:
    app, _ = make_app(_sessions(clock))
    app.config["REMEMBER"] = True
    client = app.test_client()
    token = client.post("/login").json["token"]  # type: ignore[index]
    client.delete_cookie("__Host-session")
    me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json == {"name": "Ada", "via": "bearer"}
    bad = client.get("/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json["error"] == "invalid_credentials"  # type: ignore[index]
    assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_jwt_mode(clock: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256")]), algorithms=["ES256"], clock=clock)
    cookie = CookieTransport("token", clock=clock)
    app, _ = make_app(Authenticator(JWTStrategy(codec, clock=clock), (cookie,)))
    client = app.test_client()
    client.post("/login", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").json == {"name": "Ada", "via": "cookie"}


def test_csrf_refuses_cross_site_and_tokenless_posts(clock: FrozenClock) -> None:
    app, _ = make_app(_sessions(clock), csrf=True)
    client = app.test_client()
    https = {"base_url": "https://localhost"}
    cross = client.post("/login", headers={"Sec-Fetch-Site": "cross-site"}, **https)
    assert cross.status_code == 403
    assert cross.json["error"] == "csrf_cross_origin"  # type: ignore[index]
    same = client.post("/login", headers={"Origin": "https://localhost"}, **https)
    assert same.status_code == 200
    missing = client.post("/change", **https)
    assert missing.status_code == 403
    assert missing.json["error"] == "csrf_token_missing"  # type: ignore[index]
    token = client.get("/page", **https).text.split("[")[1].rstrip("]")
    assert len(token) == 64
    ok = client.post("/change", data={"csrf_token": token}, **https)
    assert ok.json == {"changed": True}
    assert client.post("/change", headers={"X-CSRF-Token": token}, **https).status_code == 200


class DownStore(MemoryStore):
    async def get(self, session_id: str, now: float) -> Any:
        raise StoreUnavailable("the store is down")


def test_store_outage_is_503(clock: FrozenClock) -> None:
    app, _ = make_app(_sessions(clock, DownStore()))
    client = app.test_client()
    client.set_cookie("__Host-session", "a" * 8 + "." + "b" * 43)
    response = client.get("/page")
    assert response.status_code == 503
    assert response.json["error"] == "store_unavailable"  # type: ignore[index]


@pytest.mark.redis
def test_flask_on_sync_redis(redis_url: str, clock: FrozenClock) -> None:
    store = open_store(redis_url + "?prefix=ccflask:", sync=True)
    app, _ = make_app(_sessions(clock, store))
    client = app.test_client()
    client.post("/login", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").json == {"name": "Ada", "via": "cookie"}
    client.post("/logout", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").status_code == 401


@pytest.mark.postgres
def test_flask_on_sync_postgres(postgres_store_url: str, clock: FrozenClock) -> None:
    store = open_store(postgres_store_url, sync=True)
    app, _ = make_app(_sessions(clock, store))
    client = app.test_client()
    client.post("/login", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").json == {"name": "Ada", "via": "cookie"}
    client.post("/logout", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").status_code == 401


@pytest.mark.redis
def test_an_async_store_fails_clearly(redis_url: str, clock: FrozenClock) -> None:
    app, _ = make_app(_sessions(clock, open_store(redis_url)))
    client = app.test_client()
    client.set_cookie("__Host-session", "a" * 8 + "." + "b" * 43)
    response = client.get("/page")
    assert response.status_code == 500
    assert response.json["error"] == "configuration_error"  # type: ignore[index]


# -- CSRF: the core decision table through the extension ----------------------------------------


class FixedAuthenticator:
    """Says the request comes from ``identity``, whatever it carries (the table sets it)."""

    transports = (CookieTransport("sid", CookiePolicy(secure=False)),)

    def __init__(self) -> None:
        self.identity: Identity | None = None

    async def authenticate(self, headers: Any) -> AuthResult:
        return AuthResult(self.identity, presented=self.identity is not None)


def table_app() -> tuple[Flask, FixedAuthenticator]:
    auth = FixedAuthenticator()
    app = Flask(__name__)
    cc = CoatCheck(app, authenticator=auth, csrf=PROTECTOR)  # type: ignore[arg-type]

    @app.route("/x", methods=["GET", "POST", "PUT", "DELETE"])
    def echo() -> Any:
        return b"seen:" + request.get_data()

    @app.get("/page")
    def page() -> str:
        return cc.csrf_token()

    @app.post("/form")
    def form() -> Any:
        return {"username": request.form.get("username"), "token": request.form.get("csrf_token")}

    return app, auth


@TABLE
def test_csrf_decision_table(
    method: str, headers: dict[str, str], identity: Identity | None, body: bytes,
    expected: str | None,
) -> None:  # fmt: skip
    app, auth = table_app()
    auth.identity = identity
    sent = fill(body.decode()).encode()
    filled = {k: fill(v) for k, v in headers.items()}
    client = app.test_client()
    # werkzeug's test client drops a Cookie header: its jar sends them.
    for pair in filled.pop("cookie", "").split("; "):
        if pair:
            client.set_cookie(*pair.split("=", 1))
    environ = {"REQUEST_METHOD": method}  # as sent: werkzeug would upper-case "get"
    response = client.open(
        "/x", method=method, data=sent, headers=filled, environ_overrides=environ
    )
    if expected is None:
        assert response.status_code == 200
        if method == "POST":
            assert response.data == b"seen:" + sent  # the view saw the same body
    else:
        assert response.status_code == 403
        assert response.json["error"] == expected  # type: ignore[index]


def test_guest_login_form_with_the_pre_session_cookie() -> None:
    app, _ = table_app()
    client = app.test_client()
    page = client.get("/page")
    [cookie] = page.headers.getlist("set-cookie")
    assert cookie.startswith("csrf_pre=")  # Secure follows the auth cookie: off here
    token = page.text
    ok = client.post("/form", data={"username": "ada", "csrf_token": token})
    assert ok.json == {"username": "ada", "token": token}  # Flask still parses the form
    assert client.get("/page").headers.getlist("set-cookie") == []  # the cookie is kept
    client.delete_cookie("csrf_pre")
    refused = client.post("/form", data={"username": "ada", "csrf_token": token})
    assert refused.json["error"] == "csrf_token_invalid"  # type: ignore[index]


def test_jwt_page_sets_the_double_submit_cookie() -> None:
    app, auth = table_app()
    auth.identity = JWT
    client = app.test_client()
    page = client.get("/page")
    [cookie] = page.headers.getlist("set-cookie")
    assert cookie.startswith(f"csrf={page.text};")
    assert "HttpOnly" not in cookie
    assert client.post("/x", headers={"X-CSRF-Token": page.text}).status_code == 200
    client.delete_cookie("csrf")
    refused = client.post("/x", headers={"X-CSRF-Token": page.text})
    assert refused.json["error"] == "csrf_token_missing"  # type: ignore[index]


def test_oversized_form_is_refused() -> None:
    app, auth = table_app()
    auth.identity = SESSION
    big = {"csrf_token": session_token(), "a": "x" * (70 * 1024)}
    response = app.test_client().post("/x", data=big)
    assert response.json["error"] == "csrf_token_missing"  # type: ignore[index]


def test_flask_tokens_verify_on_the_wsgi_side() -> None:
    app, _ = table_app()
    page = app.test_client().get("/page")
    pre = page.headers["set-cookie"].split(";")[0]
    seen: list[bytes] = []

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b""]

    middleware = WsgiCsrf(wsgi_app, PROTECTOR, credential_cookies=["sid"],
                          cookie_policy=CookiePolicy(secure=False))  # fmt: skip
    body = f"csrf_token={page.text}".encode()
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": FORM, "HTTP_COOKIE": pre,
    }  # fmt: skip
    b"".join(middleware(environ, lambda status, headers, exc=None: statuses.append(status)))
    assert (statuses, seen) == (["200 OK"], [body])


def test_a_credential_cookie_sent_twice_is_a_guest(clock: FrozenClock) -> None:
    # Issue 12, item 1: neither copy of an ambiguous credential cookie is trusted.
    app, _ = make_app(_sessions(clock))
    client = app.test_client()
    client.post("/login", base_url="https://localhost")
    mine = client.get_cookie("__Host-session")
    assert mine is not None
    attacker = app.test_client()
    attacker.post("/login", base_url="https://localhost")
    theirs = attacker.get_cookie("__Host-session")
    assert theirs is not None
    bare = app.test_client(use_cookies=False)
    header = f"__Host-session={theirs.value}; __Host-session={mine.value}"
    response = bare.get("/me", base_url="https://localhost", headers={"Cookie": header})
    assert response.status_code == 401
    one = {"Cookie": f"__Host-session={mine.value}"}
    assert bare.get("/me", base_url="https://localhost", headers=one).status_code == 200


# -- json_body (issue 12 item 4) ------------------------------------------------------------


def _echo_app(clock: FrozenClock) -> Flask:
    app, _ = make_app(_sessions(clock))

    @app.post("/echo")
    def echo() -> Any:
        body = json_body(max_bytes=1000)
        return {"bytes": str(body).encode().hex()}

    return app


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"a": "\\ud800"}', 400, "invalid_text"),
        (b'{"a": "\\u0000"}', 400, "invalid_text"),
        (b'{"a": "\xed\xa0\x80"}', 400, "invalid_text"),
        (b'{"a": 1e999}', 400, "bad_request"),
        (b"[" * 900, 400, "bad_request"),  # request.get_json(): RecursionError, a 500
        (b'{"a": "' + b"x" * 2000 + b'"}', 413, "payload_too_large"),
    ],
)
def test_json_body_refuses_with_a_code(
    clock: FrozenClock, body: bytes, status: int, code: str
) -> None:
    client = _echo_app(clock).test_client()
    answer = client.post("/echo", data=body, content_type="application/json")
    assert (answer.status_code, answer.get_json()["error"]) == (status, code)


def test_json_body_reads_valid_json_and_wants_the_media_type(clock: FrozenClock) -> None:
    client = _echo_app(clock).test_client()
    assert client.post("/echo", json={"a": "é"}).status_code == 200
    wrong = client.post("/echo", data=b'{"a": 1}', content_type="text/plain")
    assert (wrong.status_code, wrong.get_json()["error"]) == (400, "bad_request")
    chunked = client.post(
        "/echo", input_stream=io.BytesIO(b'{"a": "' + b"x" * 2000 + b'"}'),
        headers={"content-type": "application/json", "transfer-encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # the server de-chunks (gunicorn)
    )  # fmt: skip
    assert chunked.status_code == 413


def test_logout_publishes_the_revocation(clock: FrozenClock) -> None:
    # Issue 12 item 6: the adapter's logout goes through the manager, which publishes.
    revoked = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock, revocations=revoked)
    app, _ = make_app(Authenticator(SessionStrategy(manager, clock=clock)))
    client = app.test_client()
    client.post("/login", base_url="https://localhost")
    assert client.get("/me", base_url="https://localhost").status_code == 200
    client.post("/logout", base_url="https://localhost")
    assert len(revoked) == 1


def _expired(response: Any, name: str) -> bool:
    cookies = response.headers.getlist("set-cookie")
    return any(v.startswith(f"{name}=;") and "Max-Age=0" in v for v in cookies)


def test_logout_clears_the_csrf_cookies(clock: FrozenClock) -> None:
    # Regression: only the demo cleared them; with the extension a jwt login's
    # double-submit cookie outlived the logout.
    codec = JWTCodec(Key.generate("HS256"), algorithms=["HS256"], clock=clock)
    app, _ = make_app(Authenticator(JWTStrategy(codec, clock=clock)), csrf=True)
    client = app.test_client()
    https = {"base_url": "https://localhost", "headers": {"sec-fetch-site": "same-origin"}}
    client.get("/page", **https)  # a guest's form: the pre-session cookie
    assert client.get_cookie("__Host-csrf_pre") is not None
    client.post("/login", **https)
    token = client.get("/page", **https).text.rpartition("[")[2].rstrip("]")
    assert client.get_cookie("__Host-csrf") is not None  # jwt mode: the double submit
    out = client.post("/logout", base_url="https://localhost",
                      headers={"sec-fetch-site": "same-origin", "x-csrf-token": token})  # fmt: skip
    assert out.status_code == 200
    assert _expired(out, "__Host-csrf")
    assert _expired(out, "__Host-csrf_pre")
    assert client.get_cookie("__Host-csrf") is None
    # An ordinary request clears nothing.
    client.post("/login", **https)
    assert not _expired(client.get("/page", **https), "__Host-csrf")
