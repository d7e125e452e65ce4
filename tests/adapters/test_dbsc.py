"""The DBSC endpoints over HTTP: statuses and headers the draft expects, and hostile
requests (forged, replayed, oversized, in bursts of 200) that never get a 5xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from coatcheck.adapters.dbsc import dbsc_response
from coatcheck.auth.dbsc import DbscReply, ReplyKind
from coatcheck.errors import (
    ConflictError,
    CrossOriginRequest,
    InvalidDbscProof,
    StoreUnavailable,
)
from coatcheck.sessions.dbsc import BINDING_KEY

from ..dbsc_apps import BASE, Parts, build, starlette_app
from ..dbsc_client import DeviceKey, b64

pytestmark = pytest.mark.anyio


@pytest.fixture(params=("session", "hybrid"))
def parts(request: pytest.FixtureRequest) -> Parts:
    return build(request.param)


@pytest.fixture
async def client(parts: Parts) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=starlette_app(parts))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


def _cookies(response: httpx.Response) -> dict[str, str]:
    found = {}
    for value in response.headers.get_list("set-cookie"):
        name, _, rest = value.partition("=")
        found[name] = rest.partition(";")[0]
    return found


def _header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items() if v)


class Flow:
    """A logged-in client driving the endpoints by hand (to replay and forge)."""

    def __init__(self, http: httpx.AsyncClient, parts: Parts) -> None:
        self.http = http
        self.parts = parts
        self.cookies: dict[str, str] = {}
        self.key = DeviceKey("ES256")
        self.sid = ""

    async def login(self) -> str:
        response = await self.http.post("/login")
        self.cookies.update(_cookies(response))
        return response.headers["secure-session-registration"].split('challenge="')[1][:-1]

    async def register(self, challenge: str, key: DeviceKey | None = None) -> httpx.Response:
        proof = (key or self.key).proof(challenge, with_jwk=True)
        response = await self.post(self.parts.binding.registration_path,  # type: ignore[union-attr]
                                   {"secure-session-response": proof})  # fmt: skip
        if response.status_code == 200:
            self.cookies.update(_cookies(response))
            self.sid = response.json()["session_identifier"]
        return response

    async def post(self, path: str, headers: dict[str, str]) -> httpx.Response:
        self.http.cookies.clear()
        response = await self.http.post(path, headers={"cookie": _header(self.cookies), **headers})
        self.http.cookies.clear()
        return response

    async def refresh(self, headers: dict[str, str]) -> httpx.Response:
        return await self.post(self.parts.binding.refresh_path,  # type: ignore[union-attr]
                               {"sec-secure-session-id": self.sid, **headers})  # fmt: skip


def _challenge_of(response: httpx.Response) -> str:
    return response.headers["secure-session-challenge"].split('"')[1]


async def test_registration_answer_has_the_drafts_shape(client: httpx.AsyncClient,
                                                        parts: Parts) -> None:  # fmt: skip
    flow = Flow(client, parts)
    response = await flow.register(await flow.login())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    body = response.json()
    assert set(body) == {"session_identifier", "refresh_url", "scope", "credentials"}
    assert body["scope"]["include_site"] is False
    assert {"type": "exclude", "path": "/static", "domain": "app.test"} in (
        body["scope"]["scope_specification"]
    )
    (credential,) = body["credentials"]
    assert credential["name"] == parts.binding.bound_cookie_name  # type: ignore[union-attr]
    assert credential["attributes"] == "Path=/; Secure; HttpOnly; SameSite=Lax"
    set_cookie = next(v for v in response.headers.get_list("set-cookie")
                      if v.startswith(credential["name"] + "="))  # fmt: skip
    assert "Max-Age=" in set_cookie
    assert set_cookie.endswith(credential["attributes"])
    assert response.headers["secure-session-challenge"].endswith(f';id="{flow.sid}"')


async def test_other_methods_get_405(client: httpx.AsyncClient, parts: Parts) -> None:
    assert parts.binding is not None
    for path in (parts.binding.registration_path, parts.binding.refresh_path):
        response = await client.get(path)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


async def test_refresh_proof_replay_is_refused(client: httpx.AsyncClient, parts: Parts) -> None:
    flow = Flow(client, parts)
    await flow.register(await flow.login())
    asked = await flow.refresh({})
    assert asked.status_code == 403
    proof = flow.key.proof(_challenge_of(asked), with_jwk=False)
    first = await flow.refresh({"secure-session-response": proof})
    assert first.status_code == 200
    again = await flow.refresh({"secure-session-response": proof})
    assert again.status_code == 403
    assert again.json()["error"] == "dbsc_challenge_failed"
    assert "set-cookie" not in again.headers


async def test_concurrent_refreshes_with_one_proof_get_one_cookie(client: httpx.AsyncClient,
                                                                 parts: Parts) -> None:  # fmt: skip
    flow = Flow(client, parts)
    await flow.register(await flow.login())
    asked = await flow.refresh({})
    proof = flow.key.proof(_challenge_of(asked), with_jwk=False)
    # One proof, 20 refreshes at once: exactly one compare-and-set wins.
    answers = await asyncio.gather(
        *(flow.refresh({"secure-session-response": proof}) for _ in range(20))
    )
    assert sorted(a.status_code for a in answers) == [200] + [403] * 19


async def test_registration_replay_and_rebinding_are_refused(client: httpx.AsyncClient,
                                                             parts: Parts) -> None:  # fmt: skip
    flow = Flow(client, parts)
    challenge = await flow.login()
    assert (await flow.register(challenge)).status_code == 200
    replay = await flow.register(challenge)
    assert replay.status_code == 409
    other = await flow.register(challenge, DeviceKey("ES256"))
    assert other.status_code == 409
    (record,) = parts.store.records()
    assert record.data[BINDING_KEY]["jwk"] == flow.key.jwk


async def test_registration_needs_the_session_cookie(client: httpx.AsyncClient,
                                                     parts: Parts) -> None:  # fmt: skip
    flow = Flow(client, parts)
    challenge = await flow.login()
    flow.cookies.clear()
    # Someone who saw the login response's headers but holds no cookie cannot bind it.
    response = await flow.register(challenge)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_credentials"


async def test_registration_challenge_of_another_session_gets_a_new_offer(
    client: httpx.AsyncClient, parts: Parts
) -> None:
    victim, attacker = Flow(client, parts), Flow(client, parts)
    stolen_challenge = await victim.login()
    await attacker.login()
    response = await attacker.register(stolen_challenge)
    assert response.status_code == 403
    assert "secure-session-registration" in response.headers


async def test_stale_registration_challenge_gets_a_new_offer(client: httpx.AsyncClient,
                                                             parts: Parts) -> None:  # fmt: skip
    flow = Flow(client, parts)
    challenge = await flow.login()
    parts.clock.advance(3600)
    # The session cookie has to stay valid for this: hybrid's access token expired, so
    # the registration is refused as unauthenticated instead, which is also a 4xx.
    response = await flow.register(challenge)
    assert response.status_code in (401, 403)


def _hostile(flow: Flow, challenge: str) -> list[tuple[str, dict[str, str]]]:
    jwk = flow.key.jwk
    signed = flow.key.proof(challenge, with_jwk=True)
    head, payload, sig = signed.split(".")
    none = b64(json.dumps({"alg": "none", "typ": "dbsc+jwt", "jwk": jwk}).encode())
    assert flow.parts.binding is not None
    reg, ref = flow.parts.binding.registration_path, flow.parts.binding.refresh_path
    return [
        (reg, {}),
        (reg, {"secure-session-response": "garbage"}),
        (reg, {"secure-session-response": "x" * 100_000}),
        (reg, {"secure-session-response": '"unterminated'}),
        (reg, {"secure-session-response": f"{none}.{payload}."}),
        (reg, {"secure-session-response": f"{head}.{payload}.{sig[::-1]}"}),
        (reg, {"secure-session-response": f"{head}.{b64(b'[]')}.{sig}"}),
        (reg, {"secure-session-response": DeviceKey("ES256").proof("forged", with_jwk=True)}),
        (reg, {"secure-session-response": signed, "cookie": "__Host-session=" + "A" * 5000}),
        (ref, {}),
        (ref, {"sec-secure-session-id": ""}),
        (ref, {"sec-secure-session-id": "x" * 100_000}),
        (ref, {"sec-secure-session-id": '"a";b'}),
        (ref, {"sec-secure-session-id": flow.sid, "secure-session-response": "a.b.c"}),
        (ref, {"sec-secure-session-id": flow.sid, "secure-session-response": signed}),
        (ref, {"sec-secure-session-id": flow.sid,
               "secure-session-response": DeviceKey("RS256").proof(challenge, with_jwk=False)}),
        (ref, {"sec-secure-session-id": "nobody", "secure-session-response": signed}),
    ]  # fmt: skip


async def test_hostile_requests_never_get_a_5xx(client: httpx.AsyncClient, parts: Parts) -> None:
    flow = Flow(client, parts)
    challenge = await flow.login()
    await flow.register(challenge)
    cases = _hostile(flow, challenge)

    async def send(path: str, headers: dict[str, str]) -> int:
        if "cookie" in headers:
            client.cookies.clear()
            return (await client.post(path, headers=headers)).status_code
        return (await flow.post(path, headers)).status_code

    # Every case once, then a burst of 200 of them at once.
    statuses = [await send(path, headers) for path, headers in cases]
    burst = await asyncio.gather(*(send(*cases[i % len(cases)]) for i in range(200)))
    assert all(400 <= s < 500 or s == 200 for s in statuses + list(burst)), statuses
    assert 200 not in statuses[:9]  # no hostile registration succeeds
    # ... and the genuine session is unharmed: its key still refreshes it.
    asked = await flow.refresh({})
    answer = await flow.refresh({"secure-session-response": flow.key.proof(
        _challenge_of(asked), with_jwk=False)})  # fmt: skip
    assert answer.status_code == 200


async def test_a_store_outage_is_a_503_not_a_guest(parts: Parts) -> None:
    app = starlette_app(parts)

    async def down(*args: Any) -> Any:
        raise StoreUnavailable("down")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        flow = Flow(http, parts)
        challenge = await flow.login()
        parts.store.get = down  # type: ignore[method-assign]
        parts.store.update = down  # type: ignore[method-assign]
        response = await flow.register(challenge)
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"


def test_refusals_never_say_403() -> None:
    # 403 tells the browser "sign this challenge": a refusal must not look like one.
    cases = ((InvalidDbscProof("x"), 401), (ConflictError("y"), 409),
             (CrossOriginRequest("z"), 400), (StoreUnavailable("s"), 503))  # fmt: skip
    for error, expected in cases:
        status, _, _ = dbsc_response(DbscReply(ReplyKind.REFUSED, error=error))
        assert status == expected
