"""flask.session through CoatCheck(sessions=...): logins, CSRF for guests, failures, flashes."""

from __future__ import annotations

import re
from typing import Any

import flask
import pytest

from coatcheck.adapters.flask import CoatCheck, flash, pop_flashes
from coatcheck.auth import Authenticator, CookieTransport, SessionStrategy
from coatcheck.clock import FrozenClock
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import ConfigurationError, StoreUnavailable
from coatcheck.sessions import SessionManager, SessionRecord, StoreSessions
from coatcheck.sessions.data import DATA_KEY
from coatcheck.stores import MemoryStore

from ..stores.contract import CountingStore

BASE = "https://localhost"
SECRET = b"c" * 32


class Outage(MemoryStore):
    down = False

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        if self.down:
            raise StoreUnavailable("the session store cannot be reached")
        return await super().get(session_id, now)


def make_app(store: Any, clock: FrozenClock, *, csrf: bool = False) -> flask.Flask:
    manager = SessionManager(store, clock=clock)
    authenticator = Authenticator(SessionStrategy(manager, clock=clock),
                                  (CookieTransport("auth", clock=clock),))  # fmt: skip
    app = flask.Flask(__name__)
    cc = CoatCheck(
        app, authenticator=authenticator, sessions=StoreSessions(manager),
        csrf=CsrfProtector(SECRET) if csrf else None,
    )  # fmt: skip

    @app.get("/show")
    def show() -> Any:
        return {"session": dict(flask.session), "user": getattr(cc.identity, "user_id", None)}

    @app.post("/add")
    def add() -> Any:
        flask.session.setdefault("cart", []).append(flask.request.args["item"])  # no .modified
        flash(flask.request, f"Added a {flask.request.args['item']}")
        return {"ok": True}

    @app.get("/form")
    def form() -> Any:
        return {"token": cc.csrf_token()}

    @app.post("/login")
    def login() -> Any:
        cc.login("ada")
        return {"ok": True}

    @app.post("/logout")
    def logout() -> Any:
        cc.logout()
        return {"ok": True}

    @app.get("/flashes")
    def flashes() -> Any:
        return {"flashes": [list(p) for p in pop_flashes(flask.request)]}

    return app


def test_the_cart_survives_login_and_logout_drops_it(clock: FrozenClock) -> None:
    store = MemoryStore()
    client = make_app(store, clock).test_client()
    client.post("/add?item=hat", base_url=BASE)
    client.post("/add?item=scarf", base_url=BASE)
    assert client.get("/flashes", base_url=BASE).get_json() == {
        "flashes": [["message", "Added a hat"], ["message", "Added a scarf"]],
    }
    client.post("/login", base_url=BASE)
    shown = client.get("/show", base_url=BASE).get_json()
    assert shown == {"session": {"cart": ["hat", "scarf"]}, "user": "ada"}
    [record] = store._records.values()
    assert record.user_id == "ada"
    assert record.data[DATA_KEY] == {"cart": ["hat", "scarf"]}
    assert client.get_cookie("session") is None
    client.post("/logout", base_url=BASE)
    assert client.get("/show", base_url=BASE).get_json() == {"session": {}, "user": None}
    assert len(store) == 0


def test_a_guest_who_stores_nothing_costs_nothing(clock: FrozenClock) -> None:
    counting = CountingStore(MemoryStore())
    client = make_app(counting, clock).test_client()
    for _ in range(3):
        response = client.get("/show", base_url=BASE)
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.headers.get("Vary", "")
    assert counting.calls == {}


def test_a_guests_csrf_tokens_bind_to_their_session_once_it_exists(clock: FrozenClock) -> None:
    client = make_app(MemoryStore(), clock, csrf=True).test_client()
    before = client.get("/form", base_url=BASE).get_json()["token"]  # pre-session cookie
    response = client.post("/add?item=hat", base_url=BASE, headers={"x-csrf-token": before})
    assert response.status_code == 200
    # The session exists now: new pages bind to it; the older page's token still works.
    after = client.get("/form", base_url=BASE).get_json()["token"]
    for token in (after, before):
        ok = client.post("/add?item=x", base_url=BASE, headers={"x-csrf-token": token})
        assert ok.status_code == 200
    # Without the pre-session cookie, only the session-bound token passes.
    client.delete_cookie("__Host-csrf_pre")
    assert client.post("/add?item=y", base_url=BASE,
                       headers={"x-csrf-token": after}).status_code == 200  # fmt: skip
    refused = client.post("/add?item=z", base_url=BASE, headers={"x-csrf-token": before})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "csrf_token_invalid"
    # A guest with a session is asked for a token even for JSON (its cookie is ambient).
    bare = client.post("/add?item=z", base_url=BASE, json={})
    assert bare.status_code == 403
    assert bare.get_json()["error"] == "csrf_token_missing"
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", after)


def test_a_store_outage_while_opening_the_session_answers_503(clock: FrozenClock) -> None:
    store = Outage()
    client = make_app(store, clock).test_client()
    client.post("/add?item=hat", base_url=BASE)
    store.down = True
    response = client.get("/show", base_url=BASE)
    assert response.status_code == 503
    assert response.get_json()["error"] == "store_unavailable"
    assert "Set-Cookie" not in response.headers


def test_too_much_data_answers_500_with_the_reason(clock: FrozenClock) -> None:
    app = make_app(MemoryStore(), clock)

    @app.post("/big")
    def big() -> Any:
        flask.session["blob"] = "x" * 70_000
        return {"ok": True}

    response = app.test_client().post("/big", base_url=BASE)
    assert response.status_code == 500
    assert response.get_json()["error"] == "session_too_large"
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("value", ["x" * 60, "a1b2c3d4." + "A" * 43])
def test_a_bad_session_cookie_is_a_fresh_guest(value: str, clock: FrozenClock) -> None:
    client = make_app(MemoryStore(), clock).test_client()
    client.set_cookie("session", value)
    response = client.get("/show", base_url=BASE)
    assert response.status_code == 200
    assert response.get_json()["session"] == {}


def test_every_coatcheck_cookie_has_its_own_name(clock: FrozenClock) -> None:
    # The session-data cookie against the CSRF cookies: only the extension sees both.
    manager = SessionManager(MemoryStore(), clock=clock)
    authenticator = Authenticator(SessionStrategy(manager), (CookieTransport("auth"),))
    with pytest.raises(ConfigurationError) as raised:
        CoatCheck(
            authenticator=authenticator,
            csrf=CsrfProtector(b"k" * 32),
            sessions=StoreSessions(manager, cookie_name="__Host-csrf"),
        )
    assert "the session-data cookie and the CSRF double-submit cookie" in str(raised.value)
    CoatCheck(authenticator=authenticator, csrf=CsrfProtector(b"k" * 32),
              sessions=StoreSessions(manager))  # fmt: skip
