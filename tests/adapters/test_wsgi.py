"""The WSGI adapter with raw environ / start_response: the ASGI adapter's behaviour, sync."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pytest

from coatcheck.adapters.wsgi import (
    IDENTITY_KEY,
    AuthMiddleware,
    CsrfMiddleware,
    csrf_token,
    identity_of,
    request_headers,
)
from coatcheck.auth import Authenticator, CookieTransport, JWTStrategy, SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.csrf import CsrfProtector
from coatcheck.csrf.rules import binding_of
from coatcheck.errors import StoreUnavailable
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.sync import run_sync
from coatcheck.tokens import JWTCodec, Key, KeyRing

from ..csrf.test_rules import FORM, JWT, JWT_PAIR, PROTECTOR, SESSION, TABLE, fill, session_token
from .test_csrf_middleware import call as asgi_call
from .test_csrf_middleware import make as asgi_make

SECRET = b"k" * 32


def _environ(
    method: str = "GET", path: str = "/", body: bytes = b"", **headers: str
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "app.test",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": "app.test",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        if name == "content_type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper()] = value
    return environ


class Recorder:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]


def echo_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    identity = identity_of(environ)
    body = json.dumps({
        "user": identity.user_id if identity else None,
        "via": identity.via if identity else None,
        "body": environ["wsgi.input"].read().decode(),
        "csrf": bool(csrf_token(environ)),
    }).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def _call(app: Any, environ: dict[str, Any]) -> tuple[Recorder, dict[str, Any]]:
    recorder = Recorder()
    body = b"".join(app(environ, recorder))
    return recorder, json.loads(body)


@pytest.fixture
def manager(clock: FrozenClock) -> SessionManager:
    return SessionManager(MemoryStore(), clock=clock)


@pytest.fixture
def authenticator(manager: SessionManager, clock: FrozenClock) -> Authenticator:
    cookie = CookieTransport("sid", CookiePolicy(), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock), (cookie,))


def test_headers_come_from_the_environ() -> None:
    environ = _environ("POST", body=b"x", cookie="a=1", content_type="text/plain", x_thing="y")
    headers = request_headers(environ)
    assert headers == {
        "host": "app.test", "cookie": "a=1", "x-thing": "y",
        "content-type": "text/plain", "content-length": "1",
    }  # fmt: skip
    assert request_headers(environ) is headers


def test_guest_session_and_forged_cookie(authenticator: Authenticator) -> None:
    app = AuthMiddleware(echo_app, authenticator)
    recorder, out = _call(app, _environ())
    assert (recorder.status, out["user"]) == ("200 OK", None)
    login = run_sync(authenticator.login("ada", headers={}))
    _, out = _call(app, _environ(cookie=f"sid={login.token}"))
    assert (out["user"], out["via"]) == ("ada", "cookie")
    recorder, out = _call(app, _environ(cookie="sid=forged.value"))
    assert out["user"] is None
    assert recorder.cookies() == [c for _, c in CookieTransport("sid").clear()]


def test_a_renewed_cookie_is_appended(
    authenticator: Authenticator, clock: FrozenClock
) -> None:
    login = run_sync(authenticator.login("ada", headers={}))
    clock.advance(2 * 3600)
    app = AuthMiddleware(echo_app, authenticator)
    recorder, out = _call(app, _environ(cookie=f"sid={login.token}"))
    assert out["user"] == "ada"
    [renewed] = recorder.cookies()
    assert renewed.startswith(f"sid={login.token};")
    assert "Max-Age=" in renewed


def test_excluded_paths_skip_authentication(authenticator: Authenticator) -> None:
    app = AuthMiddleware(echo_app, authenticator, exclude_paths=["/static"])
    login = run_sync(authenticator.login("ada", headers={}))
    _, out = _call(app, _environ(path="/static/app.css", cookie=f"sid={login.token}"))
    assert out["user"] is None
    _, out = _call(app, _environ(path="/staticky", cookie=f"sid={login.token}"))
    assert out["user"] == "ada"


class DownStore(MemoryStore):
    async def get(self, session_id: str, now: float) -> Any:
        raise StoreUnavailable("the store is down")


def test_store_outage_is_503_json(clock: FrozenClock) -> None:
    manager = SessionManager(DownStore(), clock=clock)
    authenticator = Authenticator(SessionStrategy(manager, clock=clock))
    login_token = run_sync(SessionManager(MemoryStore(), clock=clock).create("ada"))[0]
    recorder = Recorder()
    body = b"".join(AuthMiddleware(echo_app, authenticator)(
        _environ(cookie=f"__Host-session={login_token}"), recorder))
    assert recorder.status == "503 Service Unavailable"
    assert json.loads(body)["error"] == "store_unavailable"
    assert ("retry-after", "5") in recorder.headers


def test_jwt_strategy_over_bearer(clock: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256")]), algorithms=["ES256"], clock=clock)
    authenticator = Authenticator(JWTStrategy(codec, clock=clock))
    token = run_sync(authenticator.login("bob", headers={})).token
    app = AuthMiddleware(echo_app, authenticator)
    _, out = _call(app, _environ(authorization=f"Bearer {token}"))
    assert (out["user"], out["via"]) == ("bob", "bearer")


# -- CSRF ----------------------------------------------------------------------------------------


@pytest.fixture
def csrf_app(authenticator: Authenticator) -> Any:
    return AuthMiddleware(CsrfMiddleware(echo_app, CsrfProtector(SECRET)), authenticator)


def test_cross_origin_post_is_refused(csrf_app: Any) -> None:
    recorder = Recorder()
    body = b"".join(csrf_app(_environ("POST", sec_fetch_site="cross-site"), recorder))
    assert recorder.status == "403 Forbidden"
    assert json.loads(body)["error"] == "csrf_cross_origin"
    recorder, _ = _call(csrf_app, _environ("POST", origin="https://app.test"))
    assert recorder.status == "200 OK"


def test_cookie_session_needs_its_token_in_the_form_or_header(
    csrf_app: Any, authenticator: Authenticator, manager: SessionManager
) -> None:
    login = run_sync(authenticator.login("ada", headers={}))
    cookie = f"sid={login.token}"
    protector = CsrfProtector(SECRET)
    recorder = Recorder()
    environ = _environ("POST", cookie=cookie, sec_fetch_site="same-origin")
    body = b"".join(csrf_app(environ, recorder))
    assert recorder.status == "403 Forbidden"
    assert json.loads(body)["error"] == "csrf_token_missing"
    found = binding_of(login.identity)
    assert found is not None
    binding = found[0]
    # Bound as the ASGI CsrfMiddleware binds it: a bare session id is not accepted.
    bare = protector.issue(login.identity.session_id or "")
    recorder = Recorder()
    body = b"".join(csrf_app(_environ("POST", cookie=cookie, x_csrf_token=bare), recorder))
    assert json.loads(body)["error"] == "csrf_token_invalid"
    token = protector.issue(binding)
    form = f"a=1&csrf_token={token}".encode()
    recorder, out = _call(csrf_app, _environ(
        "POST", body=form, cookie=cookie, content_type="application/x-www-form-urlencoded"))
    assert recorder.status == "200 OK"
    assert out["body"] == form.decode()  # the app still reads the whole body
    recorder, _ = _call(csrf_app, _environ("POST", cookie=cookie, x_csrf_token=token))
    assert recorder.status == "200 OK"
    other = protector.issue("another-session")
    recorder = Recorder()
    body = b"".join(csrf_app(_environ("POST", cookie=cookie, x_csrf_token=other), recorder))
    assert json.loads(body)["error"] == "csrf_token_invalid"
    _, out = _call(csrf_app, _environ(cookie=cookie))
    assert out["csrf"] is True


def test_a_jwt_cookie_token_survives_a_sliding_reissue(clock: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256")]), algorithms=["ES256"], clock=clock)
    cookie = CookieTransport("token", clock=clock)
    authenticator = Authenticator(JWTStrategy(codec, clock=clock), (cookie,))
    protector = CsrfProtector(SECRET)
    app = AuthMiddleware(CsrfMiddleware(echo_app, protector), authenticator)
    login = run_sync(authenticator.login("bob", headers={}))
    found = binding_of(login.identity)
    assert found is not None
    binding = found[0]
    token = protector.issue(binding)  # rendered into a form before the re-issue
    clock.advance(7 * 3600)  # past half the 12 h lifetime: the next request re-issues
    # jwt mode is a signed double submit: the cookie and its echo.
    cookies = f"token={login.token}; __Host-csrf={token}"
    recorder, out = _call(app, _environ("POST", cookie=cookies, x_csrf_token=token))
    assert (recorder.status, out["user"]) == ("200 OK", "bob")
    assert any(c.startswith("token=") for c in recorder.cookies())  # a new JWT, new jti


def test_bearer_requests_need_no_token(clock: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256")]), algorithms=["ES256"], clock=clock)
    authenticator = Authenticator(JWTStrategy(codec, clock=clock))
    app = AuthMiddleware(CsrfMiddleware(echo_app, CsrfProtector(SECRET)), authenticator)
    token = run_sync(authenticator.login("bob", headers={})).token
    recorder, out = _call(app, _environ("POST", authorization=f"Bearer {token}"))
    assert (recorder.status, out["user"]) == ("200 OK", "bob")


# -- CSRF: the core decision table through the WSGI middleware ---------------------------------


def _raw_environ(
    method: str, headers: dict[str, str], body: bytes = b"", path: str = "/x"
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "app.example",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
    }  # fmt: skip
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ


def _page_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    token = csrf_token(environ) if environ["PATH_INFO"] == "/page" else ""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("content-type", "text/plain")])
    return [token.encode() if token else b"seen:" + body]


def _csrf(app: Any = _page_app, **options: Any) -> CsrfMiddleware:
    options.setdefault("credential_cookies", ["sid"])
    options.setdefault("cookie_policy", CookiePolicy(secure=False))
    return CsrfMiddleware(app, PROTECTOR, **options)


def _run(
    mw: CsrfMiddleware, environ: dict[str, Any], identity: Any = None
) -> tuple[Recorder, bytes]:
    environ[IDENTITY_KEY] = identity
    recorder = Recorder()
    return recorder, b"".join(mw(environ, recorder))


@TABLE
def test_csrf_decision_table(
    method: str, headers: dict[str, str], identity: Any, body: bytes, expected: str | None
) -> None:
    sent = fill(body.decode()).encode()
    filled = {k: fill(v) for k, v in headers.items()}
    recorder, out = _run(_csrf(), _raw_environ(method, filled, sent), identity)
    if expected is None:
        assert (recorder.status, out) == ("200 OK", b"seen:" + sent)  # the app saw the body
    else:
        assert recorder.status == "403 Forbidden"
        assert json.loads(out)["error"] == expected


def test_oversized_or_undeclared_form_bodies_are_not_read() -> None:
    mw = _csrf(max_body=100)
    big = b"csrf_token=" + session_token().encode() + b"&a=" + b"x" * 200
    _, out = _run(mw, _raw_environ("POST", {"content-type": FORM}, big), SESSION)
    assert json.loads(out)["error"] == "csrf_token_missing"
    environ = _raw_environ("POST", {"content-type": FORM}, big)
    del environ["CONTENT_LENGTH"]  # PEP 3333: no length, nothing to read
    _, out = _run(mw, environ, SESSION)
    assert json.loads(out)["error"] == "csrf_token_missing"
    headers = {"content-type": FORM, "x-csrf-token": session_token()}
    _, out = _run(mw, _raw_environ("POST", headers, big), SESSION)
    assert out == b"seen:" + big  # a header token: the body is left alone


@pytest.mark.parametrize("declared", ["\u00b2", "\u0661\u0662", "12abc", "-1"])
def test_a_content_length_that_is_not_ascii_digits_is_no_500(declared: str) -> None:
    # Issue 12 item 4: "²".isdigit() is true, int("²") raised ValueError (a 500).
    environ = _raw_environ("POST", {"content-type": FORM}, b"csrf_token=x")
    environ["CONTENT_LENGTH"] = declared
    recorder, out = _run(_csrf(), environ, SESSION)
    assert (recorder.status, json.loads(out)["error"]) == ("403 Forbidden", "csrf_token_missing")


def test_guest_page_sets_the_pre_session_cookie_once() -> None:
    recorder, token = _run(_csrf(), _raw_environ("GET", {}, path="/page"))
    [cookie] = recorder.cookies()
    assert cookie.startswith("csrf_pre=")
    assert "HttpOnly" in cookie
    pre = cookie.split(";")[0].split("=", 1)[1]
    PROTECTOR.verify_token(token.decode(), "pre\x00" + pre)
    # The login form posts it back: a guest form with the pre-session pair passes.
    form = b"username=a&csrf_token=" + token
    headers = {"content-type": FORM, "cookie": f"csrf_pre={pre}"}
    recorder, out = _run(_csrf(), _raw_environ("POST", headers, form))
    assert (recorder.status, out) == ("200 OK", b"seen:" + form)
    again, _ = _run(_csrf(), _raw_environ("GET", {"cookie": f"csrf_pre={pre}"}, path="/page"))
    assert again.cookies() == []


def test_jwt_page_sets_the_double_submit_cookie() -> None:
    mw = _csrf(cookie_policy=CookiePolicy())
    recorder, token = _run(mw, _raw_environ("GET", {}, path="/page"), JWT)
    [cookie] = recorder.cookies()
    assert cookie.startswith(f"__Host-csrf={token.decode()};")
    assert "HttpOnly" not in cookie
    kept, same = _run(mw, _raw_environ("GET", {"cookie": f"__Host-csrf={JWT_PAIR}"}, path="/page"),
                      JWT)  # fmt: skip
    assert (kept.cookies(), same.decode()) == ([], JWT_PAIR)


def test_exempt_paths_and_no_middleware() -> None:
    environ = _raw_environ("POST", {"sec-fetch-site": "cross-site"}, path="/hooks/x")
    recorder, _ = _run(_csrf(exempt_paths=["/hooks"]), environ)
    assert recorder.status == "200 OK"
    assert csrf_token({}) == ""


@pytest.mark.anyio
async def test_tokens_cross_between_asgi_and_wsgi() -> None:
    # A guest page rendered by the ASGI side, its login form posted to the WSGI side ...
    page = await asgi_call(asgi_make(), "GET", path="/page")
    pre = page.cookies()[0].split(";")[0].split("=", 1)[1]
    form = f"csrf_token={page.scope['token']}".encode()
    headers = {"content-type": FORM, "cookie": f"csrf_pre={pre}"}
    recorder, _ = _run(_csrf(), _raw_environ("POST", headers, form))
    assert recorder.status == "200 OK"
    # ... and a jwt page rendered by the WSGI side, its double submit posted to the ASGI side.
    recorder, token = _run(_csrf(), _raw_environ("GET", {}, path="/page"), JWT)
    cookie = recorder.cookies()[0].split(";")[0]
    posted = await asgi_call(
        asgi_make(), headers={"cookie": cookie, "x-csrf-token": token.decode()}, identity=JWT
    )
    assert posted.status == 200


def test_a_credential_cookie_sent_twice_is_a_guest(authenticator: Authenticator) -> None:
    # Issue 12, item 1: neither copy of an ambiguous credential cookie is trusted.
    app = AuthMiddleware(echo_app, authenticator)
    mine = run_sync(authenticator.login("victim", headers={}))
    theirs = run_sync(authenticator.login("attacker", headers={}))
    _, out = _call(app, _environ(cookie=f"sid={theirs.token}; sid={mine.token}"))
    assert out["user"] is None
    _, out = _call(app, _environ(cookie=f"sid={mine.token}"))
    assert out["user"] == "victim"


def test_logout_clears_the_csrf_cookies() -> None:
    # Regression: only the demo cleared them; a jwt login's double-submit cookie
    # outlived the logout behind the WSGI middleware.
    from werkzeug.test import Client

    authenticator = Authenticator(JWTStrategy(JWTCodec(Key.generate("HS256"))))

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, headers = environ["PATH_INFO"], request_headers(environ)
        out: list[tuple[str, str]] = [("content-type", "text/plain")]
        body = b""
        if path == "/page":
            body = csrf_token(environ).encode()
        elif path == "/login":
            out += run_sync(authenticator.login("ada", headers=headers)).set_headers
        elif path == "/logout":
            out += run_sync(authenticator.logout(headers))
        start_response("200 OK", out)
        return [body]

    client = Client(AuthMiddleware(CsrfMiddleware(app, PROTECTOR), authenticator))
    same = {"base_url": "https://localhost", "headers": {"sec-fetch-site": "same-origin"}}
    client.get("/page", **same)
    client.post("/login", **same)
    token = client.get("/page", **same).get_data(as_text=True)
    assert client.get_cookie("__Host-csrf") is not None
    out = client.post("/logout", base_url="https://localhost",
                      headers={"sec-fetch-site": "same-origin", "x-csrf-token": token})  # fmt: skip
    expired = {v.partition("=")[0] for v in out.headers.getlist("set-cookie") if "Max-Age=0" in v}
    assert expired == {"__Host-session", "__Host-csrf", "__Host-csrf_pre"}
    assert client.get_cookie("__Host-csrf") is None
