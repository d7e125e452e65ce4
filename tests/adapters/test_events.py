"""Every adapter path emits the same events, because the core emits them (not the adapters).

One flow, through each framework's own test client: a login (JSON, as a native app),
a cross-site logout the CSRF rules refuse, and a logout with the bearer token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient as FastAPIClient
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient

from coatcheck import events
from coatcheck.adapters import asgi, wsgi
from coatcheck.adapters.csrf import CsrfMiddleware
from coatcheck.adapters.fastapi import CoatCheck as FastAPICoatCheck
from coatcheck.adapters.flask import CoatCheck as FlaskCoatCheck
from coatcheck.auth import Authenticator, BearerTransport, CookieTransport, SessionStrategy
from coatcheck.csrf import CsrfProtector
from coatcheck.events import (
    Concealed,
    CookieIssued,
    CsrfRefused,
    Event,
    LoggedOut,
    LoginSucceeded,
    SessionCreated,
    SessionsRevoked,
)
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.sync import run_sync

PROTECTOR = CsrfProtector("c" * 32)
USER = "u_0a1b2c3d4e5f6a7b"
CROSS_SITE = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}


def _authenticator() -> Authenticator:
    # MemoryStore never suspends: the same store serves the sync adapters.
    strategy = SessionStrategy(SessionManager(MemoryStore()))
    return Authenticator(strategy, (CookieTransport("sid", CookiePolicy(secure=False)),
                                    BearerTransport()))  # fmt: skip


Flow = Callable[[], tuple[int, int, int]]


def _asgi_flow() -> tuple[int, int, int]:
    auth = _authenticator()

    async def login(request: StarletteRequest) -> JSONResponse:
        result = await auth.login(USER, headers=asgi.request_headers(request.scope), ip="h")
        return JSONResponse({"token": result.token}, headers=dict(result.set_headers))

    async def logout(request: StarletteRequest) -> JSONResponse:
        out = await auth.logout(asgi.request_headers(request.scope))
        return JSONResponse({}, headers=dict(out))

    app = Starlette(
        routes=[Route("/login", login, methods=["POST"]),
                Route("/logout", logout, methods=["POST"])],
        middleware=[Middleware(asgi.AuthMiddleware, authenticator=auth),
                    Middleware(CsrfMiddleware, protector=PROTECTOR, credential_cookies=("sid",))],
    )  # fmt: skip
    with TestClient(app) as client:
        token = client.post("/login", json={}).json()["token"]
        refused = client.post("/logout", headers=CROSS_SITE).status_code
        client.cookies.clear()
        done = client.post("/logout", headers={"authorization": f"Bearer {token}"}).status_code
        return 200, refused, done


def _fastapi_flow() -> tuple[int, int, int]:
    app = FastAPI()
    cc = FastAPICoatCheck(app, authenticator=_authenticator())
    app.add_middleware(CsrfMiddleware, protector=PROTECTOR, credential_cookies=("sid",))

    @app.post("/login")
    async def login(request: Request, response: Response) -> dict[str, str]:
        return {"token": (await cc.login(request, response, USER)).token}

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> dict[str, str]:
        await cc.logout(request, response)
        return {}

    with FastAPIClient(app) as client:
        token = client.post("/login", json={}).json()["token"]
        refused = client.post("/logout", headers=CROSS_SITE).status_code
        client.cookies.clear()
        done = client.post("/logout", headers={"authorization": f"Bearer {token}"}).status_code
        return 200, refused, done


def _wsgi_flow() -> tuple[int, int, int]:
    auth = _authenticator()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = wsgi.request_headers(environ)
        if environ["PATH_INFO"] == "/login":
            result = run_sync(auth.login(USER, headers=headers, ip="h"))
            out, body = list(result.set_headers), {"token": result.token}
        else:
            out, body = run_sync(auth.logout(headers)), {}
        start_response("200 OK", [("content-type", "application/json"), *out])
        return [json.dumps(body).encode()]

    stack = wsgi.AuthMiddleware(
        wsgi.CsrfMiddleware(app, PROTECTOR, credential_cookies=("sid",)), auth
    )
    client = WerkzeugClient(stack)
    token = json.loads(client.post("/login", json={}).get_data())["token"]
    refused = client.post("/logout", headers=CROSS_SITE).status_code
    client.delete_cookie("sid")
    done = client.post("/logout", headers={"authorization": f"Bearer {token}"}).status_code
    return 200, refused, done


def _flask_flow() -> tuple[int, int, int]:
    app = Flask(__name__)
    cc = FlaskCoatCheck(app, authenticator=_authenticator(), csrf=PROTECTOR)

    @app.post("/login")
    def login() -> dict[str, str]:
        return {"token": cc.login(USER).token}

    @app.post("/logout")
    def logout() -> dict[str, str]:
        cc.logout()
        return {}

    client = app.test_client()
    token = client.post("/login", json={}).get_json()["token"]
    refused = client.post("/logout", headers=CROSS_SITE).status_code
    client.delete_cookie("sid")
    done = client.post("/logout", headers={"authorization": f"Bearer {token}"}).status_code
    return 200, refused, done


FLOWS: dict[str, Flow] = {
    "asgi": _asgi_flow,
    "fastapi": _fastapi_flow,
    "wsgi": _wsgi_flow,
    "flask": _flask_flow,
}


@pytest.fixture
def heard() -> Iterator[list[Event]]:
    found: list[Event] = []
    with events.subscribe(found.append):
        yield found


@pytest.mark.parametrize("adapter", FLOWS)
def test_the_same_events_from_every_adapter(adapter: str, heard: list[Event]) -> None:
    assert FLOWS[adapter]() == (200, 403, 200)
    [cookie] = [e for e in heard if isinstance(e, CookieIssued)]
    [login] = [e for e in heard if isinstance(e, LoginSucceeded)]
    assert [type(e) for e in heard] == [
        SessionCreated, CookieIssued, LoginSucceeded,  # the login
        CsrfRefused,  # the cross-site logout, refused before the app
        SessionsRevoked, LoggedOut,  # the bearer logout
    ]  # fmt: skip
    assert heard[0] == SessionCreated(guest=False)
    assert cookie.cookie == "credential"
    assert cookie.size > len("sid=")
    assert (login.mode, login.bound, login.user) == ("session", "", Concealed(USER))
    assert heard[3] == CsrfRefused(reason="csrf_cross_origin")
    assert heard[4:] == [SessionsRevoked(count=1), LoggedOut(mode="session", user=Concealed(USER))]
