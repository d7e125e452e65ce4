"""A minimal Flask app with coatcheck sessions (synchronous store I/O) and CSRF protection.

Run from the repository root, with the project's virtualenv, the ``flask`` extra and
argon2-cffi (for the password hash)::

    .venv/bin/pip install -e '.[flask]' argon2-cffi
    .venv/bin/flask --app examples.flask_app run

Then POST /login (JSON), GET /me (it gives the CSRF token) and POST /logout with that
token in the ``X-CSRF-Token`` header. Sessions go to ``example-sessions.db`` unless
``COATCHECK_STORE`` names another store; ``COATCHECK_SECRET`` keys the CSRF tokens
(random per start when unset).
"""

from __future__ import annotations

import os
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask

from coatcheck.adapters.flask import CoatCheck, current_identity, json_body, login_required
from coatcheck.auth import Authenticator, CookieTransport, SessionStrategy
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import InputError, InvalidCredentials
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store

HASHER = PasswordHasher()  # argon2id (RFC 9106), argon2-cffi's defaults
# A real app keeps the hashes in its user table; this one hashes its one user at start.
USERS = {"alice": (HASHER.hash("correct horse"), "Alice Example")}
# Checked for an unknown username, so that it costs the same argon2 work as a wrong
# password: the answer and its timing do not tell which usernames exist.
DUMMY_HASH = HASHER.hash("no user has this password")


def check_password(username: object, password: object) -> tuple[str, str] | None:
    """``(user_id, name)`` when the password is right, else ``None``; constant work."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    user = USERS.get(username)
    try:
        # argon2 hashes bytes: any password, "é" included, is UTF-8 encoded, never
        # compared as str (hmac.compare_digest refuses non-ASCII str: a 500).
        HASHER.verify(user[0] if user else DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return (username, user[1]) if user else None


def create_app(store_url: str = "sqlite:///example-sessions.db", *, secret: bytes) -> Flask:
    # sync=True: Redis and PostgreSQL stores do blocking I/O under WSGI.
    manager = SessionManager(open_store(store_url, sync=True))
    cookie = CookieTransport("session", CookiePolicy(secure=False))  # plain-HTTP localhost
    app = Flask(__name__)
    cc = CoatCheck(app, authenticator=Authenticator(SessionStrategy(manager), (cookie,)),
                   csrf=CsrfProtector(secret))  # fmt: skip

    @app.post("/login")
    def login() -> Any:
        # json_body: a lone surrogate or a NUL is a 400 here, not a 500 in the hasher.
        body = json_body()
        if not isinstance(body, dict):
            raise InputError("send a JSON object")
        user = check_password(body.get("username"), body.get("password"))
        if user is None:
            raise InvalidCredentials("wrong username or password")
        user_id, name = user
        cc.login(user_id, data={"name": name}, persistent=body.get("remember") is True)
        return {"hello": name}

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
