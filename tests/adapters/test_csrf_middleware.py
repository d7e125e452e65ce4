"""CsrfMiddleware with raw ASGI scope/receive/send: both layers, every binding, the body replay."""

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

SECRET = "s" * 32
PROTECTOR = CsrfProtector(SECRET, policy=CsrfPolicy(trusted_origins=["https://admin.example"]))
SESSION = Identity(user_id="u1", mode="session", session_id="aaaa.0123", via="cookie")
JWT = Identity(user_id="u1", mode="jwt", auth_time=1_700_000_000.0, claims={"jti": "j1"})
BEARER = Identity(user_id="u1", mode="session", session_id="aaaa.0123", via="bearer")
PRE = "P" * 43
FORM = "application/x-www-form-urlencoded"


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


def session_token() -> str:
    return PROTECTOR.issue("session\x00" + SESSION.session_id)  # type: ignore[operator]


def pre_token() -> str:
    return PROTECTOR.issue("pre\x00" + PRE)


def jwt_token() -> str:
    return PROTECTOR.issue(f"login\x00u1\x00{JWT.auth_time!r}")


# -- the decision table: (name, method, headers, identity, body, expected error or None) ----

_CASES: list[tuple[str, str, dict[str, str], Identity | None, bytes, str | None]] = [
    # Layer 1 (Go CrossOriginProtection), whatever the credential
    ("get passes", "GET", {"sec-fetch-site": "cross-site"}, SESSION, b"", None),
    ("head passes", "HEAD", {"origin": "https://evil.example"}, SESSION, b"", None),
    ("options passes", "OPTIONS", {"sec-fetch-site": "cross-site"}, None, b"", None),
    ("cross-site post", "POST", {"sec-fetch-site": "cross-site"}, None, b"", "csrf_cross_origin"),
    ("same-site post", "POST", {"sec-fetch-site": "same-site"}, None, b"", "csrf_cross_origin"),
    ("cross-site bearer", "POST", {"sec-fetch-site": "cross-site"}, BEARER, b"",
     "csrf_cross_origin"),
    ("foreign origin", "POST", {"origin": "https://evil.example", "host": "app.example"}, None,
     b"", "csrf_cross_origin"),
    ("origin null", "POST", {"origin": "null", "host": "app.example"}, None, b"",
     "csrf_cross_origin"),
    ("cross-site put", "PUT", {"sec-fetch-site": "cross-site"}, None, b"", "csrf_cross_origin"),
    ("cross-site delete", "DELETE", {"sec-fetch-site": "cross-site"}, None, b"",
     "csrf_cross_origin"),
    ("lower-case get is unsafe", "get", {"sec-fetch-site": "cross-site"}, None, b"",
     "csrf_cross_origin"),
    ("trusted origin", "POST", {"sec-fetch-site": "cross-site", "origin": "https://admin.example"},
     None, b"", None),
    ("origin equals host", "POST", {"origin": "http://app.example", "host": "app.example"}, None,
     b"", None),
    # Layer 2 skipped: bearer, or no cookie credential and not a form
    ("bearer, no token", "POST", {"sec-fetch-site": "same-origin"}, BEARER, b"", None),
    ("json guest, no cookie", "POST", {"content-type": "application/json"}, None, b"{}", None),
    ("bare post, no cookie", "POST", {}, None, b"", None),
    # Layer 2 required: cookie identity
    ("session, no token", "POST", {"cookie": "sid=x"}, SESSION, b"", "csrf_token_missing"),
    ("session, same-origin but no token", "POST", {"sec-fetch-site": "same-origin"}, SESSION, b"",
     "csrf_token_missing"),
    ("session, garbage token", "POST", {"x-csrf-token": "garbage"}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, token of another session", "POST",
     {"x-csrf-token": PROTECTOR.issue("session\x00bbbb.9999")}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, pre-session token", "POST", {"x-csrf-token": "@pre", "cookie": f"csrf_pre={PRE}"},
     SESSION, b"", "csrf_token_invalid"),
    ("session, raw-binding token", "POST",
     {"x-csrf-token": PROTECTOR.issue(SESSION.session_id or "")}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, header token", "POST", {"x-csrf-token": "@session"}, SESSION, b"", None),
    ("session, form token", "POST", {"content-type": FORM}, SESSION, b"a=1&csrf_token=@session",
     None),
    ("session, form token in wrong field", "POST", {"content-type": FORM}, SESSION,
     b"csrf=@session", "csrf_token_missing"),
    # Layer 2: jwt double submit, bound to the login
    ("jwt, header but no cookie", "POST", {"x-csrf-token": "@jwt"}, JWT, b"", "csrf_token_missing"),
    ("jwt, cookie but no echo", "POST", {"cookie": "csrf=@jwt"}, JWT, b"", "csrf_token_missing"),
    ("jwt, cookie and echo differ", "POST",
     {"cookie": "csrf=@jwt", "x-csrf-token": PROTECTOR.issue(f"login\x00u1\x00{JWT.auth_time!r}")},
     JWT, b"", "csrf_token_invalid"),
    ("jwt, naive double submit (attacker's pair)", "POST",
     {"cookie": "csrf=" + "A" * 64, "x-csrf-token": "A" * 64}, JWT, b"", "csrf_token_invalid"),
    ("jwt, pair bound to another login", "POST",
     {"cookie": "csrf=@other", "x-csrf-token": "@other"}, JWT, b"", "csrf_token_invalid"),
    ("jwt, matching pair", "POST", {"cookie": "csrf=@jwt", "x-csrf-token": "@jwt"}, JWT, b"", None),
    ("jwt, matching pair in form", "POST", {"cookie": "csrf=@jwt", "content-type": FORM}, JWT,
     b"csrf_token=@jwt", None),
    # Layer 2: guests (login CSRF)
    ("guest form, no cookie", "POST", {"content-type": FORM}, None, b"username=a",
     "csrf_token_missing"),
    ("guest text/plain form", "POST", {"content-type": "text/plain"}, None, b"csrf_token=x",
     "csrf_token_missing"),
    ("guest form, token but no pre-session", "POST", {"content-type": FORM}, None,
     b"csrf_token=@pre", "csrf_token_invalid"),
    ("guest form, pre-session token", "POST",
     {"content-type": FORM, "cookie": f"csrf_pre={PRE}"}, None, b"csrf_token=@pre", None),
    ("guest form, malformed pre-session", "POST",
     {"content-type": FORM, "cookie": "csrf_pre=short"}, None, b"csrf_token=@pre",
     "csrf_token_invalid"),
    ("guest with dead credential cookie, json", "POST",
     {"content-type": "application/json", "cookie": "sid=dead"}, None, b"{}",
     "csrf_token_missing"),
    ("guest, victim's session id as pre-session", "POST",
     {"x-csrf-token": "@victim", "cookie": "sid=dead; csrf_pre=aaaa.0123"}, None, b"",
     "csrf_token_invalid"),
    # Multipart
    ("multipart token", "POST", {"content-type": "multipart/form-data; boundary=XyZ"}, SESSION,
     b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
     b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n@session\r\n--XyZ--\r\n',
     None),
    ("multipart token as a file", "POST", {"content-type": "multipart/form-data; boundary=XyZ"},
     SESSION,
     b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"; filename="t"\r\n\r\n'
     b"@session\r\n--XyZ--\r\n", "csrf_token_missing"),
    ("multipart without boundary", "POST", {"content-type": "multipart/form-data"}, SESSION,
     b"csrf_token=@session", "csrf_token_missing"),
]


def _fill(text: str) -> str:
    return (
        text.replace("@session", session_token())
        .replace("@pre", pre_token())
        .replace("@jwt", JWT_PAIR)
        .replace("@other", OTHER_PAIR)
        .replace("@victim", PROTECTOR.issue("aaaa.0123"))
    )


JWT_PAIR = jwt_token()
OTHER_PAIR = PROTECTOR.issue("login\x00u2\x001.0")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "headers", "identity", "body", "expected"),
    [case[1:] for case in _CASES],
    ids=[case[0] for case in _CASES],
)
async def test_decision_table(
    method: str,
    headers: dict[str, str],
    identity: Identity | None,
    body: bytes,
    expected: str | None,
) -> None:
    filled = {k: _fill(v) for k, v in headers.items()}
    sent = _fill(body.decode()).encode()
    outcome = await call(make(), method, filled, identity=identity, chunks=(sent,))
    assert outcome.error == expected, outcome.body
    if expected is None:
        assert outcome.status == 200
        assert outcome.app_body == sent  # the app saw the same body
    else:
        assert outcome.app_body is None  # refused before the app ran


def test_case_count() -> None:
    refused = [c for c in _CASES if c[5] is not None]
    assert len(_CASES) == 42
    assert len(refused) == 28


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
