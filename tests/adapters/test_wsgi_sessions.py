"""The WSGI SessionMiddleware: the same core as ASGI, driven without a loop, under threads."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from werkzeug.test import Client, create_environ, run_wsgi_app

from coatcheck.adapters.wsgi import (
    AuthMiddleware,
    SessionMiddleware,
    flash,
    pop_flashes,
    request_headers,
    session_of,
)
from coatcheck.auth import Authenticator, CookieTransport, SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.sessions import SessionManager, SessionRecord, SessionStore, StoreSessions
from coatcheck.stores import MemoryStore, SQLiteStore, open_store
from coatcheck.sync import run_sync

from ..stores.contract import CountingStore

# The session-data cookie's default name under the default (Secure) policy.
DATA = "__Host-coatcheck_data"

BASE = "https://localhost"


class Barrier:
    """Holds every request between reading its session and saving it, so all of them race."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=30)

    def wait(self) -> None:
        self.barrier.wait()


def make_app(
    store: SessionStore, clock: FrozenClock, *, barrier: Barrier | None = None,
    lazy: bool = False,
) -> tuple[Any, Authenticator]:
    manager = SessionManager(store, clock=clock)
    authenticator = Authenticator(SessionStrategy(manager, clock=clock),
                                  (CookieTransport("auth", clock=clock),))  # fmt: skip

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = session_of(environ)
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        path = environ["PATH_INFO"]
        headers = [("content-type", "text/plain")]
        if path == "/put":
            session[query["k"]] = query["v"]
            if barrier is not None and "race" in query:
                barrier.wait()
        elif path == "/add":
            session.setdefault("cart", []).append(query["item"])
        elif path == "/flash":
            flash(environ, query["m"])
        elif path == "/flashes":
            body = repr(pop_flashes(environ)).encode()
            start_response("200 OK", headers)
            return [body]
        elif path == "/login":
            result = run_sync(authenticator.login("ada", headers=request_headers(environ)))
            headers += result.set_headers
        elif path == "/big":
            session["blob"] = "x" * 70_000
        body = repr(sorted(session.items())).encode()
        if lazy:
            def chunks() -> Iterator[bytes]:
                start_response("200 OK", headers)
                yield body

            return chunks()
        start_response("200 OK", headers)
        return [body]

    sessions = StoreSessions(manager)
    wrapped = SessionMiddleware(app, sessions, authenticator=authenticator)
    return AuthMiddleware(wrapped, authenticator), authenticator


def test_guests_a_cart_and_a_login(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    app, _ = make_app(counting, clock)
    client = Client(app)
    assert client.get("/", base_url=BASE).text == "[]"
    assert counting.calls == {}
    response = client.get("/add?item=hat", base_url=BASE)
    assert response.text == "[('cart', ['hat'])]"
    assert response.headers["Vary"] == "Cookie"
    counting.calls.clear()
    client.get("/add?item=scarf", base_url=BASE)
    assert counting.calls == {"get": 1, "update": 1}
    client.get("/login", base_url=BASE)
    assert client.get("/", base_url=BASE).text == "[('cart', ['hat', 'scarf'])]"
    assert client.get_cookie(DATA) is None  # moved into the login session


def test_flash_messages(clock: FrozenClock) -> None:
    app, _ = make_app(MemoryStore(), clock)
    client = Client(app)
    client.get("/flash?m=Saved", base_url=BASE)
    assert client.get("/flashes", base_url=BASE).text == "[('message', 'Saved')]"
    assert client.get("/flashes", base_url=BASE).text == "[]"
    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        session_of({})


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy-start-response"])
def test_a_failed_save_replaces_the_response(lazy: bool, clock: FrozenClock) -> None:
    app, _ = make_app(MemoryStore(), clock, lazy=lazy)
    response = Client(app).get("/big", base_url=BASE)
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["error"] == "session_too_large"
    assert "set-cookie" not in response.headers


def test_a_store_outage_while_opening_answers_503(clock: FrozenClock) -> None:
    class Down(MemoryStore):
        async def get(self, session_id: str, now: float) -> SessionRecord | None:
            raise StoreUnavailable("down")

    store = Down()
    app, _ = make_app(store, clock)
    client = Client(app)
    client.set_cookie(DATA, "a1b2c3d4." + "A" * 43, domain="localhost")
    response = client.get("/", base_url=BASE)
    assert response.status_code == 503
    assert response.json == {"error": "store_unavailable", "message": "down"}


# -- 50 threads, one session, every synchronous store ---------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "sqlite":
        store: Any = SQLiteStore(tmp_path / "s.db")
        yield store
        run_sync(store.close())
        return
    if kind == "redis":
        prefix = f"ccwsgi{secrets.token_hex(3)}:"
        store = open_store(request.getfixturevalue("redis_url") + f"?prefix={prefix}", sync=True)
        yield store

        async def clean() -> None:  # never suspends: the store's I/O is blocking
            keys = [key async for key in store._io.scan(prefix.encode() + b"*")]
            for key in keys:
                await store._io.call(b"DEL", key)

        run_sync(clean())
        run_sync(store.close())
        return
    url = request.getfixturevalue("postgres_url")
    table = f"ccwsgi_{secrets.token_hex(4)}"
    store = open_store(f"{url}?table={table}", sync=True)
    yield store
    run_sync(store.close())
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_attempts")
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))


def test_fifty_threads_each_adding_a_key_lose_nothing(
    sync_store: SessionStore, clock: FrozenClock
) -> None:
    barrier = Barrier(50)
    counting = CountingStore(sync_store)
    app, _ = make_app(counting, clock, barrier=barrier)
    first = Client(app).get("/put?k=start&v=yes", base_url=BASE)
    cookie = first.headers["set-cookie"].partition(";")[0]
    results: list[str] = []

    def request(i: int) -> None:
        environ = create_environ(
            f"/put?k=k{i}&v={i}&race=1", base_url=BASE, headers={"Cookie": cookie}
        )
        _, status, _ = run_wsgi_app(app, environ, buffered=True)
        results.append(status)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == ["200 OK"] * 50
    environ = create_environ("/", base_url=BASE, headers={"Cookie": cookie})
    body, _, _ = run_wsgi_app(app, environ, buffered=True)
    expected = sorted({"start": "yes", **{f"k{i}": str(i) for i in range(50)}}.items())
    assert b"".join(body).decode() == repr(expected)
    assert counting.count("update") > 60  # they raced, and every loser merged


def test_excluded_paths_get_an_empty_session_and_no_store_call(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    manager = SessionManager(counting, clock=clock)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [repr(dict(session_of(environ))).encode()]

    wrapped = SessionMiddleware(app, StoreSessions(manager), exclude_paths=["/healthz"])
    client = Client(wrapped)
    client.set_cookie(DATA, "a1b2c3d4." + "A" * 43, domain="localhost")
    assert client.get("/healthz", base_url=BASE).text == "{}"
    assert counting.calls == {}
    client.get("/", base_url=BASE)
    assert counting.calls == {"get": 1}
