"""One named regression test per security fix (the PyJWT ``test_advisory.py`` pattern).

Each test names what went wrong, so the fix is never undone unnoticed.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coatcheck.adapters.asgi import AuthMiddleware
from coatcheck.auth import Authenticator, BearerTransport, HybridCookieTransport, HybridStrategy
from coatcheck.clock import FrozenClock
from coatcheck.errors import ExpiredToken, InvalidAudience, InvalidIssuer, TokenError
from coatcheck.interop.authjs import AuthJSDecoder
from coatcheck.interop.authjs_strategy import AuthJSStrategy
from coatcheck.policies import ClaimsPolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key
from coatcheck.tokens.claims import validate_claims


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# A 5-segment "JWE" whose header is JSON nested 3000 deep: fits a Bearer header.
_DEEP_AUTHJS = ".".join([_b64(b"[" * 3000 + b"]" * 3000), "", "AAAA", "AAAA", "AAAA"])


def test_authjs_deeply_nested_header_is_a_token_error_not_recursion_error() -> None:
    # Was: json.loads raised RecursionError, which escaped the strategy as a 500.
    with pytest.raises(TokenError):
        AuthJSDecoder("s" * 32).decode(_DEEP_AUTHJS)


@pytest.mark.anyio
async def test_authjs_hostile_bearer_makes_a_guest() -> None:
    auth = Authenticator(AuthJSStrategy(AuthJSDecoder("s" * 32)), transports=(BearerTransport(),))
    assert len(_DEEP_AUTHJS) < 8192
    result = await auth.authenticate({"authorization": "Bearer " + _DEEP_AUTHJS})
    assert result.identity is None


@pytest.mark.anyio
async def test_hybrid_refresh_path_with_many_query_fields_is_not_a_500(
    clock: FrozenClock,
) -> None:
    # Was: parse_qs(max_num_fields=8) raised ValueError for a 9th field, uncaught.
    codec = JWTCodec([Key.from_secret("k" * 32)], clock=clock)
    strategy = HybridStrategy(SessionManager(MemoryStore(), clock=clock), codec, "r" * 32,
                              clock=clock)
    authenticator = Authenticator(strategy, (HybridCookieTransport(clock=clock), BearerTransport()))

    async def home(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(routes=[Route("/", home)],
                    middleware=[Middleware(AuthMiddleware, authenticator=authenticator)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://app.test") as client:
        response = await client.get("/auth/refresh?" + "&".join(f"f{i}=1" for i in range(9)))
    assert response.status_code == 307
    assert response.headers["location"] == "/"


def test_expired_token_for_another_audience_is_not_reported_as_merely_expired() -> None:
    # Was: exp was checked first, so an expired token for another audience or issuer
    # raised ExpiredToken, which hybrid mode reads as "genuine, refresh it".
    policy = ClaimsPolicy(issuer="us", audience="api", leeway=timedelta(0))
    base = {"iat": 0, "exp": 10, "jti": "j", "iss": "us", "aud": "api"}
    with pytest.raises(ExpiredToken):
        validate_claims(base, policy, now=100)
    with pytest.raises(InvalidAudience):
        validate_claims({**base, "aud": "other"}, policy, now=100)
    with pytest.raises(InvalidIssuer):
        validate_claims({**base, "iss": "them"}, policy, now=100)
