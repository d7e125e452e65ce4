"""Moving over without logging anyone out: real Starlette and Flask cookies, read and carried.

The cookies come from the frameworks themselves (Starlette's SessionMiddleware, Flask's
default session, itsdangerous directly), never from a copy of their format.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import itsdangerous
import pytest
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck.adapters.asgi import SessionMiddleware
from coatcheck.adapters.flask import CoatCheckSessionInterface
from coatcheck.errors import ConfigurationError
from coatcheck.interop.signed_sessions import FlaskSessionCookie, StarletteSessionCookie
from coatcheck.sessions import CookieSessions, SessionManager, StoreSessions
from coatcheck.stores import SQLiteStore

OLD = "the old secret key of the app that is moving over"


#: The data cookie's default name over HTTPS (every request here is https://).
DATA_COOKIE = "__Host-coatcheck_data"


def _starlette(middleware: Middleware) -> Starlette:
    async def set_(request: Request) -> JSONResponse:
        request.session.update({"user": "ada", "cart": ["hat"], "n": 2, "ok": True})
        return JSONResponse({})

    async def show(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    return Starlette(routes=[Route("/set", set_), Route("/show", show)], middleware=[middleware])


def test_a_starlette_session_moves_into_a_store_on_the_first_visit(tmp_path: Path) -> None:
    old = _starlette(Middleware(StarletteSessionMiddleware, secret_key=OLD))
    with TestClient(old, base_url="https://testserver") as client:
        client.get("/set")
        cookie = client.cookies["session"]
    store = SQLiteStore(tmp_path / "s.db")
    sessions = StoreSessions(SessionManager(store), legacy=[StarletteSessionCookie(OLD)])
    new = _starlette(Middleware(SessionMiddleware, sessions=sessions))
    with TestClient(new, base_url="https://testserver") as client:
        first = client.get("/show", headers={"cookie": f"session={cookie}"})
        assert first.json() == {"user": "ada", "cart": ["hat"], "n": 2, "ok": True}
        # Now a coatcheck session token under coatcheck's own data cookie, the data in
        # the store; the legacy cookie is cleared.
        token = first.cookies[DATA_COOKIE]
        assert len(token) == 52
        assert any(
            c.startswith("session=;") and "Max-Age=0" in c
            for c in first.headers.get_list("set-cookie")
        )
        again = client.get("/show", headers={"cookie": f"{DATA_COOKIE}={token}"})
        assert again.json() == first.json()
        # A forged or foreign cookie carries nothing over (and is cleared).
        other = itsdangerous.TimestampSigner("another secret entirely, just as long").sign(
            b"eyJ1c2VyIjogIm1hbGxvcnkifQ=="
        ).decode()
        forged = client.get("/show", headers={"cookie": f"session={other}"})
        assert forged.json() == {}
        assert forged.headers.get_list("set-cookie") == []  # nothing to carry, nothing sent


def test_starlette_cookies_past_max_age_are_not_carried() -> None:
    reader = StarletteSessionCookie(OLD, max_age=timedelta(days=14))
    value = itsdangerous.TimestampSigner(OLD).sign(b"eyJhIjogMX0=").decode()  # {"a": 1}
    assert reader.load(value, time.time()) == {"a": 1}
    assert reader.load(value, time.time() + 15 * 86_400) is None
    assert reader.load(value, time.time() - 3600) is None  # dated in the future
    assert StarletteSessionCookie(OLD, max_age=None).load(value, time.time() + 1e9) == {"a": 1}
    for junk in ("", "x", "a.b.c", value + "x", value.replace(".", "!"), "é" * 10):
        assert reader.load(junk, time.time()) is None


def _flask(configure: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = OLD
    configure(app)

    @app.get("/set")
    def set_() -> Any:
        flask.session["user"] = "ada"
        flask.session["pair"] = ("a", 1)
        flask.session["id"] = uuid.UUID(int=7)
        flask.session["html"] = Markup("<b>hi</b>")
        flask.session["raw"] = b"bytes stay behind"
        flask.session["nested"] = {" t": "looks like a tag"}
        flask.flash("Welcome back", "info")
        flask.session["blob"] = "z" * 400  # long enough for Flask to compress it
        return {}

    @app.get("/show")
    def show() -> Any:
        return dict(flask.session)

    @app.get("/flashes")
    def flashes() -> Any:
        return {"flashes": [list(p) for p in flask.get_flashed_messages(with_categories=True)]}

    return app


def test_a_flask_session_moves_over_with_its_flashes(tmp_path: Path) -> None:
    old = _flask(lambda app: None)
    with old.test_client() as client:
        client.get("/set")
        cookie = client.get_cookie("session")
        assert cookie is not None
        assert cookie.value.startswith(".")  # compressed: the harder case
    store = SQLiteStore(tmp_path / "s.db")
    legacy = [FlaskSessionCookie(["a newer key, with the old one as fallback", OLD])]

    def swap(app: flask.Flask) -> None:
        app.session_interface = CoatCheckSessionInterface(
            StoreSessions(SessionManager(store), legacy=legacy)
        )

    new = _flask(swap)
    with new.test_client() as client:
        client.set_cookie("session", cookie.value)
        shown = client.get("/show", base_url="https://localhost").get_json()
        assert shown == {
            "user": "ada",
            "pair": ["a", 1],
            "id": "00000000-0000-0000-0000-000000000007",
            "html": "<b>hi</b>",
            "nested": {" t": "looks like a tag"},
            "blob": "z" * 400,
            "_flashes": [["info", "Welcome back"]],
        }  # "raw" (bytes) cannot be JSON: it stays behind
        response = client.get("/flashes", base_url="https://localhost")
        assert response.get_json() == {"flashes": [["info", "Welcome back"]]}
        assert len(client.get_cookie(DATA_COOKIE).value) == 52  # type: ignore[union-attr]
        assert client.get_cookie("session") is None  # the legacy cookie was cleared


def test_the_legacy_cookie_may_have_another_name_and_is_cleared() -> None:
    signer = itsdangerous.URLSafeTimedSerializer(
        OLD, salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": __import__("hashlib").sha1},
    )  # fmt: skip
    value = signer.dumps({"theme": "dark"})
    sessions = CookieSessions(
        ["a new secret for the signed cookie, 32 bytes+"],
        legacy=[FlaskSessionCookie(OLD, cookie_name="old_session")],
    )
    app = _starlette(Middleware(SessionMiddleware, sessions=sessions))
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/show", headers={"cookie": f"old_session={value}"})
        assert response.json() == {"theme": "dark"}
        set_cookies = response.headers.get_list("set-cookie")
        assert any(c.startswith(f"{DATA_COOKIE}=") for c in set_cookies)
        assert any(c.startswith("old_session=;") and "Max-Age=0" in c for c in set_cookies)
    # One that cannot be read (another key signed it) carries nothing over, and is left
    # alone: a legacy reader's name may be another cookie's (a login cookie still called
    # "session"), which must never be expired for it.
    forged = itsdangerous.URLSafeTimedSerializer(
        "another secret entirely, just as long", salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": __import__("hashlib").sha1},
    ).dumps({"theme": "evil"})  # fmt: skip
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/show", headers={"cookie": f"old_session={forged}"})
        assert response.json() == {}
        assert response.headers.get_list("set-cookie") == []


def test_a_reader_needs_the_old_secret() -> None:
    with pytest.raises(ConfigurationError):
        FlaskSessionCookie([])
    with pytest.raises(ConfigurationError):
        StarletteSessionCookie("")
