"""Hybrid mode in a browser: two cookies, transparent 307 refresh by the middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coatcheck.adapters.asgi import AuthMiddleware, identity_of, request_headers
from coatcheck.auth import Authenticator, BearerTransport, HybridCookieTransport, HybridStrategy
from coatcheck.auth.hybrid_cookies import refresh_location
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError
from coatcheck.redirects import safe_redirect
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key

pytestmark = pytest.mark.anyio

BASE = "https://app.test"
# The default names over HTTPS (issue 12, item 1).
ACCESS, REFRESH = "__Host-coatcheck_access", "__Secure-coatcheck_refresh"


def _app(clock: FrozenClock) -> tuple[Starlette, HybridStrategy]:
    codec = JWTCodec([Key.from_secret("k" * 32)], clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock)
    strategy = HybridStrategy(manager, codec, "r" * 32, clock=clock)
    cookie = HybridCookieTransport(clock=clock)
    authenticator = Authenticator(strategy, (cookie, BearerTransport()))

    async def login(request: Request) -> Response:
        result = await authenticator.login("alice", headers=request_headers(request.scope))
        response = JSONResponse({"ok": True})
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return response

    async def me(request: Request) -> Response:
        identity = identity_of(request.scope)
        body = await request.body()
        if identity is None:
            return JSONResponse({"user": None}, status_code=401)
        return JSONResponse({"user": identity.user_id, "jti": identity.claims["jti"],
                             "body": body.decode(), "method": request.method})

    app = Starlette(
        routes=[Route("/login", login, methods=["POST"]),
                Route("/me", me, methods=["GET", "POST"])],
        middleware=[Middleware(AuthMiddleware, authenticator=authenticator)],
    )  # fmt: skip
    return app, strategy


@pytest.fixture
async def browser(clock: FrozenClock) -> AsyncIterator[tuple[httpx.AsyncClient, HybridStrategy]]:
    app, strategy = _app(clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client, strategy


async def test_login_sets_two_httponly_cookies_with_the_refresh_one_on_a_narrow_path(
    browser: tuple[httpx.AsyncClient, HybridStrategy],
) -> None:
    client, _ = browser
    response = await client.post("/login")
    cookies = response.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith(ACCESS + "="))
    refresh = next(c for c in cookies if c.startswith(REFRESH + "="))
    assert "Path=/;" in access + ";"
    assert "HttpOnly" in access
    assert "Path=/auth/refresh" in refresh
    assert "HttpOnly" in refresh
    assert "Max-Age=" in refresh
    assert (await client.get("/me")).json()["user"] == "alice"


async def test_expired_access_cookie_is_refreshed_transparently_keeping_method_and_body(
    browser: tuple[httpx.AsyncClient, HybridStrategy], clock: FrozenClock
) -> None:
    client, _ = browser
    await client.post("/login")
    first = (await client.get("/me")).json()["jti"]
    clock.advance(400)
    hop = await client.post("/me?x=1", content=b"payload")
    assert hop.status_code == 307
    assert hop.headers["location"] == "/auth/refresh?next=%2Fme%3Fx%3D1"
    back = await client.post(hop.headers["location"], content=b"payload")
    assert back.status_code == 307
    assert back.headers["location"] == "/me?x=1"
    assert len(back.headers.get_list("set-cookie")) == 2
    done = await client.post("/me?x=1", content=b"payload")
    assert done.json() == {"user": "alice", "jti": done.json()["jti"], "body": "payload",
                           "method": "POST"}  # fmt: skip
    assert done.json()["jti"] != first
    # The same again, as a browser does it: one call, redirects followed.
    clock.advance(400)
    followed = await client.get("/me", follow_redirects=True)
    assert followed.json()["user"] == "alice"
    assert [r.status_code for r in followed.history] == [307, 307]


async def test_a_replayed_refresh_cookie_logs_the_family_out(
    browser: tuple[httpx.AsyncClient, HybridStrategy], clock: FrozenClock
) -> None:
    client, _ = browser
    await client.post("/login")
    stolen = client.cookies.get(REFRESH)
    stolen_access = client.cookies.get(ACCESS)
    clock.advance(400)
    assert (await client.get("/me", follow_redirects=True)).status_code == 200
    clock.advance(400)  # the successor is used too: the stolen cookie is now reuse
    assert (await client.get("/me", follow_redirects=True)).status_code == 200
    # The thief replays the old cookies (malware copies the whole jar): reuse, the
    # session is revoked...
    async with httpx.AsyncClient(transport=client._transport, base_url=BASE) as thief:
        thief.cookies.set(REFRESH, stolen or "", path="/auth/refresh")
        thief.cookies.set(ACCESS, stolen_access or "")
        replay = await thief.get("/auth/refresh?next=/me")
    assert replay.status_code == 307
    assert any(f"{REFRESH}=;" in c for c in replay.headers.get_list("set-cookie"))
    # ... and the victim's still-unexpired access token stops at once in this process.
    assert (await client.get("/me")).status_code == 401


async def test_guests_and_forged_cookies_are_not_redirected(
    browser: tuple[httpx.AsyncClient, HybridStrategy],
) -> None:
    client, _ = browser
    assert (await client.get("/me")).status_code == 401
    client.cookies.set(ACCESS, "a.b.c")
    response = await client.get("/me")
    assert response.status_code == 401
    assert f"{ACCESS}=;" in response.headers.get("set-cookie", "")


async def test_refresh_path_without_a_cookie_clears_and_goes_back(
    browser: tuple[httpx.AsyncClient, HybridStrategy],
) -> None:
    client, _ = browser
    response = await client.get("/auth/refresh?next=//evil.example/x")
    assert response.status_code == 307
    assert response.headers["location"] == "/"
    cleared = [c.split("=")[0] for c in response.headers.get_list("set-cookie")]
    # Both cookies, and the names they had before coatcheck prefixed its defaults.
    assert cleared == [ACCESS, "coatcheck_access", REFRESH, "coatcheck_refresh"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/a/b?c=d", "/a/b?c=d"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("", "/"),
        (None, "/"),
        ("/" + "a" * 5000, "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_redirect(value) == expected


def test_refresh_location_and_configuration() -> None:
    assert refresh_location("/auth/refresh", "/p", "q=1") == "/auth/refresh?next=%2Fp%3Fq%3D1"
    with pytest.raises(ConfigurationError):
        HybridCookieTransport(refresh_path="auth")
