"""DPoPAuth: the proofs it sends and how it follows server nonces (against a real app)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck.dpop_client import DPoPAuth
from coatcheck.errors import ConfigurationError
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import DPoPVerifier

SEEN: list[dict[str, str]] = []


async def echo(request: Request) -> Response:
    SEEN.append(dict(request.headers))
    return JSONResponse({"ok": True}, headers={"dpop-nonce": "n-echo"})


async def always_new_nonce(request: Request) -> Response:
    # A server that refuses every proof with a new nonce: the client must give up.
    SEEN.append(dict(request.headers))
    nonce = f"n{len(SEEN)}"
    return JSONResponse(
        {"error": "use_dpop_nonce"},
        status_code=401,
        headers={"www-authenticate": 'DPoP error="use_dpop_nonce"', "dpop-nonce": nonce},
    )


async def token_endpoint(request: Request) -> Response:
    SEEN.append(dict(request.headers))
    if len(SEEN) == 1:
        return JSONResponse({"error": "use_dpop_nonce"}, status_code=400,
                            headers={"dpop-nonce": "n-token"})
    return JSONResponse({"access_token": "t"})


async def not_json(request: Request) -> Response:
    SEEN.append(dict(request.headers))
    return Response("nope", status_code=400, headers={"dpop-nonce": "n-x"})


@pytest.fixture
def client() -> Iterator[TestClient]:
    SEEN.clear()
    app = Starlette(routes=[
        Route("/echo", echo, methods=["GET", "POST"]),
        Route("/always", always_new_nonce),
        Route("/token", token_endpoint, methods=["POST"]),
        Route("/plain", not_json, methods=["POST"]),
    ])
    with TestClient(app, base_url="https://api.example.com") as test_client:
        yield test_client


def test_every_request_gets_a_fresh_proof_and_the_token(client: TestClient) -> None:
    auth = DPoPAuth(Key.generate("EdDSA"), access_token="tok")
    client.get("/echo?x=1", auth=auth)
    client.get("/echo?x=1", auth=auth)
    first, second = SEEN
    assert first["authorization"] == "DPoP tok"
    assert first["dpop"] != second["dpop"]
    proof = DPoPVerifier().verify(
        second["dpop"], method="GET", url="https://api.example.com/echo",
        now=time.time(), access_token="tok",
    )
    assert proof.jkt == auth.thumbprint
    assert proof.nonce == "n-echo"  # the first answer's nonce went into the next proof


def test_token_requests_carry_no_authorization(client: TestClient) -> None:
    auth = DPoPAuth(access_token="tok")
    client.post("/echo", auth=auth.for_token_requests())
    assert "authorization" not in SEEN[0]
    assert auth.access_token == "tok"


def test_a_nonce_refusal_is_retried_once_only(client: TestClient) -> None:
    response = client.get("/always", auth=DPoPAuth())
    assert response.status_code == 401
    assert len(SEEN) == 2


def test_a_token_endpoint_nonce_error_is_followed(client: TestClient) -> None:
    auth = DPoPAuth()
    assert client.post("/token", auth=auth).json() == {"access_token": "t"}
    assert len(SEEN) == 2
    retried = DPoPVerifier().verify(
        SEEN[1]["dpop"], method="POST", url="https://api.example.com/token", now=time.time()
    )
    assert retried.nonce == "n-token"


def test_a_400_that_is_not_json_is_not_retried(client: TestClient) -> None:
    assert client.post("/plain", auth=DPoPAuth()).status_code == 400
    assert len(SEEN) == 1


def test_keys_that_cannot_prove_are_refused_at_once() -> None:
    with pytest.raises(ConfigurationError):
        DPoPAuth(Key.generate("HS256"))


def test_httpx2_clients_accept_it_too() -> None:
    # Starlette's TestClient runs on httpx2 (httpx is deprecated there), and so may an
    # app: each client takes only its own Auth. The tests above drive it through one.
    import httpx
    import httpx2
    from starlette.testclient import TestClient

    assert issubclass(TestClient, httpx2.Client)
    auth = DPoPAuth()
    assert isinstance(auth, httpx2.Auth)
    assert isinstance(auth, httpx.Auth)


def test_starlettes_test_client_imports_without_a_deprecation_warning() -> None:
    import subprocess
    import sys

    code = "import starlette.testclient"
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
