"""DPoP in the adapters: pseudo-headers, challenges (RFC 9449 §7.1, §8), nonces, refusals.

The adapters' test modules are shared with other work; DPoP's adapter glue is
tested here, raw ASGI and WSGI as in tests/adapters/test_asgi.py and test_wsgi.py.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from coatcheck import errors
from coatcheck.adapters import asgi, wsgi
from coatcheck.adapters.http import error_headers, error_status
from coatcheck.auth import Authenticator, BearerTransport, DPoPTransport, JWTStrategy
from coatcheck.clock import FrozenClock
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key
from coatcheck.tokens.dpop import make_proof
from coatcheck.tokens.dpop_nonce import DPoPNonces

pytestmark = pytest.mark.anyio

ALGS = ("ES256", "EdDSA")


# -- statuses and challenges ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "challenge"),
    [
        (errors.InvalidDPoPProof("bad", algs=ALGS),
         'DPoP error="invalid_dpop_proof", error_description="bad", algs="ES256 EdDSA"'),
        (errors.DPoPProofReplayed("again", algs=ALGS),
         'DPoP error="invalid_dpop_proof", error_description="again", algs="ES256 EdDSA"'),
        (errors.UseDPoPNonce("nonce please", algs=ALGS, nonce="n1"),
         'DPoP error="use_dpop_nonce", error_description="nonce please", algs="ES256 EdDSA"'),
        (errors.InvalidDPoPBinding("other key", algs=ALGS),
         'DPoP error="invalid_token", error_description="other key", algs="ES256 EdDSA"'),
        (errors.InvalidDPoPProof('say "hi" \\ there'),
         'DPoP error="invalid_dpop_proof", error_description="say \\"hi\\" \\\\ there"'),
    ],
)
def test_dpop_refusals_are_401_with_their_challenge(
    exc: errors.CoatcheckError, challenge: str
) -> None:
    assert error_status(exc) == 401
    headers = error_headers(exc)
    assert ("www-authenticate", challenge) in headers


def test_the_nonce_travels_in_its_own_header() -> None:
    exc = errors.UseDPoPNonce("x", algs=ALGS, nonce="abc")
    assert ("dpop-nonce", "abc") in error_headers(exc)
    assert not [v for k, v in error_headers(errors.InvalidDPoPProof("x")) if k == "dpop-nonce"]


def test_at_a_token_endpoint_a_refused_proof_is_a_400_without_challenge() -> None:
    # RFC 9449 §5 and §8: the authorization server answers 400 with the error code.
    exc = errors.UseDPoPNonce("x", algs=ALGS, nonce="abc")
    assert error_status(exc, token_endpoint=True) == 400
    headers = error_headers(exc, token_endpoint=True)
    assert ("dpop-nonce", "abc") in headers
    assert not [v for k, v in headers if k == "www-authenticate"]
    assert error_status(errors.InvalidDPoPBinding(), token_endpoint=True) == 400
    # Other errors keep their status there.
    assert error_status(errors.InvalidCredentials(), token_endpoint=True) == 401


def test_bearer_challenges_name_dpop_when_the_server_speaks_it() -> None:
    # RFC 9449 §7.2: a protected resource supporting both schemes says so.
    headers = error_headers(errors.MissingCredentials(), dpop_algs=ALGS)
    assert ("www-authenticate", 'Bearer, DPoP algs="ES256 EdDSA"') in headers
    headers = error_headers(errors.InvalidCredentials(), dpop_algs=ALGS)
    assert ("www-authenticate", 'Bearer error="invalid_token", DPoP algs="ES256 EdDSA"') in headers
    assert ("www-authenticate", "Bearer") in error_headers(errors.MissingCredentials())


# -- ASGI ---------------------------------------------------------------------------------


def test_asgi_adds_pseudo_headers_only_for_dpop_requests() -> None:
    plain = {"type": "http", "method": "GET", "path": "/a", "headers": [(b"host", b"h")]}
    assert ":method" not in asgi.request_headers(plain)
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "path": "/caf\xe9",
        "raw_path": b"/caf%C3%A9",
        "query_string": b"x=1",
        "headers": [(b"host", b"h"), (b"dpop", b"p")],
    }
    headers = asgi.request_headers(scope)
    assert (headers[":method"], headers[":scheme"], headers[":path"]) == (
        "POST", "https", "/caf%C3%A9"
    )
    no_raw = dict(scope, raw_path=None, path="/x")
    no_raw.pop(asgi.HEADERS_KEY, None)
    assert asgi.request_headers(no_raw)[":path"] == "/x"


class Recorder:
    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.scope: Any = None
        self.headers = headers or []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
        await send({"type": "http.response.body", "body": b"ok"})


def _dpop_auth(clock: FrozenClock, nonces: DPoPNonces | None = None) -> Authenticator:
    strategy = JWTStrategy(JWTCodec(Key.generate("ES256", kid="k"), clock=clock), clock=clock)
    dpop = DPoPTransport(MemoryStore(), nonces=nonces, clock=clock)
    return Authenticator(strategy, (dpop, BearerTransport()))


async def _asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_asgi_middleware_accepts_a_proof_and_keeps_a_refusal(clock: FrozenClock) -> None:
    nonces = DPoPNonces("n" * 32)
    auth = _dpop_auth(clock, nonces)
    key = Key.generate("ES256")
    nonce = nonces.current(clock.now())
    login_proof = make_proof(key, method="POST", url="http://h/login", now=clock.now(),
                             nonce=nonce)
    login = await auth.login("u1", headers={"host": "h", ":method": "POST", ":scheme": "http",
                                            ":path": "/login", "dpop": login_proof})
    proof = make_proof(key, method="GET", url="http://h/me", now=clock.now(),
                       access_token=login.token, nonce=nonce)

    def scope(proof: str) -> dict[str, Any]:
        return {
            "type": "http", "method": "GET", "scheme": "http", "path": "/me",
            "raw_path": b"/me",
            "headers": [(b"host", b"h"), (b"authorization", f"DPoP {login.token}".encode()),
                        (b"dpop", proof.encode())],
        }

    inner = Recorder(headers=[(b"dpop-nonce", b"from-the-app")])
    sent = await _asgi(asgi.AuthMiddleware(inner, auth), scope(proof))
    identity = asgi.identity_of(inner.scope)
    assert identity is not None
    assert identity.via == "dpop"
    # The app's own DPoP-Nonce wins; the middleware adds no second one.
    assert [v for k, v in sent[0]["headers"] if k == b"dpop-nonce"] == [b"from-the-app"]

    inner = Recorder()
    sent = await _asgi(asgi.AuthMiddleware(inner, auth), scope(proof))  # replayed
    assert asgi.identity_of(inner.scope) is None
    assert isinstance(asgi.auth_error_of(inner.scope), errors.DPoPProofReplayed)
    assert [v for k, v in sent[0]["headers"] if k == b"dpop-nonce"] == [nonce.encode()]


# -- WSGI ---------------------------------------------------------------------------------


def _environ(**extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/caf\xc3\xa9",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "HTTP_HOST": "h",
        "HTTP_DPOP": "p",
    }
    environ.update(extra)
    return environ


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({}, "/app/caf\xc3\xa9"),
        ({"RAW_URI": "/app/caf%C3%A9?x=1"}, "/app/caf%C3%A9"),
        ({"REQUEST_URI": "/app/x?y"}, "/app/x"),
        ({"REQUEST_URI": "http://proxy-form/x"}, "/app/caf\xc3\xa9"),
    ],
)
def test_wsgi_adds_pseudo_headers(extra: dict[str, str], path: str) -> None:
    headers = wsgi.request_headers(_environ(**extra))
    assert (headers[":method"], headers[":scheme"], headers[":path"]) == ("GET", "https", path)
    plain = _environ()
    del plain["HTTP_DPOP"]
    assert ":path" not in wsgi.request_headers(plain)


def test_wsgi_path_is_percent_encoded_like_the_client_sent_it(clock: FrozenClock) -> None:
    # PEP 3333 gives the path decoded as latin-1; the proof names it percent-encoded.
    transport = DPoPTransport(MemoryStore(), clock=clock)
    url = transport.request_url(wsgi.request_headers(_environ()))
    assert url == "https://h/app/caf%C3%A9"


def test_wsgi_middleware_keeps_the_refusal_for_the_view(clock: FrozenClock) -> None:
    auth = _dpop_auth(clock)
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["error"] = wsgi.auth_error_of(environ)
        start_response("200 OK", [])
        return [b""]

    environ = _environ(HTTP_AUTHORIZATION="DPoP abc", HTTP_DPOP="not-a-proof")
    body = wsgi.AuthMiddleware(app, auth)(environ, lambda *a: None)
    assert list(body) == [b""]
    assert isinstance(seen["error"], errors.InvalidDPoPProof)

