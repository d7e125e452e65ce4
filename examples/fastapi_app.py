"""A minimal FastAPI app with coatcheck server-side sessions in an HttpOnly cookie,
and CSRF protection (the session cookie is ambient: a browser sends it on its own).

Run from the repository root, with the project's virtualenv, the ``fastapi`` extra
(it brings uvicorn) and argon2-cffi (for the password hash)::

    .venv/bin/pip install -e '.[fastapi]' argon2-cffi
    .venv/bin/uvicorn examples.fastapi_app:app

Then POST /login (JSON), GET /me, GET /csrf and POST /logout with the token from
/csrf in the ``X-CSRF-Token`` header. Sessions go to ``example-sessions.db`` unless
``COATCHECK_STORE`` names another store; ``COATCHECK_SECRET`` keys the CSRF tokens
(random per start when unset).
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from coatcheck.adapters.asgi import AuthMiddleware
from coatcheck.adapters.csrf import CsrfMiddleware, csrf_token
from coatcheck.adapters.fastapi import CoatCheck, Text
from coatcheck.auth import Authenticator, CookieTransport, Identity, SessionStrategy
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import InvalidCredentials
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store

HASHER = PasswordHasher()  # argon2id (RFC 9106), argon2-cffi's defaults
# A real app keeps the hashes in its user table; this one hashes its one user at start.
USERS = {"alice": (HASHER.hash("correct horse"), "Alice Example")}
# Checked for an unknown username, so that it costs the same argon2 work as a wrong
# password: the answer and its timing do not tell which usernames exist.
DUMMY_HASH = HASHER.hash("no user has this password")


def check_password(username: str, password: str) -> tuple[str, str] | None:
    """``(user_id, name)`` when the password is right, else ``None``; constant work.

    Blocking (argon2 takes tens of milliseconds): call it in a worker thread.
    """
    user = USERS.get(username)
    try:
        # argon2 hashes bytes: any password, "é" included, is UTF-8 encoded, never
        # compared as str (hmac.compare_digest refuses non-ASCII str: a 500).
        HASHER.verify(user[0] if user else DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return (username, user[1]) if user else None


class Login(BaseModel):
    # Text, not str: a lone surrogate ("\\ud800" in JSON) or a NUL is a 400 invalid_text
    # before the endpoint runs, instead of a 500 wherever the string is encoded.
    username: Text
    password: Text
    remember: bool = False


def create_app(
    store_url: str = "sqlite:///example-sessions.db", *, secret: bytes, https: bool = False
) -> FastAPI:
    strategy = SessionStrategy(SessionManager(open_store(store_url)))
    policy = CookiePolicy(secure=https)
    authenticator = Authenticator(strategy, (CookieTransport("session", policy),))
    app = FastAPI(title="coatcheck + FastAPI")
    # The last added middleware runs first: AuthMiddleware finds the identity, then
    # CsrfMiddleware checks unsafe requests against it; CoatCheck reuses that identity.
    app.add_middleware(CsrfMiddleware, protector=CsrfProtector(secret), cookie_policy=policy)
    app.add_middleware(AuthMiddleware, authenticator=authenticator)
    cc = CoatCheck(app, authenticator=authenticator)

    @app.post("/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, str]:
        user = await run_in_threadpool(check_password, body.username, body.password)
        if user is None:
            raise InvalidCredentials("wrong username or password")
        user_id, name = user
        await cc.login(request, response, user_id, data={"name": name}, persistent=body.remember)
        return {"hello": name}

    @app.get("/me")
    async def me(user: Identity = Depends(cc.current_user)) -> dict[str, str]:  # noqa: B008
        return {"user_id": user.user_id, "name": user.name}

    @app.get("/csrf")
    async def csrf(request: Request) -> dict[str, str]:
        # For the X-CSRF-Token header of every POST the session cookie authenticates.
        return {"csrf_token": csrf_token(request.scope)}

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> dict[str, bool]:
        await cc.logout(request, response)
        return {"ok": True}

    return app


app = create_app(
    os.environ.get("COATCHECK_STORE", "sqlite:///example-sessions.db"),
    secret=os.environ.get("COATCHECK_SECRET", "").encode() or os.urandom(32),
)
