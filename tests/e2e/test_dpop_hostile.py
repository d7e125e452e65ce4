"""Hostile DPoP proofs against the demo as a real server: never a 5xx, always the right 4xx.

One ``coatcheck demo`` process per mode (and one with server nonces), driven over HTTP
by httpx. Each case sends a bound token with a broken proof (or a good proof with a
broken token) to ``/api/me``, where the answer must be a 401 with the DPoP challenge,
and the broken proofs again to ``/api/login``, a token endpoint, where it must be a
400 (RFC 9449 §5, §7.1). A burst of 200 hostile requests at once follows; afterwards
the real client still works. ``test_case_counts`` pins the totals for the closing note.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from coatcheck.dpop_client import DPoPAuth
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import access_token_hash, make_proof

from ..tokens.conftest import b64, forge, hs256_with
from .test_demo_server import DemoServer

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
REFUSED = {"invalid_dpop_proof", "dpop_proof_replayed", "dpop_binding_mismatch",
           "use_dpop_nonce"}  # fmt: skip
COUNTS: dict[str, int] = {}
_SERVER_REFUSAL = "Invalid HTTP request received."


@pytest.fixture(
    scope="module",
    params=[("session", ()), ("jwt", ()), ("hybrid", ()), ("session", ("--dpop-nonce",))],
    ids=["session", "jwt", "hybrid", "session-nonce"],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    mode, args = request.param
    demo = DemoServer(mode, tmp_path_factory.mktemp(f"dpop-{mode}"), args)
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def _members(key: Key) -> dict[str, Any]:
    jwk = key.public_jwk() or {}
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def _login(client: httpx.Client, name: str) -> tuple[DPoPAuth, str]:
    client.post("/api/register", json={"username": name, "password": PASSWORD, "name": name})
    auth = DPoPAuth()
    answer = client.post(
        "/api/login", json={"username": name, "password": PASSWORD}, auth=auth
    ).json()
    assert answer["token_type"] == "DPoP", answer
    auth.access_token = answer["token"]
    assert client.get("/api/me", auth=auth).status_code == 200
    return auth, answer["token"]


ProofCase = tuple[str, Callable[[str, str, str | None], dict[str, Any]]]


def _proof_cases(key: Key) -> list[ProofCase]:
    """Requests headers with a broken proof for (method, url, token): name and builder."""
    other = Key.generate("ES256")

    def header(**changes: Any) -> dict[str, Any]:
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": _members(key)}
        head.update(changes)
        return {k: v for k, v in head.items() if v is not None}

    def claims(method: str, url: str, token: str | None, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"jti": b64(time.time_ns().to_bytes(8, "big")), "htm": method,
                                "htu": url, "iat": int(time.time())}
        if token is not None:
            body["ath"] = access_token_hash(token)
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def signed(head: dict[str, Any] | bytes, body: dict[str, Any] | bytes,
               sign: Callable[[bytes], bytes] = key.sign) -> str:
        return forge(head, body, sign)

    def auth(token: str | None, proof: str | bytes) -> dict[str, Any]:
        headers: dict[str, Any] = {"DPoP": proof}
        if token is not None:
            headers["Authorization"] = f"DPoP {token}"
        return headers

    private = {k: v for k, v in key.to_jwk(private=True).items() if k not in ("kid", "use")}
    deep = b64(b'{"typ":"dpop+jwt","x":' + b"[" * 200 + b"]" * 200 + b"}")
    cases: list[ProofCase] = [
        ("oversized proof", lambda m, u, t: auth(t, "A" * 5000 + "." + "B" * 10 + ".C")),
        ("not a JWS", lambda m, u, t: auth(t, "not-a-jws")),
        ("four segments", lambda m, u, t: auth(t, "a.b.c.d")),
        ("bad base64", lambda m, u, t: auth(t, "!!!.???.***")),
        ("bad JSON", lambda m, u, t: auth(t, b64(b"{not json") + "." + b64(b"{}") + ".AAAA")),
        ("deep JSON", lambda m, u, t: auth(t, deep + "." + b64(b"{}") + ".AAAA")),
        ("duplicate members", lambda m, u, t: auth(t, signed(
            b'{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}', claims(m, u, t)))),
        ("oversized header", lambda m, u, t: auth(t, signed(
            header(pad="x" * 3000), claims(m, u, t)))),
        ("private key in jwk", lambda m, u, t: auth(t, signed(
            header(jwk=private), claims(m, u, t)))),
        ("symmetric key in jwk", lambda m, u, t: auth(t, signed(
            header(jwk={"kty": "oct", "k": b64(b"k" * 32)}), claims(m, u, t)))),
        ("no jwk", lambda m, u, t: auth(t, signed(header(jwk=None), claims(m, u, t)))),
        ("wrong typ", lambda m, u, t: auth(t, signed(header(typ="JWT"), claims(m, u, t)))),
        ("no typ", lambda m, u, t: auth(t, signed(header(typ=None), claims(m, u, t)))),
        ("alg none", lambda m, u, t: auth(t, signed(header(alg="none"), claims(m, u, t),
                                                    lambda d: b""))),
        ("alg HS256", lambda m, u, t: auth(t, signed(header(alg="HS256"), claims(m, u, t),
                                                     hs256_with(b"k" * 32)))),
        ("jku header", lambda m, u, t: auth(t, signed(header(jku="https://evil/"),
                                                      claims(m, u, t)))),
        ("crit header", lambda m, u, t: auth(t, signed(header(crit=["exp"]), claims(m, u, t)))),
        ("signed by another key", lambda m, u, t: auth(t, signed(header(), claims(m, u, t),
                                                                 other.sign))),
        ("zero signature", lambda m, u, t: auth(t, signed(header(), claims(m, u, t),
                                                          lambda d: bytes(64)))),
        ("wrong htu host", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, htu=u.replace("127.0.0.1", "evil.example")))))
        ,
        ("wrong htu path", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, htu=u + "/other"))))
        ,
        ("wrong htu scheme", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, htu=u.replace("http://", "https://")))))
        ,
        ("htu not a URI", lambda m, u, t: auth(t, signed(header(), claims(m, u, t, htu="/x")))),
        ("wrong htm", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, htm="DELETE")))),
        ("stale iat", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, iat=int(time.time()) - 3600)))),
        ("future iat", lambda m, u, t: auth(t, signed(header(), claims(
            m, u, t, iat=int(time.time()) + 3600)))),
        ("iat as text", lambda m, u, t: auth(t, signed(header(), claims(m, u, t, iat="now")))),
        ("no jti", lambda m, u, t: auth(t, signed(header(), claims(m, u, t, jti=None)))),
        ("huge jti", lambda m, u, t: auth(t, signed(header(), claims(m, u, t, jti="j" * 300)))),
        ("two DPoP headers", lambda m, u, t: auth(t, make_proof(
            key, method=m, url=u, now=time.time(), access_token=t) + ", " + make_proof(
            key, method=m, url=u, now=time.time(), access_token=t))),
        ("non-ASCII proof", lambda m, u, t: auth(t, "é.é.é".encode())),
    ]
    return cases


def _resource_only_cases(key: Key, token: str) -> list[ProofCase]:
    """Cases that only make sense with an access token."""
    other = Key.generate("ES256")

    def proof(signer: Key, m: str, u: str, access: str | None) -> str:
        return make_proof(signer, method=m, url=u, now=time.time(), access_token=access)

    return [
        ("wrong ath", lambda m, u, t: {"Authorization": f"DPoP {token}",
                                       "DPoP": proof(key, m, u, "another token")}),
        ("no ath", lambda m, u, t: {"Authorization": f"DPoP {token}",
                                    "DPoP": proof(key, m, u, None)}),
        ("no proof", lambda m, u, t: {"Authorization": f"DPoP {token}"}),
        ("bound token as Bearer", lambda m, u, t: {"Authorization": f"Bearer {token}"}),
        ("Bearer beside a good proof", lambda m, u, t: {"Authorization": f"Bearer {token}",
                                                        "DPoP": proof(key, m, u, None)}),
        ("the thief's own key", lambda m, u, t: {"Authorization": f"DPoP {token}",
                                                 "DPoP": proof(other, m, u, token)}),
    ]


def _check(label: str, response: httpx.Response, status: int, codes: set[str]) -> None:
    COUNTS[label] = COUNTS.get(label, 0) + 1
    assert response.status_code < 500, (label, response.status_code, response.text[:200])
    if response.status_code == 400 and response.text == _SERVER_REFUSAL:
        # Refused by the HTTP server itself (h11: a header over its limit): also a 4xx.
        COUNTS["refused by uvicorn"] = COUNTS.get("refused by uvicorn", 0) + 1
        return
    assert response.status_code == status, (label, response.status_code, response.text[:200])
    assert response.json()["error"] in codes, (label, response.text[:200])
    if status == 401:
        assert response.headers["www-authenticate"].startswith("DPoP error="), label
        assert 'algs="ES256' in response.headers["www-authenticate"], label


def test_hostile_proofs_at_a_resource(server: DemoServer) -> None:
    url = f"{server.url}/api/me"
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        auth, token = _login(client, "res")
        key = auth.key
        for _name, build in _proof_cases(key) + _resource_only_cases(key, token):
            response = client.get("/api/me", headers=build("GET", url, token))
            _check("resource", response, 401, REFUSED)
        # A captured request, replayed (the proof is good once).
        headers = {"Authorization": f"DPoP {token}",
                   "DPoP": make_proof(key, method="GET", url=url, now=time.time(),
                                      access_token=token)}
        if "--dpop-nonce" in server.args:
            first = client.get("/api/me", headers=headers)
            assert first.json()["error"] == "use_dpop_nonce"
            nonce = first.headers["dpop-nonce"]
            headers["DPoP"] = make_proof(key, method="GET", url=url, now=time.time(),
                                         access_token=token, nonce=nonce)
        assert client.get("/api/me", headers=headers).status_code == 200
        _check("resource", client.get("/api/me", headers=headers), 401, {"dpop_proof_replayed"})
        # After all that the real client is still served.
        assert client.get("/api/me", auth=auth).json()["via"] == "dpop"


def test_hostile_proofs_at_the_token_endpoint(server: DemoServer) -> None:
    url = f"{server.url}/api/login"
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        auth, _ = _login(client, "tok")
        for _name, build in _proof_cases(auth.key):
            headers = {k: v for k, v in build("POST", url, None).items() if k == "DPoP"}
            response = client.post(
                "/api/login", json={"username": "tok", "password": PASSWORD}, headers=headers
            )
            _check("token endpoint", response, 400, REFUSED)


def test_a_burst_of_hostile_requests(server: DemoServer) -> None:
    url = f"{server.url}/api/me"
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        auth, token = _login(client, "burst")
    cases = _proof_cases(auth.key) + _resource_only_cases(auth.key, token)
    requests = [cases[i % len(cases)][1]("GET", url, token) for i in range(200)]

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0, limits=limits) as ac:
            return await asyncio.gather(*(ac.get("/api/me", headers=h) for h in requests))

    for response in asyncio.run(burst()):
        _check("burst", response, 401, REFUSED)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        assert client.get("/api/me", auth=auth).status_code == 200


def test_case_counts(server: DemoServer) -> None:
    """Runs last for the last server: the totals quoted in the closing note."""
    if "--dpop-nonce" not in server.args or len(COUNTS) < 3:
        return
    proof_cases = len(_proof_cases(Key.generate("ES256")))
    resource_cases = proof_cases + len(_resource_only_cases(Key.generate("ES256"), "t")) + 1
    assert COUNTS["resource"] == 4 * resource_cases
    assert COUNTS["token endpoint"] == 4 * proof_cases
    assert COUNTS["burst"] == 4 * 200
    print(f"\nDPoP hostile cases: {COUNTS}")
