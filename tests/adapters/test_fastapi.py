"""The FastAPI integration: dependencies, the stable 401 body, OpenAPI security, bearer calls."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request, Response

from coatcheck.adapters.asgi import AuthMiddleware
from coatcheck.adapters.fastapi import CoatCheck
from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    Identity,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.clock import FrozenClock
from coatcheck.errors import StoreUnavailable
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key, KeyRing

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def make_app(authenticator: Authenticator, *, middleware: bool = False) -> FastAPI:
    app = FastAPI()
    cc = CoatCheck(app, authenticator=authenticator)
    if middleware:
        app.add_middleware(AuthMiddleware, authenticator=authenticator)

    @app.post("/login")
    async def login(request: Request, response: Response) -> dict[str, Any]:
        result = await cc.login(request, response, "ada", data={"name": "Ada"})
        return {"token": result.token}

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> dict[str, bool]:
        await cc.logout(request, response)
        return {"ok": True}

    @app.get("/me")
    async def me(user: Identity = Depends(cc.current_user)) -> dict[str, str]:  # noqa: B008
        return {"name": user.name, "via": user.via}

    @app.get("/maybe")
    async def maybe(user: Identity | None = Depends(cc.optional_user)) -> dict[str, Any]:  # noqa: B008
        return {"name": user.name if user else None}

    return app


def _sessions(clock: FrozenClock, store: Any = None) -> Authenticator:
    manager = SessionManager(store if store is not None else MemoryStore(), clock=clock)
    return Authenticator(SessionStrategy(manager, clock=clock))


@pytest.fixture(params=[False, True], ids=["dependency", "with-middleware"])
def client(request: pytest.FixtureRequest, clock: FrozenClock) -> TestClient:
    return TestClient(make_app(_sessions(clock), middleware=request.param),
                      base_url="https://testserver")  # fmt: skip


def test_guest_gets_the_stable_401(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing_credentials",
        "message": "log in first: no session cookie or bearer token was sent",
    }
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/maybe").json() == {"name": None}
    bad = client.get("/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.json()["error"] == "invalid_credentials"
    assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_cookie_login_me_logout(client: TestClient) -> None:
    login = client.post("/login")
    assert login.headers["set-cookie"].startswith("__Host-session=")
    assert client.get("/me").json() == {"name": "Ada", "via": "cookie"}
    assert client.get("/maybe").json() == {"name": "Ada"}
    assert "Max-Age=0" in client.post("/logout").headers["set-cookie"]
    assert client.get("/me").status_code == 401


def test_a_call_with_the_bearer_token(client: TestClient) -> None:
    token = client.post("/login").json()["token"]
    client.cookies.clear()
    me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "Ada", "via": "bearer"}


def test_openapi_declares_bearer_and_cookie_schemes(clock: FrozenClock) -> None:
    cookie = CookieTransport("__Host-sid", clock=clock)
    strategy = SessionStrategy(SessionManager(MemoryStore(), clock=clock), clock=clock)
    authenticator = Authenticator(strategy, (cookie, BearerTransport()))
    spec = TestClient(make_app(authenticator)).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer",
                   "bearerFormat": "opaque session token or JWT"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "__Host-sid"},
    }  # fmt: skip
    # Either scheme is enough: two alternatives, each a lock in /docs.
    assert spec["paths"]["/me"]["get"]["security"] == [{"bearer": []}, {"cookie": []}]
    assert spec["paths"]["/maybe"]["get"]["security"] == [{"bearer": []}, {"cookie": []}]
    assert "security" not in spec["paths"]["/login"]["post"]
    # No credential parameters leak into the operation (the schemes read nothing).
    assert "parameters" not in spec["paths"]["/me"]["get"]


def test_bearer_only_authenticator_documents_bearer_only(clock: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([Key.generate("ES256")]), algorithms=["ES256"], clock=clock)
    authenticator = Authenticator(JWTStrategy(codec, clock=clock), (BearerTransport(),))
    client = TestClient(make_app(authenticator))
    spec = client.get("/openapi.json").json()
    assert list(spec["components"]["securitySchemes"]) == ["bearer"]
    token = client.post("/login").json()["token"]
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).json() == {
        "name": "Ada", "via": "bearer"}  # fmt: skip


class DownStore(MemoryStore):
    async def get(self, session_id: str, now: float) -> Any:
        raise StoreUnavailable("the store is down")


def test_store_outage_is_503(clock: FrozenClock) -> None:
    client = TestClient(make_app(_sessions(clock, DownStore())))
    response = client.get("/me", headers={"Authorization": "Bearer " + "a" * 8 + "." + "b" * 43})
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"


def test_a_credential_cookie_sent_twice_is_a_guest(client: TestClient) -> None:
    # Issue 12, item 1: neither copy of an ambiguous credential cookie is trusted.
    client.post("/login")
    mine = client.cookies["__Host-session"]
    client.cookies.clear()
    header = f"__Host-session=other.value; __Host-session={mine}"
    assert client.get("/me", headers={"cookie": header}).status_code == 401
    assert client.get("/me", headers={"cookie": f"__Host-session={mine}"}).status_code == 200
