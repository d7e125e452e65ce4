"""The ASGI CsrfMiddleware with raw scope/receive/send: the core table through it, the glue.

The decisions are :mod:`coatcheck.csrf.rules` (tests/csrf/test_rules.py holds the table);
here: the same rows end to end, the body buffering and replay, refusals, cookies on responses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from coatcheck.adapters.asgi import IDENTITY_KEY, Message, Receive, Scope, Send
from coatcheck.adapters.csrf import CSRF_KEY, CsrfMiddleware, csrf_token
from coatcheck.auth import Identity
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import ConfigurationError, CookieError
from coatcheck.policies import CookiePolicy, CsrfPolicy

from ..csrf.test_rules import (
    FORM,
    JWT,
    JWT_PAIR,
    PROTECTOR,
    SECRET,
    SESSION,
    TABLE,
    fill,
    session_token,
)


@dataclass
class Outcome:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    app_body: bytes | None = None
    scope: Scope = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        if self.status != 403:
            return None
        if self.body.startswith(b"{"):
            return str(json.loads(self.body)["error"])
        return "html"

    def cookies(self) -> list[str]:
        return [v.decode() for k, v in self.headers if k == b"set-cookie"]


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    scope["app_body"] = body
    if scope.get("path") == "/page":
        token = csrf_token(scope)
        scope["token"] = token
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _with_identity(app: Any, identity: Identity | None) -> Any:
    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope[IDENTITY_KEY] = identity
        await app(scope, receive, send)

    return outer


async def call(
    middleware: CsrfMiddleware,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    *,
    identity: Identity | None = None,
    chunks: Sequence[bytes] = (b"",),
    path: str = "/x",
) -> Outcome:
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()],
    }
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await _with_identity(middleware, identity)(scope, receive, send)
    start, body = sent[0], sent[1]
    return Outcome(
        start["status"], list(start["headers"]), body["body"], scope.get("app_body"), scope
    )


def make(**options: Any) -> CsrfMiddleware:
    options.setdefault("credential_cookies", ["sid"])
    options.setdefault("cookie_policy", CookiePolicy(secure=False))
    return CsrfMiddleware(_inner, PROTECTOR, **options)


@pytest.mark.anyio
@TABLE
async def test_decision_table(
    method: str,
    headers: dict[str, str],
    identity: Identity | None,
    body: bytes,
    expected: str | None,
) -> None:
    filled = {k: fill(v) for k, v in headers.items()}
    sent = fill(body.decode()).encode()
    outcome = await call(make(), method, filled, identity=identity, chunks=(sent,))
    assert outcome.error == expected, outcome.body
    if expected is None:
        assert outcome.status == 200
        assert outcome.app_body == sent  # the app saw the same body
    else:
        assert outcome.app_body is None  # refused before the app ran


@pytest.mark.anyio
async def test_body_in_chunks_is_replayed_whole() -> None:
    body = b"a=" + b"x" * 5000 + b"&csrf_token=" + session_token().encode()
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    outcome = await call(make(), headers={"content-type": FORM}, identity=SESSION, chunks=chunks)
    assert outcome.status == 200
    assert outcome.app_body == body


@pytest.mark.anyio
async def test_oversized_form_is_refused_without_reading_it_all() -> None:
    mw = make(max_body=100)
    big = b"csrf_token=" + session_token().encode() + b"&a=" + b"x" * 200
    outcome = await call(mw, headers={"content-type": FORM}, identity=SESSION, chunks=(big,))
    assert outcome.error == "csrf_token_missing"
    declared = await call(
        mw, headers={"content-type": FORM, "content-length": "999999"}, identity=SESSION
    )
    assert declared.error == "csrf_token_missing"
    # With the token in the header the body is not buffered at all: any size passes.
    header = await call(
        mw, headers={"content-type": FORM, "x-csrf-token": session_token()}, identity=SESSION,
        chunks=(big,),
    )
    assert header.status == 200


@pytest.mark.anyio
@pytest.mark.parametrize("declared", ["\u00b2", "\u00b9\u00b2", "12abc", "-1", ""])
async def test_a_content_length_that_is_not_ascii_digits_is_no_500(declared: str) -> None:
    # Issue 12 item 4: "²".isdigit() is true, int("²") raised ValueError (a 500).
    body = b"csrf_token=" + session_token().encode()
    outcome = await call(
        make(), headers={"content-type": FORM, "content-length": declared}, identity=SESSION,
        chunks=(body,),
    )  # fmt: skip
    assert (outcome.status, outcome.app_body) == (200, body)  # read up to the limit instead


@pytest.mark.anyio
async def test_refusal_is_html_for_browsers_and_json_otherwise() -> None:
    mw = make()
    as_json = await call(mw, headers={"sec-fetch-site": "cross-site"})
    assert dict(as_json.headers)[b"content-type"] == b"application/json"
    assert json.loads(as_json.body)["error"] == "csrf_cross_origin"
    assert dict(as_json.headers)[b"cache-control"] == b"no-store"
    as_html = await call(mw, headers={"sec-fetch-site": "cross-site", "accept": "text/html,*/*"})
    assert as_html.status == 403
    assert dict(as_html.headers)[b"content-type"].startswith(b"text/html")
    assert b"csrf_cross_origin" in as_html.body
    custom = make(html_error=lambda exc: f"<p>{exc.code}</p>")
    page = await call(custom, headers={"sec-fetch-site": "cross-site", "accept": "text/html"})
    assert page.body == b"<p>csrf_cross_origin</p>"


@pytest.mark.anyio
async def test_page_token_sets_pre_session_cookie_once() -> None:
    outcome = await call(make(), "GET", path="/page")
    [cookie] = outcome.cookies()
    assert cookie.startswith("csrf_pre=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    pre = cookie.split(";")[0].split("=", 1)[1]
    PROTECTOR.verify_token(outcome.scope["token"], "pre\x00" + pre)
    again = await call(make(), "GET", {"cookie": f"csrf_pre={pre}"}, path="/page")
    assert again.cookies() == []
    PROTECTOR.verify_token(again.scope["token"], "pre\x00" + pre)


@pytest.mark.anyio
async def test_page_token_in_session_mode_needs_no_cookie() -> None:
    outcome = await call(make(), "GET", identity=SESSION, path="/page")
    assert outcome.cookies() == []
    PROTECTOR.verify_token(outcome.scope["token"], "session\x00" + (SESSION.session_id or ""))


@pytest.mark.anyio
async def test_jwt_page_sets_readable_double_submit_cookie() -> None:
    outcome = await call(make(), "GET", identity=JWT, path="/page")
    [cookie] = outcome.cookies()
    assert cookie.startswith(f"csrf={outcome.scope['token']};")
    assert "HttpOnly" not in cookie  # scripts echo it
    # An existing, well-bound cookie is reused; a stale one (another login) replaced.
    kept = await call(make(), "GET", {"cookie": f"csrf={JWT_PAIR}"}, identity=JWT, path="/page")
    assert kept.cookies() == []
    assert kept.scope["token"] == JWT_PAIR
    stale = PROTECTOR.issue("login\x00u1\x001.0")
    replaced = await call(make(), "GET", {"cookie": f"csrf={stale}"}, identity=JWT, path="/page")
    assert len(replaced.cookies()) == 1
    assert replaced.scope["token"] != stale


@pytest.mark.anyio
async def test_jwt_without_auth_time_binds_to_jti() -> None:
    identity = Identity(user_id="u1", mode="jwt", claims={"jti": "j1"})
    outcome = await call(make(), "GET", identity=identity, path="/page")
    PROTECTOR.verify_token(outcome.scope["token"], "jti\x00j1")


@pytest.mark.anyio
async def test_https_cookies_get_the_host_prefix() -> None:
    mw = make(cookie_policy=CookiePolicy())
    assert mw.cookie_names == ("__Host-csrf_pre", "__Host-csrf")
    outcome = await call(mw, "GET", path="/page")
    [cookie] = outcome.cookies()
    assert cookie.startswith("__Host-csrf_pre=")
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie
    jwt = await call(mw, "GET", identity=JWT, path="/page")
    assert jwt.cookies()[0].startswith("__Host-csrf=")


@pytest.mark.anyio
async def test_exempt_paths_and_other_scopes_pass_untouched() -> None:
    mw = make(exempt_paths=["/hooks"])
    hook = await call(mw, headers={"sec-fetch-site": "cross-site"}, path="/hooks/github")
    assert hook.status == 200
    assert CSRF_KEY not in hook.scope
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        return None

    await CsrfMiddleware(app, PROTECTOR)({"type": "lifespan"}, nothing, ignore)
    await CsrfMiddleware(app, PROTECTOR)({"type": "websocket", "headers": []}, nothing, ignore)
    assert seen == ["lifespan", "websocket"]


def test_csrf_token_without_middleware_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        csrf_token({"type": "http"})


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        make(max_body=0)
    with pytest.raises(CookieError):
        CsrfMiddleware(_inner, CsrfProtector(SECRET, policy=CsrfPolicy(cookie_name="bad name")))


def test_repr_shows_no_secret() -> None:
    text = repr(make())
    assert SECRET not in text
    assert "CsrfMiddleware" in text


@pytest.mark.anyio
async def test_http_origin_is_refused_when_the_own_origin_is_https() -> None:
    # Regression (issue 12, item 9): a bearer-authenticated POST (no token needed) from a
    # page on http://app.example reached an app configured as https://app.example.
    bearer = Identity(user_id="u1", mode="jwt", via="bearer")
    sent = {"host": "app.example", "origin": "http://app.example", "content-type": "text/plain"}
    outcome = await call(make(own_origin="https://app.example"), "POST", sent, identity=bearer)
    assert (outcome.status, outcome.error) == (403, "csrf_cross_origin")
    outcome = await call(
        make(own_origin="https://app.example"),
        "POST",
        {**sent, "origin": "https://app.example"},
        identity=bearer,
    )
    assert outcome.status == 200
    # Without an own origin the scheme is unknown, and Go's rule (host only) applies.
    assert (await call(make(), "POST", sent, identity=bearer)).status == 200
    with pytest.raises(ConfigurationError, match="trailing '/'"):
        make(own_origin="https://app.example/")


def test_logout_through_starlette_clears_the_csrf_cookies() -> None:
    # Regression: only the demo cleared them; a jwt login's double-submit cookie
    # outlived the logout in every app using the middleware.
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from coatcheck.adapters.asgi import AuthMiddleware, request_headers
    from coatcheck.auth import Authenticator, JWTStrategy
    from coatcheck.tokens import JWTCodec, Key

    authenticator = Authenticator(JWTStrategy(JWTCodec(Key.generate("HS256"))))

    async def page(request: Request) -> Response:
        return PlainTextResponse(csrf_token(request.scope))

    async def login(request: Request) -> Response:
        result = await authenticator.login("ada", headers=request_headers(request.scope))
        return PlainTextResponse("in", headers=dict(result.set_headers))

    async def logout(request: Request) -> Response:
        response = PlainTextResponse("out")
        for name, value in await authenticator.logout(request_headers(request.scope)):
            response.headers.append(name, value)
        return response

    app = Starlette(
        routes=[Route("/page", page), Route("/login", login, methods=["POST"]),
                Route("/logout", logout, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware, authenticator=authenticator),
                    Middleware(CsrfMiddleware, protector=PROTECTOR)],
    )  # fmt: skip
    same = {"sec-fetch-site": "same-origin"}
    with TestClient(app, base_url="https://testserver", headers=same) as c:
        c.get("/page")
        c.post("/login")
        token = c.get("/page").text
        assert {"__Host-csrf", "__Host-csrf_pre"} <= set(c.cookies)
        out = c.post("/logout", headers={"x-csrf-token": token})
        assert out.status_code == 200
        expired = [v for v in out.headers.get_list("set-cookie") if "Max-Age=0" in v]
        assert {v.partition("=")[0] for v in expired} == {
            "__Host-session", "__Host-csrf", "__Host-csrf_pre"
        }
        assert "__Host-csrf" not in c.cookies
        c.post("/login")
        assert not [v for v in c.get("/page").headers.get_list("set-cookie") if "Max-Age=0" in v]
