"""AuthJSStrategy and AuthJSCookieTransport (verify only)."""

from __future__ import annotations

import pytest

from coatcheck.auth import Strategy, Transport
from coatcheck.clock import FrozenClock
from coatcheck.errors import ConfigurationError
from coatcheck.interop.authjs import (
    AuthJSDecoder,
    chunk_token,
    encode_authjs,
    read_authjs_token,
)
from coatcheck.interop.authjs_strategy import AuthJSCookieTransport, AuthJSStrategy

SECRET = "secret-for-unit-tests-0123456789abcdef"


def test_protocols() -> None:
    assert isinstance(AuthJSStrategy(AuthJSDecoder(SECRET)), Strategy)
    assert isinstance(AuthJSCookieTransport(), Transport)


@pytest.mark.anyio
async def test_verify_issue_revoke(clock: FrozenClock) -> None:
    strategy = AuthJSStrategy(AuthJSDecoder(SECRET, clock=clock))
    token = encode_authjs({"sub": "u1", "name": "Ada"}, SECRET, clock=clock, max_age=60)
    verified = await strategy.verify(token)
    assert verified is not None
    assert verified.identity.user_id == "u1"
    assert verified.identity.expires_at == clock.now() + 60
    assert verified.identity.session_id == verified.identity.claims["jti"]
    assert await strategy.verify("garbage") is None
    assert await strategy.verify(encode_authjs({"name": "no sub"}, SECRET, clock=clock)) is None
    clock.advance(76)
    assert await strategy.verify(token) is None
    with pytest.raises(ConfigurationError):
        await strategy.issue("u1")
    await strategy.revoke(token)  # documented no-op


def test_transport_reads_chunks_and_never_writes(clock: FrozenClock) -> None:
    transport = AuthJSCookieTransport()
    token = "x" * 9000
    header = "; ".join(f"{n}={v}" for n, v in chunk_token(token, "authjs.session-token"))
    assert transport.read({"cookie": header}) == token
    assert transport.read({}) is None
    cleared = transport.clear()
    assert [h for h, _ in cleared] == ["set-cookie"] * 4
    assert all("Max-Age=0" in v for _, v in cleared)


@pytest.mark.parametrize(
    "header",
    [
        # Issue 12, item 1: a second copy of the cookie (a sibling subdomain's).
        "__Secure-authjs.session-token=attacker; __Secure-authjs.session-token=victim",
        # A second copy of one chunk.
        "__Secure-authjs.session-token.0=a; __Secure-authjs.session-token.0=v; "
        "__Secure-authjs.session-token.1=b",
        # The whole cookie twice, with the attacker's chunks beside it: no fallback.
        "__Secure-authjs.session-token=a; __Secure-authjs.session-token=v; "
        "__Secure-authjs.session-token.0=attacker",
    ],
)
def test_transport_trusts_no_name_that_arrives_twice(header: str) -> None:
    transport = AuthJSCookieTransport("__Secure-authjs.session-token")
    assert transport.read({"cookie": header}) is None
    assert read_authjs_token({"cookie": header}, "__Secure-authjs.session-token") is None
    # One copy of each is read as before.
    assert transport.read({"cookie": "__Secure-authjs.session-token=v; other=1"}) == "v"
