"""A minimal Flask app with coatcheck sessions (synchronous store I/O) and CSRF protection.

Run: flask --app examples.flask_app run   (then POST /login, GET /me, POST /logout)
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from flask import Flask, request

from coatcheck.adapters.flask import CoatCheck, current_identity, login_required
from coatcheck.auth import Authenticator, CookieTransport, SessionStrategy
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import InvalidCredentials
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store

USERS = {"alice": ("correct horse", "Alice Example")}  # a real app stores argon2 hashes


def create_app(store_url: str = "sqlite:///example-sessions.db", *, secret: bytes) -> Flask:
    # sync=True: Redis and PostgreSQL stores do blocking I/O under WSGI.
    manager = SessionManager(open_store(store_url, sync=True))
    cookie = CookieTransport("session", CookiePolicy(secure=False))  # plain-HTTP localhost
    app = Flask(__name__)
    cc = CoatCheck(app, authenticator=Authenticator(SessionStrategy(manager), (cookie,)),
                   csrf=CsrfProtector(secret))  # fmt: skip

    @app.post("/login")
    def login() -> Any:
        body = request.get_json(force=True)
        user = USERS.get(body.get("username", ""))
        if user is None or not hmac.compare_digest(user[0], str(body.get("password", ""))):
            raise InvalidCredentials("wrong username or password")
        cc.login(body["username"], data={"name": user[1]}, persistent=bool(body.get("remember")))
        return {"hello": user[1]}

    @app.get("/me")
    @login_required
    def me() -> Any:
        return {"user_id": current_identity.user_id, "name": current_identity.name,
                "csrf_token": cc.csrf_token()}  # fmt: skip

    @app.post("/logout")
    @login_required
    def logout() -> Any:  # needs the X-CSRF-Token header from /me: it uses the cookie
        cc.logout()
        return {"ok": True}

    return app


app = create_app(
    os.environ.get("COATCHECK_STORE", "sqlite:///example-sessions.db"),
    secret=os.environ.get("COATCHECK_SECRET", "").encode() or os.urandom(32),
)
