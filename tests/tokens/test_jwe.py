"""Encrypted JWTs: round trips, refusals, interop with joserfc."""

from __future__ import annotations

import pytest
from joserfc import jwe

from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    DecryptionFailed,
    ExpiredToken,
    MalformedToken,
    TokenError,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from coatcheck.tokens import Key, KeyRing, decrypt_jwt, encrypt_jwt

from .conftest import NOW, b64


@pytest.fixture(scope="module", params=["dir", "ECDH-ES", "RSA-OAEP-256"])
def key(request: pytest.FixtureRequest) -> Key:
    return Key.generate(request.param)


def _code(excinfo: pytest.ExceptionInfo[TokenError]) -> str:
    return excinfo.value.code


def test_round_trip(key: Key) -> None:
    clock = FrozenClock(NOW)
    token = encrypt_jwt({"sub": "alice"}, key, clock=clock)
    assert token.count(".") == 4
    assert decrypt_jwt(token, KeyRing([key]), clock=clock)["sub"] == "alice"
    clock.advance(3600)
    with pytest.raises(ExpiredToken):
        decrypt_jwt(token, key, clock=clock)


def test_wrong_key_and_tampering(key: Key) -> None:
    clock = FrozenClock(NOW)
    token = encrypt_jwt({"sub": "alice"}, key, clock=clock)
    other = Key.generate(key.alg, kid=key.kid)
    with pytest.raises(DecryptionFailed):
        decrypt_jwt(token, other, clock=clock)
    parts = token.split(".")
    tag = parts[4]
    parts[4] = ("B" if tag[0] == "A" else "A") + tag[1:]
    with pytest.raises(DecryptionFailed):
        decrypt_jwt(".".join(parts), key, clock=clock)
    with pytest.raises(UnknownKey):
        decrypt_jwt(token, Key.generate(key.alg, kid="elsewhere"), clock=clock)


def test_refusals() -> None:
    key = Key.generate("dir", kid="d")
    clock = FrozenClock(NOW)
    token = encrypt_jwt({"sub": "a"}, key, clock=clock)
    rest = token.split(".", 1)[1]
    for header, error in [
        (b'{"alg":"dir","enc":"A256GCM","kid":"d","zip":"DEF"}', UnsupportedHeader),
        (b'{"alg":"dir","enc":"A256GCM","kid":"d","jku":"https://x"}', UnsupportedHeader),
        (b'{"alg":"dir","enc":"A128GCM","kid":"d"}', UnsupportedAlgorithm),
        (b'{"alg":"RSA1_5","enc":"A256GCM"}', UnsupportedAlgorithm),
        (b'{"alg":"dir","enc":"A256GCM","kid":"d","kid":"d"}', MalformedToken),
        (b'{"alg":"dir"}', MalformedToken),
    ]:
        with pytest.raises(TokenError) as caught:
            decrypt_jwt(f"{b64(header)}.{rest}", key, clock=clock)
        assert type(caught.value) is error
    for garbage in ("", "a.b.c", "a.b.c.d.e", "é" * 5, "x" * 9000, token + "="):
        with pytest.raises(MalformedToken):
            decrypt_jwt(garbage, key, clock=clock)
    # A signing key cannot decrypt (a ring without a JWE key is a configuration error; a
    # token naming a signing key's kid is refused), and a JWS key ring cannot encrypt.
    with pytest.raises(ConfigurationError):
        decrypt_jwt(token, Key.generate("HS256", kid="d"), clock=clock)
    mixed = [Key.generate("HS256", kid="d"), Key.generate("dir", kid="other")]
    with pytest.raises(UnsupportedAlgorithm):
        decrypt_jwt(token, mixed, clock=clock)
    with pytest.raises(ConfigurationError):
        encrypt_jwt({}, Key.generate("HS256"))
    with pytest.raises(ConfigurationError):
        encrypt_jwt({}, key, enc="A256CBC-HS512")  # a 32-byte dir key fits only A256GCM


def test_a256cbc_hs512_and_joserfc_interop() -> None:
    key = Key.from_secret(bytes(range(64)), alg="dir", kid="auth")
    clock = FrozenClock(NOW)
    token = encrypt_jwt({"sub": "a"}, key, enc="A256CBC-HS512", clock=clock)
    algorithms = ["dir", "A256CBC-HS512"]
    plaintext = jwe.decrypt_compact(token, key.jose_key, algorithms=algorithms).plaintext
    assert plaintext is not None
    assert b'"sub":"a"' in plaintext
    theirs = jwe.encrypt_compact(
        {"alg": "dir", "enc": "A256CBC-HS512"},
        b'{"sub":"b","iat":%d,"exp":%d,"jti":"x"}' % (NOW, NOW + 60),
        key.jose_key,
        algorithms=["dir", "A256CBC-HS512"],
    )
    assert decrypt_jwt(theirs, key, clock=clock)["sub"] == "b"
