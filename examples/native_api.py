"""A FastAPI API for a native (mobile or desktop) app: bearer tokens, no cookies.

POST /login returns {"access_token": ...}; the app sends it as
``Authorization: Bearer <token>`` to GET /me; POST /logout revokes it on the server.
Tokens are opaque server-side sessions, so logout (or "log out everywhere") is immediate.

Run from the repository root, with the project's virtualenv, the ``fastapi`` extra
and uvicorn (which that extra does not bring)::

    .venv/bin/pip install -e '.[fastapi]'
    .venv/bin/uvicorn examples.native_api:app

No CSRF protection is needed: a bearer token is never sent by a browser on its own
(RFC 6750 §2.1). Sessions go to ``example-sessions.db`` unless ``COATCHECK_STORE``
names another store.
"""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

from coatcheck.adapters.fastapi import CoatCheck
from coatcheck.auth import Authenticator, BearerTransport, Identity, SessionStrategy
from coatcheck.errors import InvalidCredentials
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store

USERS = {"alice": ("correct horse", "Alice Example")}  # a real app stores argon2 hashes


class Login(BaseModel):
    username: str
    password: str


def create_app(store_url: str = "sqlite:///example-sessions.db") -> FastAPI:
    strategy = SessionStrategy(SessionManager(open_store(store_url)))
    app = FastAPI(title="coatcheck native-app API")
    cc = CoatCheck(app, authenticator=Authenticator(strategy, (BearerTransport(),)))

    @app.post("/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, object]:
        user = USERS.get(body.username)
        if user is None or not hmac.compare_digest(user[0], body.password):
            raise InvalidCredentials("wrong username or password")
        result = await cc.login(request, response, body.username, data={"name": user[1]},
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
