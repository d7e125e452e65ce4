from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck.adapters.asgi import (
    IDENTITY_KEY,
    AuthMiddleware,
    Message,
    Scope,
    identity_of,
    request_headers,
)
from coatcheck.auth import Authenticator, BearerTransport, CookieTransport, SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.errors import StoreUnavailable
from coatcheck.policies import CookiePolicy, SessionPolicy
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.stores import MemoryStore

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(
    idle_timeout=timedelta(hours=2),
    absolute_timeout=timedelta(days=1),
    renew_interval=timedelta(minutes=10),
)


class SwitchableStore(MemoryStore):
    """A MemoryStore that can be made unreachable, as a Redis outage would."""

    down = False

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        if self.down:
            raise StoreUnavailable("the session store cannot be reached")
        return await super().get(session_id, now)


@pytest.fixture
def store() -> SwitchableStore:
    return SwitchableStore()


@pytest.fixture
def auth(clock: FrozenClock, store: SwitchableStore) -> Authenticator:
    manager = SessionManager(store, policy=POLICY, clock=clock)
    cookie = CookieTransport("sid", CookiePolicy(secure=False), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock), (cookie, BearerTransport()))


# -- raw ASGI ---------------------------------------------------------------------------


class Recorder:
    """An inner ASGI app that remembers the scope and answers 200 (optionally with a cookie)."""

    def __init__(self, set_cookie: bytes | None = None) -> None:
        self.scope: Scope | None = None
        self.set_cookie = set_cookie

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scope = scope
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/plain")]
        if self.set_cookie:
            headers.append((b"set-cookie", self.set_cookie))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": headers or []}


async def _call(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _set_cookies(messages: list[Message]) -> list[bytes]:
    start = messages[0]
    return [v for k, v in start["headers"] if k == b"set-cookie"]


async def test_guest_gets_none_and_no_headers(auth: Authenticator) -> None:
    inner = Recorder()
    sent = await _call(AuthMiddleware(inner, auth), _scope())
    assert inner.scope is not None
    assert inner.scope[IDENTITY_KEY] is None
    assert inner.scope["state"]["identity"] is None
    assert identity_of(inner.scope) is None
    assert _set_cookies(sent) == []


async def test_cookie_identity_lands_in_scope(auth: Authenticator, clock: FrozenClock) -> None:
    login = await auth.login("u1", headers={}, data={"name": "Alice"})
    clock.advance(1)
    inner = Recorder()
    scope = _scope(headers=[(b"cookie", b"a=1"), (b"cookie", f"sid={login.token}".encode())])
    sent = await _call(AuthMiddleware(inner, auth), scope)
    identity = identity_of(scope)
    assert identity is not None
    assert identity.name == "Alice"
    assert _set_cookies(sent) == []


async def test_renewal_cookie_is_appended(auth: Authenticator, clock: FrozenClock) -> None:
    login = await auth.login("u1", headers={})
    clock.advance(11 * 60)
    scope = _scope(headers=[(b"cookie", f"sid={login.token}".encode())])
    sent = await _call(AuthMiddleware(Recorder(), auth), scope)
    [cookie] = _set_cookies(sent)
    assert cookie.startswith(f"sid={login.token}; Max-Age=7200".encode())


async def test_apps_own_cookie_wins(auth: Authenticator, clock: FrozenClock) -> None:
    login = await auth.login("u1", headers={})
    clock.advance(11 * 60)
    inner = Recorder(set_cookie=b"sid=new-one; Path=/")
    sent = await _call(
        AuthMiddleware(inner, auth), _scope(headers=[(b"cookie", f"sid={login.token}".encode())])
    )
    assert _set_cookies(sent) == [b"sid=new-one; Path=/"]


@pytest.mark.parametrize("value", [b"forged", b"deadbeef." + b"A" * 43, b"'; DROP TABLE x"])
async def test_forged_cookie_is_a_guest_and_cleared(auth: Authenticator, value: bytes) -> None:
    scope = _scope(headers=[(b"cookie", b"sid=" + value)])
    sent = await _call(AuthMiddleware(Recorder(), auth), scope)
    assert identity_of(scope) is None
    assert sent[0]["status"] == 200
    [cookie] = _set_cookies(sent)
    assert cookie.startswith(b"sid=; Max-Age=0")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"cookie", b"sid=forged\xff\x00")],
        [(b"cookie", b"\x00" * 10000)],
        [(b"authorization", b"Bearer \xff\xfe")],
        [(b"authorization", b"Basic Zm9vOmJhcg==")],
        [(b"authorization", b"Bearer " + b"x" * 100_000)],
    ],
)
async def test_garbage_headers_make_a_guest(
    auth: Authenticator, headers: list[tuple[bytes, bytes]]
) -> None:
    scope = _scope(headers=headers)
    sent = await _call(AuthMiddleware(Recorder(), auth), scope)
    assert identity_of(scope) is None
    assert sent[0]["status"] == 200


async def test_store_outage_is_503_json(auth: Authenticator, store: SwitchableStore) -> None:
    login = await auth.login("u1", headers={})
    store.down = True
    inner = Recorder()
    scope = _scope(headers=[(b"authorization", f"Bearer {login.token}".encode())])
    sent = await _call(AuthMiddleware(inner, auth), scope)
    assert inner.scope is None  # the app never ran: no guest treated as logged out
    assert sent[0]["status"] == 503
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(sent[1]["body"])["error"] == "store_unavailable"


@pytest.mark.parametrize(
    "path", ["/healthz", "/static", "/static/app.css", "/.well-known/jwks.json"]
)
async def test_excluded_paths_skip_the_store(
    auth: Authenticator, store: SwitchableStore, path: str
) -> None:
    store.down = True
    inner = Recorder()
    app = AuthMiddleware(
        inner, auth, exclude_paths=["/healthz", "/static/", "/.well-known/jwks.json"]
    )
    sent = await _call(app, _scope(path, [(b"cookie", b"sid=deadbeef." + b"A" * 43)]))
    assert sent[0]["status"] == 200
    assert inner.scope is not None
    assert inner.scope[IDENTITY_KEY] is None


async def test_exclusion_stops_at_segment_boundary(
    auth: Authenticator, store: SwitchableStore
) -> None:
    store.down = True
    app = AuthMiddleware(Recorder(), auth, exclude_paths=["/static"])
    sent = await _call(app, _scope("/staticky", [(b"cookie", b"sid=deadbeef." + b"A" * 43)]))
    assert sent[0]["status"] == 503


async def test_lifespan_passes_through(auth: Authenticator) -> None:
    inner = Recorder()
    await _call(AuthMiddleware(inner, auth), {"type": "lifespan"})
    assert inner.scope == {"type": "lifespan"}


async def test_websocket_outage_closes(auth: Authenticator, store: SwitchableStore) -> None:
    store.down = True
    headers = [(b"cookie", b"sid=deadbeef." + b"A" * 43)]
    scope = {"type": "websocket", "path": "/ws", "headers": headers}
    sent = await _call(AuthMiddleware(Recorder(), auth), scope)
    assert sent == [{"type": "websocket.close", "code": 1013}]


def test_request_headers_joins_and_caches() -> None:
    scope = _scope(
        headers=[
            (b"cookie", b"a=1"),
            (b"Cookie", b"b=2"),
            (b"accept", b"text/html"),
            (b"accept", b"*/*"),
            (b"x-odd", b"\xff"),
        ]
    )
    headers = request_headers(scope)
    assert headers == {"cookie": "a=1; b=2", "accept": "text/html, */*", "x-odd": "\xff"}
    assert request_headers(scope) is headers


# -- through Starlette -----------------------------------------------------------------


@pytest.fixture
def client(auth: Authenticator) -> Iterator[TestClient]:
    async def me(request: Request) -> Response:
        identity = request.state.identity
        if identity is None:
            return JSONResponse({"user": None})
        return JSONResponse({"user": identity.user_id, "via": identity.via})

    async def login(request: Request) -> Response:
        result = await auth.login("u1", headers=request_headers(request.scope))
        response = JSONResponse({"token": result.token})
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return response

    app = Starlette(routes=[Route("/me", me), Route("/login", login, methods=["POST"])])
    with TestClient(AuthMiddleware(app, auth), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_starlette_cookie_flow(client: TestClient) -> None:
    assert client.get("/me").json() == {"user": None}
    token = client.post("/login").json()["token"]
    assert client.get("/me").json() == {"user": "u1", "via": "cookie"}
    client.cookies.clear()
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).json() == {
        "user": "u1",
        "via": "bearer",
    }


def test_starlette_store_outage(client: TestClient, store: SwitchableStore) -> None:
    client.post("/login")
    store.down = True
    response = client.get("/me")
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"


async def test_a_credential_cookie_sent_twice_is_a_guest(
    auth: Authenticator, clock: FrozenClock
) -> None:
    # Issue 12, item 1: a tossed second copy (here in a second Cookie field, as HTTP/2
    # may send them) makes the name ambiguous; neither copy is trusted.
    mine = await auth.login("victim", headers={})
    theirs = await auth.login("attacker", headers={})
    inner = Recorder()
    scope = _scope(headers=[(b"cookie", f"sid={theirs.token}".encode()),
                            (b"cookie", f"sid={mine.token}".encode())])  # fmt: skip
    await _call(AuthMiddleware(inner, auth), scope)
    assert identity_of(scope) is None
    scope = _scope(headers=[(b"cookie", f"sid={mine.token}".encode())])
    await _call(AuthMiddleware(Recorder(), auth), scope)
    assert identity_of(scope) is not None
