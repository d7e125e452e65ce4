"""The FastAPI integration: dependencies, the stable 401 body, OpenAPI security, bearer calls."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from coatcheck.adapters.asgi import AuthMiddleware
from coatcheck.adapters.fastapi import CoatCheck, Text
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
from coatcheck.revocation import RevocationSet
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


# -- request bodies (issue 12 item 4) -------------------------------------------------------


class _Note(BaseModel):
    title: Text
    tags: dict[str, int] = {}
    weight: float = 0.0


def _notes_app(clock: FrozenClock, *, own_handler: bool = False) -> FastAPI:
    app = FastAPI()
    if own_handler:

        async def mine(request: Request, exc: Exception) -> Response:
            return Response("mine", status_code=418)

        app.add_exception_handler(RequestValidationError, mine)
    CoatCheck(app, authenticator=_sessions(clock))

    @app.post("/notes")
    async def notes(note: _Note) -> dict[str, str]:
        # Encoding is where a lone surrogate used to explode (a hasher, a driver ...).
        return {"title": note.title, "bytes": note.title.encode().hex()}

    return app


@pytest.mark.parametrize(
    "body",
    [b'{"title": "\\ud800"}', b'{"title": "a\\u0000b"}', b'{"title": "\xed\xa0\x80"}'],
)
def test_a_text_field_that_is_not_unicode_is_400(clock: FrozenClock, body: bytes) -> None:
    client = TestClient(_notes_app(clock))
    answer = client.post("/notes", content=body, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_text")
    assert client.post("/notes", json={"title": "é 🔑"}).json()["title"] == "é 🔑"


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": 1e999}',  # FastAPI's own handler echoed inf: a 500 (allow_nan=False)
        b'{"title": "x", "tags": {"\\ud800": "not a number"}}',  # the loc names the key
        b'{"title": {"\\ud800": 1}}',  # the input echoed holds a lone surrogate
    ],
)
def test_validation_errors_never_echo_what_cannot_be_sent(
    clock: FrozenClock, body: bytes
) -> None:
    client = TestClient(_notes_app(clock), raise_server_exceptions=False)
    answer = client.post("/notes", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "bad_request"
    assert all("input" not in item for item in answer.json()["detail"])


def test_the_apps_own_validation_handler_is_kept(clock: FrozenClock) -> None:
    client = TestClient(_notes_app(clock, own_handler=True))
    assert client.post("/notes", json={"title": 5}).status_code == 418


def test_logout_publishes_the_revocation(clock: FrozenClock) -> None:
    # Issue 12 item 6: the adapter's logout goes through the manager, which publishes.
    revoked = RevocationSet(retention=timedelta(minutes=6), clock=clock)
    manager = SessionManager(MemoryStore(), clock=clock, revocations=revoked)
    client = TestClient(make_app(Authenticator(SessionStrategy(manager, clock=clock))),
                        base_url="https://testserver")  # fmt: skip
    client.post("/login")
    assert client.get("/me").status_code == 200
    client.post("/logout")
    assert len(revoked) == 1
