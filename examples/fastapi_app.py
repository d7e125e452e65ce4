"""A minimal FastAPI app with coatcheck server-side sessions in an HttpOnly cookie,
and CSRF protection (the session cookie is ambient: a browser sends it on its own).

Run from the repository root, with the project's virtualenv, the ``fastapi`` extra
and uvicorn (which that extra does not bring)::

    .venv/bin/pip install -e '.[fastapi]'
    .venv/bin/uvicorn examples.fastapi_app:app

Then POST /login (JSON), GET /me, GET /csrf and POST /logout with the token from
/csrf in the ``X-CSRF-Token`` header. Sessions go to ``example-sessions.db`` unless
``COATCHECK_STORE`` names another store; ``COATCHECK_SECRET`` keys the CSRF tokens
(random per start when unset).
"""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

from coatcheck.adapters.asgi import AuthMiddleware
from coatcheck.adapters.csrf import CsrfMiddleware, csrf_token
from coatcheck.adapters.fastapi import CoatCheck
from coatcheck.auth import Authenticator, CookieTransport, Identity, SessionStrategy
from coatcheck.csrf import CsrfProtector
from coatcheck.errors import InvalidCredentials
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store

# A real app checks a password hash (argon2) from its user table.
USERS = {"alice": ("correct horse", "Alice Example")}


class Login(BaseModel):
    username: str
    password: str
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
        user = USERS.get(body.username)
        if user is None or not hmac.compare_digest(user[0], body.password):
            raise InvalidCredentials("wrong username or password")
        data = {"name": user[1]}
        await cc.login(request, response, body.username, data=data, persistent=body.remember)
        return {"hello": user[1]}

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
