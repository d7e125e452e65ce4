"""Auth.js session tokens against the real @auth/core (and NextAuth v4's algorithm)."""

from __future__ import annotations

import pytest

from coatcheck.clock import FrozenClock
from coatcheck.errors import DecryptionFailed, ExpiredToken, UnknownKey
from coatcheck.interop.authjs import (
    AUTHJS_COOKIE,
    AUTHJS_SECURE_COOKIE,
    AuthJSDecoder,
    chunk_token,
    encode_authjs,
    read_authjs_token,
)
from coatcheck.interop.authjs_strategy import AuthJSCookieTransport, AuthJSStrategy

from .conftest import NodeRunner, ok

SECRET = "auth-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OLD_SECRET = "older-secret-9876543210-zyxwvutsrqponmlkjihgfedcba"
USER = {"sub": "user-42", "name": "Ada", "email": "ada@example.com", "picture": None}


def _encode(node: NodeRunner, *, secret: str | list[str] = SECRET, salt: str = AUTHJS_COOKIE,
            max_age: int = 3600, token: dict[str, object] | None = None) -> str:
    op = {"op": "authjs.encode", "token": token or USER, "secret": secret, "salt": salt,
          "maxAge": max_age}
    return str(ok(node(op)[0]))


def test_authjs_v5_token_from_auth_core_is_accepted(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens)
    claims = AuthJSDecoder(SECRET).decode(token)
    assert claims["sub"] == "user-42"
    assert claims["email"] == "ada@example.com"
    assert isinstance(claims["jti"], str)
    assert claims["exp"] - claims["iat"] == 3600


def test_tampered_token_is_refused(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens)
    header, key, iv, ciphertext, tag = token.split(".")
    flipped = ("A" if ciphertext[10] != "A" else "B").join((ciphertext[:10], ciphertext[11:]))
    with pytest.raises(DecryptionFailed):
        AuthJSDecoder(SECRET).decode(".".join((header, key, iv, flipped, tag)))
    # and @auth/core refuses it as well
    result = node_tokens({"op": "authjs.decode", "token": ".".join((header, key, iv, flipped, tag)),
                          "secret": SECRET, "salt": AUTHJS_COOKIE})[0]
    assert "error" in result


def test_expiry_uses_the_15_second_tolerance(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens, max_age=60)
    exp = AuthJSDecoder(SECRET).decode(token)["exp"]
    clock = FrozenClock(exp + 14)
    assert AuthJSDecoder(SECRET, clock=clock).decode(token)["sub"] == "user-42"
    clock.set(exp + 15)
    with pytest.raises(ExpiredToken):
        AuthJSDecoder(SECRET, clock=clock).decode(token)


def test_token_from_auth_core_already_expired_is_refused(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens, max_age=-60)
    with pytest.raises(ExpiredToken):
        AuthJSDecoder(SECRET).decode(token)


def test_token_made_with_a_rotated_secret_is_accepted(node_tokens: NodeRunner) -> None:
    # Auth.js's list puts the newest first; a token from before the rotation used OLD_SECRET.
    old_token = _encode(node_tokens, secret=[OLD_SECRET])
    new_token = _encode(node_tokens, secret=[SECRET, OLD_SECRET])
    decoder = AuthJSDecoder([SECRET, OLD_SECRET])
    assert decoder.decode(old_token)["sub"] == "user-42"
    assert decoder.decode(new_token)["sub"] == "user-42"
    with pytest.raises(UnknownKey):
        AuthJSDecoder([SECRET]).decode(old_token)


def test_the_cookie_name_is_the_salt(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens, salt=AUTHJS_SECURE_COOKIE)
    assert AuthJSDecoder(SECRET, cookie_name=AUTHJS_SECURE_COOKIE).decode(token)["sub"] == "user-42"
    with pytest.raises(UnknownKey):
        AuthJSDecoder(SECRET).decode(token)


def test_coatcheck_tokens_decode_in_auth_core(node_tokens: NodeRunner) -> None:
    token = encode_authjs({"sub": "py-user", "role": "admin"}, SECRET, cookie_name=AUTHJS_COOKIE)
    secure = encode_authjs({"sub": "py-user"}, OLD_SECRET, cookie_name=AUTHJS_SECURE_COOKIE)
    plain, rotated = node_tokens(
        {"op": "authjs.decode", "token": token, "secret": SECRET, "salt": AUTHJS_COOKIE},
        {"op": "authjs.decode", "token": secure, "secret": [SECRET, OLD_SECRET],
         "salt": AUTHJS_SECURE_COOKIE},
    )
    assert ok(plain)["sub"] == "py-user"
    assert ok(plain)["role"] == "admin"
    assert ok(rotated)["sub"] == "py-user"


def test_chunked_cookies_both_ways(node_tokens: NodeRunner) -> None:
    big = {**USER, "groups": [f"group-{i:04d}-" + "x" * 40 for i in range(120)]}
    node_token = _encode(node_tokens, token=big)
    assert len(node_token) > 3936
    node_chunks, = node_tokens({"op": "authjs.chunk", "name": AUTHJS_COOKIE, "value": node_token})
    chunks = [tuple(pair) for pair in ok(node_chunks)]
    # Python splits exactly as @auth/core's SessionStore does
    assert chunks == chunk_token(node_token, AUTHJS_COOKIE)
    header = "; ".join(f"{name}={value}" for name, value in reversed(chunks))
    assert read_authjs_token({"cookie": header}) == node_token
    assert AuthJSDecoder(SECRET).decode(node_token)["groups"][-1].startswith("group-0119")
    # coatcheck's token in chunked cookies is read by getToken()
    py_token = encode_authjs(big, SECRET)
    py_header = "; ".join(f"{n}={v}" for n, v in chunk_token(py_token, AUTHJS_COOKIE))
    seen, = node_tokens({"op": "authjs.getToken", "cookie": py_header, "secret": SECRET,
                         "cookieName": AUTHJS_COOKIE})
    assert ok(seen)["groups"] == big["groups"]


def test_bearer_token_is_url_decoded_like_get_token(node_tokens: NodeRunner) -> None:
    token = _encode(node_tokens)
    assert read_authjs_token({"authorization": f"Bearer {token}"}) == token
    seen, = node_tokens({"op": "authjs.getToken", "authorization": f"Bearer {token}",
                         "secret": SECRET, "cookieName": AUTHJS_COOKIE})
    assert ok(seen)["sub"] == "user-42"


def test_nextauth_v4_tokens_both_ways(node_tokens: NodeRunner) -> None:
    node_made, = node_tokens({"op": "nextauth4.encode", "token": USER, "secret": SECRET,
                              "maxAge": 3600})
    claims = AuthJSDecoder(SECRET, version=4).decode(ok(node_made))
    assert claims["sub"] == "user-42"
    py_made = encode_authjs({"sub": "v4-user"}, SECRET, version=4)
    seen, = node_tokens({"op": "nextauth4.decode", "token": py_made, "secret": SECRET})
    assert ok(seen)["sub"] == "v4-user"
    with pytest.raises(DecryptionFailed):
        AuthJSDecoder(OLD_SECRET, version=4).decode(ok(node_made))


@pytest.mark.anyio
async def test_strategy_accepts_a_next_js_login(node_tokens: NodeRunner) -> None:
    from coatcheck.auth import Authenticator, BearerTransport

    token = _encode(node_tokens)
    decoder = AuthJSDecoder(SECRET)
    auth = Authenticator(
        AuthJSStrategy(decoder), transports=(AuthJSCookieTransport(), BearerTransport())
    )
    result = await auth.authenticate({"cookie": f"{AUTHJS_COOKIE}={token}"})
    assert result.identity is not None
    assert result.identity.user_id == "user-42"
    assert result.identity.mode == "authjs"
    assert result.identity.via == "cookie"
    forged = await auth.authenticate({"cookie": f"{AUTHJS_COOKIE}={token[:-2]}AA"})
    assert forged.identity is None
