"""JWTs both ways between coatcheck.tokens and Node's jsonwebtoken and jose."""

from __future__ import annotations

import time

import pytest

from coatcheck.errors import InvalidSignature, UnknownKey
from coatcheck.policies import ClaimsPolicy
from coatcheck.tokens import JWTCodec, Key, KeyRing

from .conftest import NodeRunner, ok

HS_SECRET = "a-shared-hs256-secret-of-at-least-32-bytes!!"
# jsonwebtoken has no EdDSA; jose does all three.
CASES = [("jsonwebtoken", "HS256"), ("jsonwebtoken", "ES256"), ("jose", "HS256"),
         ("jose", "ES256"), ("jose", "EdDSA")]


def _key(alg: str) -> Key:
    if alg == "HS256":
        return Key.from_secret(HS_SECRET, alg="HS256", kid="hs-1")
    return Key.generate(alg, kid=f"{alg.lower()}-1")


def _node_spec(key: Key, *, private: bool) -> dict[str, object]:
    if key.alg == "HS256":
        return {"secret": HS_SECRET}
    return {"jwk": key.to_jwk(private=private)}


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {"sub": "user-1", "iat": now, "exp": now + 300, "jti": "j-1", "scope": ["read"]}


@pytest.mark.parametrize(("library", "alg"), CASES)
def test_node_tokens_verify_in_coatcheck(node_tokens: NodeRunner, library: str, alg: str) -> None:
    key = _key(alg)
    signed, = node_tokens({"op": f"{library}.sign", "payload": _claims(), "alg": alg,
                           "kid": key.kid, "key": _node_spec(key, private=True)})
    codec = JWTCodec(KeyRing([key]), algorithms=[alg])
    claims = codec.decode(ok(signed))
    assert claims["sub"] == "user-1"
    assert claims["scope"] == ["read"]
    other = _key(alg) if alg != "HS256" else Key.from_secret("x" * 40, alg="HS256", kid="hs-1")
    with pytest.raises((InvalidSignature, UnknownKey)):
        JWTCodec(KeyRing([other]), algorithms=[alg]).decode(ok(signed))


@pytest.mark.parametrize(("library", "alg"), CASES)
def test_coatcheck_tokens_verify_in_node(node_tokens: NodeRunner, library: str, alg: str) -> None:
    key = _key(alg)
    token = JWTCodec(KeyRing([key]), algorithms=[alg]).encode({"sub": "user-2", "role": "admin"})
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    spec = _node_spec(key, private=False)
    good, bad = node_tokens(
        {"op": f"{library}.verify", "token": token, "key": spec, "algorithms": [alg]},
        {"op": f"{library}.verify", "token": tampered, "key": spec, "algorithms": [alg]},
    )
    payload = ok(good)["payload"] if library == "jose" else ok(good)
    assert payload["sub"] == "user-2"
    assert payload["role"] == "admin"
    assert "error" in bad


def test_coatcheck_jwks_document_works_in_jose(node_tokens: NodeRunner) -> None:
    ring = KeyRing([Key.generate("ES256", kid="old"), Key.generate("EdDSA", kid="new")])
    token = JWTCodec(ring, policy=ClaimsPolicy()).encode({"sub": "user-3"})
    verified, = node_tokens({"op": "jose.verify", "token": token, "jwks": ring.jwks(),
                             "algorithms": ["ES256", "EdDSA"]})
    assert ok(verified)["header"]["kid"] == "new"
    assert ok(verified)["payload"]["sub"] == "user-3"
