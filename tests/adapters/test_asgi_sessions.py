"""The ASGI SessionMiddleware with coatcheck's authentication: guests, logins, costs, failures."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from coatcheck.adapters.asgi import (
    AuthMiddleware,
    SessionMiddleware,
    flash,
    pop_flashes,
    request_headers,
    session_of,
)
from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    HybridCookieTransport,
    HybridStrategy,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.policies import CookiePolicy, SessionPolicy
from coatcheck.sessions import SessionManager, SessionRecord, SessionStore, StoreSessions
from coatcheck.sessions.data import DATA_KEY, OWNER_KEY
from coatcheck.stores import MemoryStore, PostgresStore, RedisStore, SQLiteStore
from coatcheck.tokens import JWTCodec, Key

from ..stores.contract import CountingStore

# The session-data cookie's default name under the default (Secure) policy.
DATA = "__Host-coatcheck_data"

BASE = "https://testserver"
POLICY = SessionPolicy(
    idle_timeout=timedelta(hours=2),
    absolute_timeout=timedelta(days=1),
    renew_interval=timedelta(minutes=10),
)


class FlakyStore(MemoryStore):
    """A MemoryStore whose reads or writes can be made to fail, as in an outage."""

    reads_down = False
    writes_down = False

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        if self.reads_down:
            raise StoreUnavailable("the session store cannot be reached")
        return await super().get(session_id, now)

    async def update(self, record: SessionRecord) -> bool:
        if self.writes_down:
            raise StoreUnavailable("the session store cannot be reached")
        return await super().update(record)

    async def create(self, record: SessionRecord) -> None:
        if self.writes_down:
            raise StoreUnavailable("the session store cannot be reached")
        await super().create(record)


def build(
    mode: str,
    store: SessionStore,
    clock: FrozenClock,
    **options: Any,
) -> tuple[Starlette, Authenticator, StoreSessions]:
    """An app with AuthMiddleware then SessionMiddleware, in ``mode`` (or "none": no auth)."""
    manager = SessionManager(store, policy=POLICY, clock=clock)
    authenticator: Authenticator | None
    if mode == "session":
        strategy: Any = SessionStrategy(manager, clock=clock)
    elif mode in ("jwt", "hybrid"):
        codec = JWTCodec(Key.generate("HS256"), algorithms=["HS256"], clock=clock)
        strategy = (
            JWTStrategy(codec, clock=clock)
            if mode == "jwt"
            else HybridStrategy(manager, codec, secrets.token_bytes(32), clock=clock)
        )
    if mode == "none":
        authenticator = None
    else:
        authenticator = Authenticator(strategy, (CookieTransport("auth", clock=clock),
                                                 BearerTransport()))  # fmt: skip
    sessions = StoreSessions(manager, **options)

    async def show(request: Request) -> JSONResponse:
        identity = request.scope.get("coatcheck.identity")
        return JSONResponse({
            "session": dict(request.session),
            "user": identity.user_id if identity else None,
        })  # fmt: skip

    async def add(request: Request) -> JSONResponse:
        request.session.setdefault("cart", []).append(request.query_params["item"])
        return JSONResponse({"cart": request.session["cart"]})

    async def put(request: Request) -> JSONResponse:
        request.session[request.query_params["k"]] = request.query_params["v"]
        if "await" in request.query_params:
            await asyncio.sleep(0.01)  # the app awaits its own I/O: the others read meanwhile
        return JSONResponse({"ok": True})

    async def drop(request: Request) -> JSONResponse:
        request.session.pop(request.query_params["k"], None)
        return JSONResponse({"ok": True})

    async def login(request: Request) -> Response:
        assert authenticator is not None
        # The app's own login code, as it was before sessions: nothing about them here.
        result = await authenticator.login(
            request.query_params.get("user", "ada"), headers=request_headers(request.scope)
        )
        response = JSONResponse({"token": result.token})
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return response

    async def logout(request: Request) -> Response:
        assert authenticator is not None
        response = JSONResponse({"ok": True})
        for name, value in await authenticator.logout(request_headers(request.scope)):
            response.headers.append(name, value)
        return response

    async def big(request: Request) -> JSONResponse:
        request.session["blob"] = "x" * (manager.max_data_size + 1)
        return JSONResponse({"ok": True})

    async def flashing(request: Request) -> JSONResponse:
        flash(request, "Added a hat", "info")
        return JSONResponse({"ok": True})

    async def flashes(request: Request) -> JSONResponse:
        return JSONResponse({"flashes": pop_flashes(request)})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        websocket.session["ignored"] = True  # a websocket never saves
        await websocket.close()

    middleware = []
    if authenticator is not None:
        middleware.append(Middleware(AuthMiddleware, authenticator=authenticator))
    middleware.append(
        Middleware(SessionMiddleware, sessions=sessions, authenticator=authenticator)
    )
    app = Starlette(
        routes=[
            Route("/show", show), Route("/add", add, methods=["POST"]),
            Route("/put", put, methods=["POST"]), Route("/drop", drop, methods=["POST"]),
            Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["POST"]),
            Route("/big", big, methods=["POST"]), Route("/flash", flashing, methods=["POST"]),
            Route("/flashes", flashes), WebSocketRoute("/ws", socket),
        ],
        middleware=middleware,
    )  # fmt: skip
    assert authenticator is not None or mode == "none"
    return app, authenticator, sessions  # type: ignore[return-value]


def client(app: Starlette) -> TestClient:
    return TestClient(app, base_url=BASE)


def records(store: MemoryStore) -> list[SessionRecord]:
    return list(store._records.values())


# -- guests: lazily, and at a known cost -----------------------------------------------------


def test_a_guest_who_stores_nothing_costs_no_store_call_and_gets_no_cookie(
    clock: FrozenClock,
) -> None:
    counting = CountingStore(MemoryStore())
    app, _, _ = build("session", counting, clock)
    with client(app) as c:
        for _ in range(5):
            response = c.get("/show")
            assert response.json() == {"session": {}, "user": None}
            assert "set-cookie" not in response.headers
    assert counting.calls == {}


def test_a_guest_session_starts_when_something_is_stored(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        response = c.post("/add", params={"item": "hat"})
        set_cookie = response.headers["set-cookie"]
        assert set_cookie.startswith(DATA + "=")
        assert "HttpOnly" in set_cookie
        assert "Secure" in set_cookie
        assert "SameSite=Lax" in set_cookie
        assert "Max-Age=7200" in set_cookie  # persistent: the session's idle expiry
        assert response.headers["vary"] == "Cookie"
        [record] = records(store)
        assert record.user_id == ""
        assert record.data == {DATA_KEY: {"cart": ["hat"]}}
        assert store.__len__() == 1
        assert c.get("/show").json()["session"] == {"cart": ["hat"]}


def test_read_only_costs_one_read_and_a_change_one_read_one_write(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    app, _, _ = build("none", counting, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Zoë"})
        counting.calls.clear()
        response = c.get("/show")
        assert response.json()["session"] == {"name": "Zoë"}
        assert "set-cookie" not in response.headers
        assert counting.calls == {"get": 1}
        counting.calls.clear()
        c.post("/add", params={"item": "hat"})  # a nested change of one key
        assert counting.calls == {"get": 1, "update": 1}
        counting.calls.clear()
        c.post("/drop", params={"k": "cart"})
        assert counting.calls == {"get": 1, "update": 1}


def test_a_logged_in_session_costs_the_one_read_authentication_makes(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    app, _, _ = build("session", counting, clock)
    with client(app) as c:
        c.post("/login")
        clock.advance(1)  # past the login's second: the strategy sees no renewal
        counting.calls.clear()
        assert c.get("/show").json() == {"session": {}, "user": "ada"}
        assert counting.calls == {"get": 1}
        counting.calls.clear()
        c.post("/put", params={"k": "theme", "v": "dark"})
        assert counting.calls == {"get": 1, "update": 1}
        counting.calls.clear()
        response = c.get("/show")
        assert response.json() == {"session": {"theme": "dark"}, "user": "ada"}
        assert counting.calls == {"get": 1}
        assert "set-cookie" not in response.headers


def test_an_emptied_guest_session_is_deleted_and_its_cookie_cleared(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Ann"})
        assert len(store) == 1
        response = c.post("/drop", params={"k": "name"})
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert len(store) == 0
        assert DATA not in c.cookies


def test_the_guest_cookie_follows_renewal(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Ann"})
        clock.advance(60)
        assert "set-cookie" not in c.get("/show").headers  # not due
        clock.advance(POLICY.renew_interval.total_seconds())
        response = c.get("/show")  # renewal is due: one touch, and the Max-Age follows
        assert "Max-Age=7200" in response.headers["set-cookie"]
        clock.advance(POLICY.idle_timeout.total_seconds() + 1)
        assert c.get("/show").json()["session"] == {}  # idle too long: gone


def test_a_forged_or_dead_cookie_is_a_new_guest_and_is_cleared(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    app, _, _ = build("none", counting, clock)
    with client(app) as c:
        for value in ("garbage", "0123abcd." + "A" * 43, "x" * 5000, ""):
            response = c.get("/show", headers={"cookie": f"{DATA}={value}"})
            assert response.status_code == 200
            assert response.json()["session"] == {}
            if value:
                assert "Max-Age=0" in response.headers["set-cookie"]
    assert counting.count("create") == 0


def test_a_login_token_in_the_data_cookie_shows_nothing(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _authenticator, _ = build("session", store, clock)
    with client(app) as c:
        token = c.post("/login").json()["token"]
        c.post("/put", params={"k": "secret", "v": "ada's"})
    with client(app) as other:
        response = other.get("/show", headers={"cookie": f"{DATA}={token}"})
        assert response.json() == {"session": {}, "user": None}
        assert "Max-Age=0" in response.headers["set-cookie"]


# -- login and logout ------------------------------------------------------------------------


def test_session_mode_login_carries_the_cart_into_the_login_session(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("session", store, clock)
    with client(app) as c:
        c.post("/add", params={"item": "hat"})
        [guest] = records(store)
        response = c.post("/login")
        cleared = [v for v in response.headers.get_list("set-cookie") if v.startswith(DATA + "=")]
        assert cleared
        assert "Max-Age=0" in cleared[0]
        [login] = records(store)  # the guest session is gone, its data moved
        assert login.user_id == "ada"
        assert login.id != guest.id
        assert login.data[DATA_KEY] == {"cart": ["hat"]}
        assert c.get("/show").json() == {"session": {"cart": ["hat"]}, "user": "ada"}
        c.post("/add", params={"item": "scarf"})
        assert c.get("/show").json()["session"] == {"cart": ["hat", "scarf"]}
        assert DATA not in c.cookies  # one cookie, one record, once logged in


@pytest.mark.parametrize("mode", ["jwt", "hybrid"])
def test_token_modes_carry_the_cart_to_a_new_data_session_of_the_user(
    mode: str, clock: FrozenClock
) -> None:
    store = MemoryStore()
    app, _, _ = build(mode, store, clock)
    with client(app) as c:
        c.post("/add", params={"item": "hat"})
        guest_cookie = c.cookies[DATA]
        c.post("/login")
        assert c.cookies[DATA] != guest_cookie  # a new id (fixation)
        assert c.get("/show").json() == {"session": {"cart": ["hat"]}, "user": "ada"}
        data = [r for r in records(store) if DATA_KEY in r.data]
        assert len(data) == 1
        assert data[0].user_id == ""  # never indexed under the user, never a login
        assert data[0].data[OWNER_KEY] == "ada"
        # The old guest cookie, replayed, leads nowhere.
    with client(app) as thief:
        replay = thief.get("/show", headers={"cookie": f"{DATA}={guest_cookie}"})
        assert replay.json()["session"] == {}


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_logout_drops_the_data(mode: str, clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build(mode, store, clock)
    with client(app) as c:
        c.post("/login")
        c.post("/put", params={"k": "theme", "v": "dark"})
        c.post("/logout")
        assert c.get("/show").json() == {"session": {}, "user": None}
        assert not [r for r in records(store) if DATA_KEY in r.data]


@pytest.mark.parametrize("mode", ["session", "jwt"])
def test_hooks_pick_what_crosses_login_and_logout(mode: str, clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build(
        mode, store, clock,
        on_login=lambda data: {k: v for k, v in data.items() if k != "oauth_state"},
        on_logout=lambda data: {k: data[k] for k in ("lang",) if k in data},
    )  # fmt: skip
    with client(app) as c:
        c.post("/put", params={"k": "oauth_state", "v": "xyz"})
        c.post("/put", params={"k": "lang", "v": "fr"})
        c.post("/login")
        assert c.get("/show").json()["session"] == {"lang": "fr"}
        c.post("/put", params={"k": "private", "v": "ada's"})
        c.post("/logout")
        assert c.get("/show").json() == {"session": {"lang": "fr"}, "user": None}


def test_a_login_by_bearer_token_carries_the_guest_data_on_the_next_request(
    clock: FrozenClock,
) -> None:
    store = MemoryStore()
    app, authenticator, _ = build("session", store, clock)
    with client(app) as c:
        c.post("/add", params={"item": "hat"})
        token = asyncio.run(authenticator.login("ada", headers={})).token
        response = c.get("/show", headers={"authorization": f"Bearer {token}"})
        assert response.json() == {"session": {"cart": ["hat"]}, "user": "ada"}
        assert "Max-Age=0" in response.headers["set-cookie"]  # the guest cookie goes
        [login] = records(store)
        assert login.data[DATA_KEY] == {"cart": ["hat"]}


def test_a_data_session_is_shown_to_its_owner_only(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("jwt", store, clock)
    with client(app) as c:
        c.post("/login")
        c.post("/put", params={"k": "private", "v": "ada's"})
        auth, data = c.cookies["auth"], c.cookies[DATA]
        # The JWT expired, or another person uses the browser: only the data cookie.
        alone = c.get("/show", headers={"cookie": f"{DATA}={data}"})
        assert alone.json() == {"session": {}, "user": None}
        bob = c.post("/login", params={"user": "bob"}, headers={"cookie": f"{DATA}={data}"})
        bob_auth = bob.cookies["auth"]
        as_bob = c.get("/show", headers={"cookie": f"{DATA}={data}; auth={bob_auth}"})
        assert as_bob.json() == {"session": {}, "user": "bob"}
        # The owner comes back: there it is.
        as_ada = c.get("/show", headers={"cookie": f"{DATA}={data}; auth={auth}"})
        assert as_ada.json() == {"session": {"private": "ada's"}, "user": "ada"}


def test_a_guest_record_never_authenticates(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("session", store, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Ann"})
        guest_token = c.cookies[DATA]
        as_cookie = c.get("/show", headers={"cookie": f"auth={guest_token}"})
        assert as_cookie.json() == {"session": {}, "user": None}
        response = c.get("/show", headers={"authorization": f"Bearer {guest_token}"})
        assert response.json()["user"] is None


def test_the_default_cookies_differ_over_plain_http(clock: FrozenClock) -> None:
    # Regression: over plain HTTP the login cookie is `session` and the data cookie was
    # `session` too, so the defaults refused to start (or, unchecked, one overwrote the other).
    plain = CookiePolicy(secure=False)
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    authenticator = Authenticator(
        SessionStrategy(manager, clock=clock), (CookieTransport(policy=plain, clock=clock),)
    )
    sessions = StoreSessions(manager, cookie_policy=plain)
    assert sessions.cookie_name == "coatcheck_data"

    async def add(request: Request) -> JSONResponse:
        request.session["cart"] = ["hat"]
        return JSONResponse({"ok": True})

    async def login(request: Request) -> Response:
        result = await authenticator.login("ada", headers=request_headers(request.scope))
        response = JSONResponse({"ok": True})
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return response

    async def show(request: Request) -> JSONResponse:
        identity = request.scope.get("coatcheck.identity")
        user = identity.user_id if identity else None
        return JSONResponse({"session": dict(request.session), "user": user})

    app = Starlette(
        routes=[Route("/add", add, methods=["POST"]), Route("/login", login, methods=["POST"]),
                Route("/show", show)],
        middleware=[Middleware(AuthMiddleware, authenticator=authenticator),
                    Middleware(SessionMiddleware, sessions=sessions, authenticator=authenticator)],
    )  # fmt: skip
    with TestClient(app, base_url="http://testserver") as c:
        c.post("/add")
        assert set(c.cookies) == {"coatcheck_data"}
        c.post("/login")
        assert c.get("/show").json() == {"session": {"cart": ["hat"]}, "user": "ada"}


@pytest.mark.parametrize(
    ("transport", "data_name", "uses"),
    [
        (CookieTransport(policy=CookiePolicy(secure=False)), "session", "login"),
        (CookieTransport("auth", renamed_from="old"), "old", "login (previous name)"),
        (HybridCookieTransport("auth", refresh_name="fresh"), "fresh", "refresh"),
    ],
)
def test_the_session_cookie_cannot_share_a_credential_cookies_name(
    clock: FrozenClock, transport: CookieTransport, data_name: str, uses: str
) -> None:
    manager = SessionManager(MemoryStore(), clock=clock)
    authenticator = Authenticator(SessionStrategy(manager), (transport,))
    sessions = StoreSessions(manager, cookie_name=data_name)
    with pytest.raises(ConfigurationError) as raised:
        SessionMiddleware(lambda *a: None, sessions, authenticator=authenticator)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"configuration_error: the {uses} cookie and the session-data cookie are both "
        f"named {data_name!r}: give one of them another name"
    )


# -- failures --------------------------------------------------------------------------------


def test_a_store_outage_answers_503_and_never_a_guest(clock: FrozenClock) -> None:
    store = FlakyStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Ann"})
        store.reads_down = True
        response = c.get("/show")
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        store.reads_down, store.writes_down = False, True
        response = c.post("/put", params={"k": "name", "v": "Bob"})
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        store.writes_down = False
        assert c.get("/show").json()["session"] == {"name": "Ann"}


def test_too_much_data_is_a_clear_error_at_save(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        response = c.post("/big")
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "session_too_large"
        # {"_session":{"blob":"..."}} is 24 bytes around the 65537 of the blob.
        assert "65561 bytes" in body["message"]
        assert "limit of 65536" in body["message"]
        assert "set-cookie" not in response.headers
        assert len(store) == 0


def test_a_websocket_reads_the_session_and_never_saves(clock: FrozenClock) -> None:
    store = MemoryStore()
    app, _, _ = build("none", store, clock)
    with client(app) as c:
        c.post("/put", params={"k": "name", "v": "Ann"})
        cookie = {"cookie": f"{DATA}={c.cookies[DATA]}"}
        with c.websocket_connect("/ws", headers=cookie) as ws:
            assert ws.receive_json() == {"name": "Ann"}
        assert c.get("/show").json()["session"] == {"name": "Ann"}


def test_flash_messages_are_shown_once(clock: FrozenClock) -> None:
    app, _, _ = build("none", MemoryStore(), clock)
    with client(app) as c:
        c.post("/flash")
        c.post("/flash")
        assert c.get("/flashes").json() == {"flashes": [["info", "Added a hat"]] * 2}
        assert c.get("/flashes").json() == {"flashes": []}


def test_session_of_without_the_middleware_says_what_to_add() -> None:
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        session_of({"type": "http"})


# -- concurrency, on every store -------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SessionStore]:
    kind = request.param
    store: Any
    if kind == "memory":
        store = MemoryStore()
    elif kind == "sqlite":
        store = SQLiteStore(tmp_path / "s.db")
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
        store = RedisStore.from_url(url, prefix=f"ccasgi{secrets.token_hex(3)}:")
    else:
        url = request.getfixturevalue("postgres_url")
        store = PostgresStore(url, table=f"ccasgi_{secrets.token_hex(4)}")
    yield store
    if kind == "postgres":
        import psycopg

        await store.close()
        table = store._table
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_attempts")
            conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))
    elif kind == "redis":
        keys = [key async for key in store._io.scan(store._prefix + b"*")]
        for key in keys:
            await store._io.call(b"DEL", key)
        await store.close()
    else:
        await store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["none", "session"])
async def test_fifty_concurrent_requests_each_adding_a_key_lose_nothing(
    any_store: SessionStore, mode: str, clock: FrozenClock
) -> None:
    counting = CountingStore(any_store)
    app, _, _ = build(mode, counting, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        if mode == "session":
            await c.post("/login")
        await c.post("/put", params={"k": "start", "v": "yes"})
        responses = await asyncio.gather(
            *(c.post("/put", params={"k": f"k{i}", "v": str(i), "await": "1"}) for i in range(50))
        )
        assert [r.status_code for r in responses] == [200] * 50
        shown = (await c.get("/show")).json()["session"]
    assert shown == {"start": "yes", **{f"k{i}": str(i) for i in range(50)}}
    # They raced: compare-and-sets were lost and replayed (one write each, else).
    assert counting.count("update") > 60



def test_excluded_paths_get_an_empty_session_and_no_store_call(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    manager = SessionManager(counting, clock=clock)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    app = Starlette(
        routes=[Route("/healthz", health)],
        middleware=[Middleware(SessionMiddleware, sessions=StoreSessions(manager),
                               exclude_paths=["/healthz"])],
    )  # fmt: skip
    with client(app) as c:
        response = c.get("/healthz", headers={"cookie": f"{DATA}=a1b2c3d4." + "A" * 43})
        assert response.json() == {}
    assert counting.calls == {}
