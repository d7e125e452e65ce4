"""Apps with Device Bound Session Credentials for the tests: Starlette (ASGI), plain
WSGI and Flask, in session and hybrid mode, over a store the tests can count."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coatcheck.adapters import asgi, wsgi
from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    HybridCookieTransport,
    HybridStrategy,
    SessionStrategy,
)
from coatcheck.auth.dbsc import DeviceBinding
from coatcheck.clock import FrozenClock
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.sessions.dbsc import DbscPolicy
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key

BASE = "https://app.test"
SECRET = "dbsc-test-secret-" + "x" * 32


class CountingStore(MemoryStore):
    """The reference store, counting reads (``get``) and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    def records(self) -> list[SessionRecord]:
        """Every stored record (for inspection)."""
        return list(self._records.values())

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        self.reads += 1
        return await super().get(session_id, now)

    async def update(self, record: SessionRecord) -> bool:
        self.writes += 1
        return await super().update(record)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        self.writes += 1
        await super().touch(session_id, last_seen, expires_at)


@dataclass
class Parts:
    mode: str
    clock: Any
    store: Any
    authenticator: Authenticator
    binding: DeviceBinding | None
    cookie: CookieTransport


def build(
    mode: str, *, dbsc: bool = True, policy: DbscPolicy | None = None,
    access_ttl: timedelta = timedelta(minutes=5), clock: Any = None, store: Any = None,
) -> Parts:  # fmt: skip
    """The authenticator of a test app (session or hybrid mode), DBSC on or off.

    ``clock``: a FrozenClock by default; a real browser needs the SystemClock. ``store``:
    a counting memory store by default.
    """
    clock = clock if clock is not None else FrozenClock()
    store = store if store is not None else CountingStore()
    manager = SessionManager(store, clock=clock)
    policy = policy or DbscPolicy(exclude_paths=("/static",))
    cookie_policy = CookiePolicy(secure=True)
    cookie: CookieTransport
    if mode == "hybrid":
        codec = JWTCodec([Key.from_secret("k" * 32)], clock=clock)
        strategy: SessionStrategy | HybridStrategy = HybridStrategy(
            manager, codec, "r" * 32, access_ttl=access_ttl, clock=clock
        )
        cookie = HybridCookieTransport(
            "__Secure-access", cookie_policy, refresh_name="__Secure-refresh", clock=clock
        )
    else:
        strategy = SessionStrategy(manager, clock=clock)
        cookie = CookieTransport("__Host-session", cookie_policy, clock=clock)
    binding = (
        DeviceBinding(strategy, cookie, SECRET, policy=policy, clock=clock) if dbsc else None
    )
    authenticator = Authenticator(strategy, (cookie, BearerTransport()), binding=binding)
    return Parts(mode, clock, store, authenticator, binding, cookie)


def starlette_app(parts: Parts) -> Starlette:
    authenticator = parts.authenticator

    async def login(request: Request) -> Response:
        result = await authenticator.login(
            "alice",
            headers=asgi.request_headers(request.scope),
            data={"name": "Alice"},
            persistent=request.query_params.get("remember", "1") == "1",
        )
        response = JSONResponse({"ok": True, "token": result.token})
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return response

    async def logout(request: Request) -> Response:
        set_headers = await authenticator.logout(asgi.request_headers(request.scope))
        response = JSONResponse({"ok": True})
        for name, value in set_headers:
            response.headers.append(name, value)
        return response

    async def me(request: Request) -> Response:
        identity = asgi.identity_of(request.scope)
        if identity is None:
            return JSONResponse({"user": None}, status_code=401)
        return JSONResponse({"user": identity.user_id, "via": identity.via})

    async def static(request: Request) -> Response:
        return JSONResponse({"static": True})

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/me", me, methods=["GET", "POST"]),
            Route("/static/app.css", static, methods=["GET"]),
        ],
        middleware=[Middleware(asgi.AuthMiddleware, authenticator=authenticator)],
    )


def wsgi_app(parts: Parts) -> wsgi.AuthMiddleware:
    """The same app as plain WSGI (PEP 3333), driven through run_sync."""
    from coatcheck.sync import run_sync

    authenticator = parts.authenticator

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        headers = wsgi.request_headers(environ)
        out: list[tuple[str, str]] = [("content-type", "application/json")]
        if path == "/login":
            result = run_sync(authenticator.login("alice", headers=headers, data={"name": "A"}))
            out += result.set_headers
            status, body = "200 OK", {"ok": True}
        elif path == "/logout":
            out += run_sync(authenticator.logout(headers))
            status, body = "200 OK", {"ok": True}
        elif path.startswith("/static/"):
            status, body = "200 OK", {"static": True}
        else:
            identity = wsgi.identity_of(environ)
            if identity is None:
                status, body = "401 Unauthorized", {"user": None}
            else:
                status, body = "200 OK", {"user": identity.user_id, "via": identity.via}
        start_response(status, out)
        return [json.dumps(body).encode()]

    return wsgi.AuthMiddleware(app, authenticator)


def flask_app(parts: Parts) -> Any:
    """The same app on Flask, with the CoatCheck extension."""
    from flask import Flask, jsonify

    from coatcheck.adapters.flask import CoatCheck

    app = Flask(__name__)
    coatcheck = CoatCheck(app, authenticator=parts.authenticator)

    @app.post("/login")
    def login() -> Any:
        coatcheck.login("alice", data={"name": "Alice"})
        return jsonify(ok=True)

    @app.post("/logout")
    def logout() -> Any:
        coatcheck.logout()
        return jsonify(ok=True)

    @app.route("/me", methods=["GET", "POST"])
    def me() -> Any:
        identity = coatcheck.identity  # current_identity is a proxy: never `is None`
        if identity is None:
            return jsonify(user=None), 401
        return jsonify(user=identity.user_id, via=identity.via)

    @app.get("/static/app.css")
    def static_file() -> Any:
        return jsonify(static=True)

    return app
