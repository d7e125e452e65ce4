"""A minimal FastAPI app with coatcheck server-side sessions in an HttpOnly cookie.

Run: uvicorn examples.fastapi_app:app   (then POST /login, GET /me, POST /logout)
"""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

from coatcheck.adapters.fastapi import CoatCheck
from coatcheck.auth import Authenticator, CookieTransport, Identity, SessionStrategy
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


def create_app(store_url: str = "sqlite:///example-sessions.db", *, https: bool = False) -> FastAPI:
    strategy = SessionStrategy(SessionManager(open_store(store_url)))
    cookie = CookieTransport("session", CookiePolicy(secure=https))
    app = FastAPI(title="coatcheck + FastAPI")
    cc = CoatCheck(app, authenticator=Authenticator(strategy, (cookie,)))

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

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> dict[str, bool]:
        await cc.logout(request, response)
        return {"ok": True}

    return app


app = create_app(os.environ.get("COATCHECK_STORE", "sqlite:///example-sessions.db"))
