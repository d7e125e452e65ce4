"""A minimal Flask app with coatcheck sessions (synchronous store I/O) and CSRF protection.

Run from the repository root, with the project's virtualenv and the ``flask`` extra::

    .venv/bin/pip install -e '.[flask]'
    .venv/bin/flask --app examples.flask_app run

Then POST /login (JSON), GET /me (it gives the CSRF token) and POST /logout with that
token in the ``X-CSRF-Token`` header. Sessions go to ``example-sessions.db`` unless
``COATCHECK_STORE`` names another store; ``COATCHECK_SECRET`` keys the CSRF tokens
(random per start when unset).
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
