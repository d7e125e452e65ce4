"""A FastAPI API for a native (mobile or desktop) app: bearer tokens, no cookies.

POST /login returns {"access_token": ...}; the app sends it as
``Authorization: Bearer <token>`` to GET /me; POST /logout revokes it on the server.
Tokens are opaque server-side sessions, so logout (or "log out everywhere") is immediate.

Run from the repository root, with the project's virtualenv, the ``fastapi`` extra
(it brings uvicorn) and argon2-cffi (for the password hash)::

    .venv/bin/pip install -e '.[fastapi]' argon2-cffi
    .venv/bin/uvicorn examples.native_api:app

No CSRF protection is needed: a bearer token is never sent by a browser on its own
(RFC 6750 §2.1). Sessions go to ``example-sessions.db`` unless ``COATCHECK_STORE``
names another store.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from coatcheck.adapters.fastapi import CoatCheck, Text
from coatcheck.auth import Authenticator, BearerTransport, Identity, SessionStrategy
from coatcheck.errors import InvalidCredentials
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


def create_app(store_url: str = "sqlite:///example-sessions.db") -> FastAPI:
    strategy = SessionStrategy(SessionManager(open_store(store_url)))
    app = FastAPI(title="coatcheck native-app API")
    cc = CoatCheck(app, authenticator=Authenticator(strategy, (BearerTransport(),)))

    @app.post("/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, object]:
        user = await run_in_threadpool(check_password, body.username, body.password)
        if user is None:
            raise InvalidCredentials("wrong username or password")
        user_id, name = user
        result = await cc.login(request, response, user_id, data={"name": name},
                                revoke_previous=False)  # fmt: skip
        response.headers["cache-control"] = "no-store"  # RFC 6749 §5.1
        return {"access_token": result.token, "token_type": "Bearer",
                "expires_at": int(result.expires_at)}  # fmt: skip

    @app.get("/me")
    async def me(user: Identity = Depends(cc.current_user)) -> dict[str, str]:  # noqa: B008
        return {"user_id": user.user_id, "name": user.name}

    @app.post("/logout")
    async def logout(
        request: Request, response: Response, user: Identity = Depends(cc.current_user)  # noqa: B008
    ) -> dict[str, bool]:
        await cc.logout(request, response)
        return {"ok": True}

    return app


app = create_app(os.environ.get("COATCHECK_STORE", "sqlite:///example-sessions.db"))
