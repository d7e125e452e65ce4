"""Apps written for Starlette's, FastAPI's and Flask's own sessions run unchanged on coatcheck.

Each app below is written against its framework's session API alone (``request.session``,
``flask.session``, ``flask.flash``) and knows nothing of coatcheck. One scenario drives
it with the framework's own session, then again with only the middleware (Starlette,
FastAPI) or the session interface (Flask) swapped for coatcheck's: the answers must be
the same. Then coatcheck's server-side store shows what it adds (the data is not in
the cookie, and an emptied session is gone from the store too).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import pytest
from fastapi import FastAPI, Request
from flask.sessions import SecureCookieSessionInterface
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck.adapters.asgi import SessionMiddleware
from coatcheck.adapters.flask import CoatCheckSessionInterface
from coatcheck.sessions import CookieSessions, SessionManager, StoreSessions
from coatcheck.stores import SQLiteStore

# The session-data cookie's default name under the default (Secure) policy.
DATA = "__Host-coatcheck_data"

SECRET = "an old secret key, as apps have them: long enough"

# -- the apps, written for their frameworks' own sessions ----------------------------------


def starlette_app(middleware: Middleware) -> Starlette:
    async def home(request: StarletteRequest) -> JSONResponse:
        visits = request.session.get("visits", 0) + 1
        request.session["visits"] = visits
        return JSONResponse({"visits": visits, "name": request.session.get("name")})

    async def name(request: StarletteRequest) -> JSONResponse:
        request.session["name"] = request.query_params["name"]
        return JSONResponse({"ok": True})

    async def add(request: StarletteRequest) -> JSONResponse:
        # Starlette saves only what is assigned, so the app assigns the cart back.
        cart = request.session.get("cart", [])
        cart.append(request.query_params["item"])
        request.session["cart"] = cart
        return JSONResponse({"cart": cart})

    async def show(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(dict(request.session))

    async def forget(request: StarletteRequest) -> JSONResponse:
        request.session.pop("name", None)
        return JSONResponse({"ok": True})

    async def logout(request: StarletteRequest) -> JSONResponse:
        request.session.clear()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", home), Route("/name", name), Route("/add", add),
            Route("/show", show), Route("/forget", forget), Route("/logout", logout),
        ],
        middleware=[middleware],
    )  # fmt: skip


def fastapi_app(middleware: Middleware) -> FastAPI:
    app = FastAPI(middleware=[middleware])

    @app.get("/")
    async def home(request: Request) -> dict[str, Any]:
        visits = request.session.get("visits", 0) + 1
        request.session["visits"] = visits
        return {"visits": visits, "name": request.session.get("name")}

    @app.get("/name")
    def name(request: Request, name: str) -> dict[str, bool]:  # a sync endpoint, threadpool
        request.session["name"] = name
        return {"ok": True}

    @app.get("/add")
    async def add(request: Request, item: str) -> dict[str, list[str]]:
        cart = request.session.get("cart", [])
        cart.append(item)
        request.session["cart"] = cart
        return {"cart": cart}

    @app.get("/show")
    async def show(request: Request) -> dict[str, Any]:
        return dict(request.session)

    @app.get("/forget")
    async def forget(request: Request) -> dict[str, bool]:
        request.session.pop("name", None)
        return {"ok": True}

    @app.get("/logout")
    async def logout(request: Request) -> dict[str, bool]:
        request.session.clear()
        return {"ok": True}

    return app


def flask_app(configure: Callable[[flask.Flask], None]) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    configure(app)

    @app.get("/")
    def home() -> Any:
        visits = flask.session.get("visits", 0) + 1
        flask.session["visits"] = visits
        return {"visits": visits, "name": flask.session.get("name")}

    @app.get("/name")
    def name() -> Any:
        flask.session["name"] = flask.request.args["name"]
        flask.flash(f"Hello, {flask.request.args['name']}", "greeting")
        return {"ok": True}

    @app.get("/add")
    def add() -> Any:
        flask.session.setdefault("cart", []).append(flask.request.args["item"])
        flask.session.modified = True  # Flask saves a nested change only when told
        return {"cart": flask.session["cart"]}

    @app.get("/show")
    def show() -> Any:
        return {k: v for k, v in flask.session.items() if k != "_flashes"}

    @app.get("/flashes")
    def flashes() -> Any:
        return {"flashes": [list(p) for p in flask.get_flashed_messages(with_categories=True)]}

    @app.get("/forget")
    def forget() -> Any:
        flask.session.pop("name", None)
        return {"ok": True}

    @app.get("/logout")
    def logout() -> Any:
        flask.session.clear()
        return {"ok": True}

    return app


# -- one scenario, whatever runs the session -------------------------------------------------


def scenario(client: Any, *, flashes: bool = False) -> list[Any]:
    """What a visitor sees; the framework's own session and coatcheck's must agree."""
    seen: list[Any] = []
    seen.append(client.get("/").json())
    seen.append(client.get("/").json())
    seen.append(client.get("/name", params={"name": "Zoë"}).json())
    if flashes:
        seen.append(client.get("/flashes").json())
        seen.append(client.get("/flashes").json())
    seen.append(client.get("/add", params={"item": "hat"}).json())
    seen.append(client.get("/add", params={"item": "scarf"}).json())
    seen.append(client.get("/").json())
    seen.append(client.get("/show").json())
    seen.append(client.get("/forget").json())
    seen.append(client.get("/show").json())
    seen.append(client.get("/logout").json())
    seen.append(client.get("/show").json())
    return seen


EXPECTED = [
    {"visits": 1, "name": None},
    {"visits": 2, "name": None},
    {"ok": True},
    {"cart": ["hat"]},
    {"cart": ["hat", "scarf"]},
    {"visits": 3, "name": "Zoë"},
    {"visits": 3, "name": "Zoë", "cart": ["hat", "scarf"]},
    {"ok": True},
    {"visits": 3, "cart": ["hat", "scarf"]},
    {"ok": True},
    {},
]
EXPECTED_WITH_FLASHES = [
    *EXPECTED[:3],
    {"flashes": [["greeting", "Hello, Zoë"]]},
    {"flashes": []},
    *EXPECTED[3:],
]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "sessions.db")


def _stored_rows(store: SQLiteStore) -> int:
    row = store._rows("SELECT count(*) FROM coatcheck_sessions", ())[0]
    return int(row[0])


def _cookie(client: Any) -> str:
    return str(client.cookies.get(DATA) or "")


# -- Starlette and FastAPI: only the middleware is swapped -----------------------------------


@pytest.mark.parametrize("build", [starlette_app, fastapi_app], ids=["starlette", "fastapi"])
def test_an_app_for_starlettes_session_middleware_runs_unchanged(
    build: Callable[[Middleware], Any], store: SQLiteStore
) -> None:
    theirs = build(Middleware(StarletteSessionMiddleware, secret_key=SECRET))
    with TestClient(theirs, base_url="https://testserver") as client:
        assert scenario(client) == EXPECTED

    ours = build(Middleware(SessionMiddleware, sessions=StoreSessions(SessionManager(store))))
    with TestClient(ours, base_url="https://testserver") as client:
        results = scenario(client)
        assert results == EXPECTED
        # Server-side: the cookie is an opaque token, and the emptied session is gone.
        assert client.get("/name", params={"name": "Ann"}).status_code == 200
        token = _cookie(client)
        assert len(token) == 52
        assert "Ann" not in token
        assert _stored_rows(store) == 1
        client.get("/logout")
        assert _stored_rows(store) == 0
        assert _cookie(client) == ""


@pytest.mark.parametrize("build", [starlette_app, fastapi_app], ids=["starlette", "fastapi"])
def test_the_signed_cookie_option_runs_the_same_app(build: Callable[[Middleware], Any]) -> None:
    for encrypt in (False, True):
        sessions = CookieSessions([SECRET], encrypt=encrypt)
        app = build(Middleware(SessionMiddleware, sessions=sessions))
        with TestClient(app, base_url="https://testserver") as client:
            assert scenario(client) == EXPECTED
            client.get("/name", params={"name": "Ann"})
            value = _cookie(client)
            readable = "Ann" in base64.urlsafe_b64decode(value.split(".")[0] + "==").decode(
                "utf-8", "replace"
            )
            assert readable is not encrypt


# -- Flask: only the session interface is swapped --------------------------------------------


def test_an_app_for_flasks_session_runs_unchanged(store: SQLiteStore) -> None:
    def flasks_own(app: flask.Flask) -> None:
        app.session_interface = SecureCookieSessionInterface()

    theirs = flask_app(flasks_own)
    with theirs.test_client() as client:
        assert [_flask_json(r) for r in scenario(_FlaskClient(client), flashes=True)] == (
            EXPECTED_WITH_FLASHES
        )

    def swap(app: flask.Flask) -> None:
        app.session_interface = CoatCheckSessionInterface(StoreSessions(SessionManager(store)))

    ours = flask_app(swap)
    with ours.test_client() as client:
        assert [_flask_json(r) for r in scenario(_FlaskClient(client), flashes=True)] == (
            EXPECTED_WITH_FLASHES
        )
        client.get("/name", query_string={"name": "Ann"})
        assert _stored_rows(store) == 1
        client.get("/logout")
        assert _stored_rows(store) == 0


class _FlaskClient:
    """Flask's test client with the ``params=`` spelling and ``.json()`` of the others."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self._client.get(path, query_string=params or {}, base_url="https://localhost")
        assert response.status_code == 200, response.data
        return _Json(response.get_json())


class _Json:
    def __init__(self, value: Any) -> None:
        self.value = value

    def json(self) -> Any:
        return self.value


def _flask_json(value: Any) -> Any:
    return value
