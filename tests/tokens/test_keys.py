"""Key and KeyRing: construction, binding, export, JWKS, loading."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from coatcheck.errors import ConfigurationError
from coatcheck.secret import Secret
from coatcheck.tokens import Key, KeyRing, load_keys


def test_kid_defaults_to_thumbprint() -> None:
    key = Key.generate("ES256")
    assert key.kid == key.thumbprint()
    assert len(key.kid) == 43
    assert Key.generate("ES256", kid="mine").kid == "mine"


def test_from_secret_accepts_str_bytes_and_secret() -> None:
    raw = "s" * 32
    kids = {Key.from_secret(v).kid for v in (raw, raw.encode(), Secret(raw))}
    assert len(kids) == 1
    assert Key.from_secret(raw).alg == "HS256"


def test_symmetric_keys_never_public() -> None:
    key = Key.generate("HS256")
    assert key.public_jwk() is None
    with pytest.raises(ConfigurationError):
        key.to_jwk(private=False)
    assert key.to_jwk(private=True)["kty"] == "oct"
    assert KeyRing([key]).jwks() == {"keys": []}
    secret_b64 = key.to_jwk(private=True)["k"]
    assert secret_b64 not in repr(key)
    assert secret_b64 not in repr(KeyRing([key]))


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"])
def test_public_only_key_verifies_but_cannot_sign(alg: str) -> None:
    key = Key.generate(alg)
    public = Key.from_jwk(key.public_jwk())  # type: ignore[arg-type]
    assert not public.can_sign
    assert public.kid == key.kid
    assert public.alg == alg
    signature = key.sign(b"data")
    assert public.verify(b"data", signature)
    assert not public.verify(b"datA", signature)
    with pytest.raises(ConfigurationError):
        public.sign(b"data")
    with pytest.raises(ConfigurationError):
        public.to_jwk(private=True)


def test_from_pem_private_and_public() -> None:
    key = Key.generate("ES256")
    private = key.jose_key.private_key
    pem = private.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    loaded = Key.from_pem(pem, alg="ES256")
    assert loaded.kid == key.kid
    assert loaded.can_sign
    public_pem = private.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert Key.from_pem(public_pem.decode(), alg="ES256").kid == key.kid
    ring = load_keys(public_pem, alg="ES256")
    assert ring.keys[0].kid == key.kid
    with pytest.raises(ConfigurationError):
        Key.from_pem(pem, alg="EdDSA")
    with pytest.raises(ConfigurationError):
        Key.from_pem(pem, alg="HS256")
    with pytest.raises(ConfigurationError):
        Key.from_pem(b"-----BEGIN NONSENSE-----", alg="RS256")
    with pytest.raises(ConfigurationError):
        load_keys(public_pem)  # a PEM needs its algorithm


def test_from_jwk_infers_and_checks_alg() -> None:
    jwk = Key.generate("EdDSA").to_jwk(private=True)
    del jwk["alg"]
    assert Key.from_jwk(jwk).alg == "Ed25519"  # RFC 9864: the fully-specified name
    assert Key.from_jwk(json.dumps(jwk), alg="Ed25519").alg == "Ed25519"
    with pytest.raises(ConfigurationError):
        Key.from_jwk({**jwk, "alg": "EdDSA"}, alg="ES256")
    x25519 = {"kty": "OKP", "crv": "X25519", "x": "AA"}
    for bad in ({"kty": "EC", "crv": "P-256"}, {"kty": "nope"}, x25519):
        with pytest.raises(ConfigurationError):
            Key.from_jwk(bad)
    with pytest.raises(ConfigurationError):
        Key.from_jwk("not json")
    with pytest.raises(ConfigurationError):
        Key.from_jwk({**jwk, "kid": 5})


@pytest.mark.parametrize("alg", ["none", "HS1", "ES256K", "RSA1_5", "PBES2-HS256+A128KW", ""])
def test_unknown_algorithm(alg: str) -> None:
    with pytest.raises(ConfigurationError):
        Key.generate(alg)


def test_ring_rules() -> None:
    a, b = Key.generate("HS256", kid="a"), Key.generate("ES256", kid="b")
    ring = KeyRing([a, b])
    assert ring.signing_key() is b
    assert ring.get("a") is a
    assert ring.get("zz") is None
    assert len(ring) == 2
    assert list(ring) == [a, b]
    assert [k["kid"] for k in ring.jwks()["keys"]] == ["b"]
    assert KeyRing.coerce(a).keys == (a,)
    assert KeyRing.coerce(ring) is ring
    with pytest.raises(ConfigurationError):
        KeyRing([])
    with pytest.raises(ConfigurationError):
        KeyRing([a, Key.generate("HS256", kid="a")])
    with pytest.raises(ConfigurationError):
        ring.signing_key(encryption=True)


def test_load_keys_jwks_and_jwk() -> None:
    key = Key.generate("RS256")
    document = json.dumps(KeyRing([key]).jwks())
    assert load_keys(document).keys[0].kid == key.kid
    assert load_keys(json.dumps(key.to_jwk(private=True))).keys[0].can_sign
    for bad in ("", "hello", "{", '{"keys": 5}'):
        with pytest.raises(ConfigurationError):
            load_keys(bad)
