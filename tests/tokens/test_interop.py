"""Tokens and JWKS made by coatcheck verify in PyJWT and joserfc, and theirs in coatcheck
(issue 6, item 5)."""

from __future__ import annotations

import json
import warnings

import jwt as pyjwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from coatcheck.clock import SystemClock
from coatcheck.policies import ClaimsPolicy
from coatcheck.tokens import SIGNING_ALGORITHMS, JWTCodec, Key, KeyRing

ALGS = sorted(SIGNING_ALGORITHMS)
# PyJWT knows the polymorphic EdDSA (over Ed25519 and Ed448) but not RFC 9864's names.
PYJWT_ALGS = [alg for alg in ALGS if alg in pyjwt.algorithms.get_default_algorithms()]
POLICY = ClaimsPolicy(issuer="https://id.example", audience="api")


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {alg: Key.generate(alg) for alg in ALGS}


def _pyjwt_verify_key(key: Key) -> object:
    if key.is_symmetric:
        return key.to_jwk(private=True)
    return key.public_jwk()


@pytest.mark.parametrize("alg", PYJWT_ALGS)
def test_coatcheck_tokens_verify_in_pyjwt(keys: dict[str, Key], alg: str) -> None:
    key = keys[alg]
    token = JWTCodec(key, policy=POLICY).encode({"sub": "alice"})
    jwk = pyjwt.PyJWK(_pyjwt_verify_key(key))
    claims = pyjwt.decode(token, jwk, algorithms=[alg], audience="api", issuer="https://id.example")
    assert claims["sub"] == "alice"
    assert claims["jti"]


@pytest.mark.parametrize("alg", ALGS)
def test_coatcheck_tokens_verify_in_joserfc(keys: dict[str, Key], alg: str) -> None:
    key = keys[alg]
    token = JWTCodec(key, policy=POLICY).encode({"sub": "alice"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as superseded by RFC 9864
        jwks = KeyRing([key]).jwks()
        verify_key = key.jose_key if key.is_symmetric else KeySet.import_key_set(jwks)
        decoded = jose_jwt.decode(token, verify_key, algorithms=[alg])
    jose_jwt.JWTClaimsRegistry(iss={"essential": True, "value": "https://id.example"}).validate(decoded.claims)
    assert decoded.claims["sub"] == "alice"
    assert decoded.header["kid"] == key.kid


def test_jwks_loads_in_pyjwt_and_joserfc(keys: dict[str, Key]) -> None:
    ring = KeyRing(list(keys.values()))
    document = ring.jwks()
    published = {k.kid for k in keys.values() if not k.is_symmetric}
    assert {k["kid"] for k in document["keys"]} == published
    assert all("d" not in k and "k" not in k and "p" not in k for k in document["keys"])
    text = json.dumps(document)
    pyjwks = pyjwt.PyJWKSet.from_json(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jose_set = KeySet.import_key_set(json.loads(text))
    for alg in ("ES256", "ES512", "EdDSA", "RS256", "PS384"):
        key = keys[alg]
        token = JWTCodec(KeyRing([key]), policy=POLICY).encode({"sub": alg})
        assert pyjwt.decode(token, pyjwks[key.kid], algorithms=[alg], audience="api")["sub"] == alg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert jose_jwt.decode(token, jose_set, algorithms=[alg]).claims["sub"] == alg
    # And coatcheck reads its own JWKS back.
    public_ring = KeyRing.from_jwks(text)
    token = JWTCodec(keys["ES256"], policy=POLICY).encode({"sub": "x"})
    assert JWTCodec(public_ring, policy=POLICY).decode(token)["sub"] == "x"


def _their_claims() -> dict[str, object]:
    now = int(SystemClock().now())
    return {"sub": "bob", "iss": "https://id.example", "aud": ["api", "other"], "iat": now,
            "exp": now + 300, "jti": "their-jti"}


@pytest.mark.parametrize("alg", PYJWT_ALGS)
def test_pyjwt_tokens_verify_in_coatcheck(keys: dict[str, Key], alg: str) -> None:
    key = keys[alg]
    signing = pyjwt.PyJWK(key.to_jwk(private=True))
    token = pyjwt.encode(_their_claims(), signing, algorithm=alg, headers={"kid": key.kid})
    assert JWTCodec(key, policy=POLICY).decode(token)["sub"] == "bob"
    # Without a kid: the single key of that algorithm is used.
    bare = pyjwt.encode(_their_claims(), signing, algorithm=alg)
    assert JWTCodec(key, policy=POLICY).decode(bare)["sub"] == "bob"


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_tokens_verify_in_coatcheck(keys: dict[str, Key], alg: str) -> None:
    key = keys[alg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = {"alg": alg, "kid": key.kid}
        token = jose_jwt.encode(header, _their_claims(), key.jose_key, algorithms=[alg])
    assert JWTCodec(key, policy=POLICY).decode(token)["jti"] == "their-jti"


def test_keys_exported_by_coatcheck_load_back(keys: dict[str, Key]) -> None:
    for key in keys.values():
        again = Key.from_jwk(key.to_jwk(private=True))
        assert (again.alg, again.kid) == (key.alg, key.kid)
        token = JWTCodec(again).encode({"sub": "x"})
        assert JWTCodec(key).decode(token)["sub"] == "x"
