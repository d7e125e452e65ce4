"""Property tests for DPoP proofs: hostile bytes only ever make InvalidDPoPProof, and
the proof key built straight from the JWK members agrees with joserfc's import."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws as jose_jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey
from joserfc.jwk import Key as JoseKey
from joserfc.jws import JWSRegistry

from coatcheck.errors import InvalidDPoPProof
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import DPoPVerifier, make_proof, normalize_htu

from .conftest import NOW, b64, forge

URL = "https://api.example.com/api/me"
KEY = Key.generate("ES256")
VERIFIER = DPoPVerifier()
GOOD = make_proof(KEY, method="GET", url=URL, now=NOW, access_token="tok")
PROOF_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ,é"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _refused(proof: Any) -> None:
    # Nothing else may escape (a 5xx in an app), and nothing here can be a valid proof:
    # the ath of "tok" is never among the drawn values.
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(proof, method="GET", url=URL, now=NOW, access_token="tok")


@settings(max_examples=400)
@given(st.text(alphabet=PROOF_CHARS, max_size=600))
def test_random_text_is_refused_cleanly(text: str) -> None:
    _refused(text)


@settings(max_examples=400)
@given(st.data())
def test_changing_any_character_of_a_good_proof_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(GOOD) - 1))
    char = data.draw(st.sampled_from(PROOF_CHARS).filter(lambda c: c != GOOD[index]))
    changed = GOOD[:index] + char + GOOD[index + 1 :]
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(changed, method="GET", url=URL, now=NOW, access_token="tok")


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "kid", "crit", "x"]), json_values),
    st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), json_values),
)
def test_signed_hostile_headers_and_claims_are_refused_cleanly(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    # Signed by a real key, so the checks after the signature see the garbage too.
    _refused(forge(header, claims, KEY.sign))
    with_jwk = {**header, "typ": "dpop+jwt", "alg": "ES256",
                "jwk": {k: v for k, v in (KEY.public_jwk() or {}).items() if k in "kty crv x y"}}
    _refused(forge(with_jwk, claims, KEY.sign))


@settings(max_examples=300)
@given(json_values)
def test_any_jwk_value_is_refused_cleanly(jwk: Any) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": b64(b"x")}
    with pytest.raises(InvalidDPoPProof):
        VERIFIER.verify(forge(header, claims, KEY.sign), method="GET", url=URL, now=NOW,
                        access_token="tok")


uri_chars = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é\x00\n"),
    max_size=80,
)


@settings(max_examples=500)
@given(st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", ""]), uri_chars)
def test_normalize_htu_never_raises_and_is_idempotent(prefix: str, rest: str) -> None:
    normal = normalize_htu(prefix + rest)
    if normal is not None:
        assert normalize_htu(normal) == normal
        assert "?" not in normal
        assert "#" not in normal
        assert normal.startswith(("http://", "https://"))


# -- the proof key, built from the JWK members without joserfc, against joserfc ---------

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1
RSA_KEYS = {alg: Key.generate(alg) for alg in ("RS256", "PS256")}


def _jose_registry(alg: str) -> JWSRegistry:
    # A proof header holds its key: an RSA one is longer than joserfc's default limit.
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = 4096
    return registry


def _public_members(key: Key) -> dict[str, Any]:
    public = key.public_jwk() or {}
    return {k: v for k, v in public.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def _proof_and_joserfc(key: Key, message: str) -> tuple[str, JoseKey]:
    proof = make_proof(key, method="GET", url=URL + "/" + message, now=NOW, access_token="tok")
    return proof, JWKRegistry.import_key(_public_members(key))


def _check_like_joserfc(key: Key, message: str) -> None:
    proof, jose_key = _proof_and_joserfc(key, message)
    url = URL + "/" + message
    ours = DPoPVerifier().verify(proof, method="GET", url=url, now=NOW, access_token="tok")
    # The same key (RFC 7638 thumbprint), and the same signature verdicts.
    assert ours.jkt == jose_key.thumbprint() == key.thumbprint()
    jose_jws.deserialize_compact(proof, jose_key, registry=_jose_registry(key.alg))
    head, payload, signature = proof.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 1
    tampered = f"{head}.{payload}.{b64(bytes(raw))}"
    with pytest.raises(BadSignatureError):
        jose_jws.deserialize_compact(tampered, jose_key, registry=_jose_registry(key.alg))
    with pytest.raises(InvalidDPoPProof, match="signature"):
        DPoPVerifier().verify(tampered, method="GET", url=url, now=NOW, access_token="tok")


@settings(max_examples=150)
@given(st.integers(1, P256_ORDER - 1), st.text(alphabet="abcxyz019", max_size=12))
def test_es256_proof_keys_match_joserfc(secret: int, message: str) -> None:
    private = ec.derive_private_key(secret, ec.SECP256R1())
    _check_like_joserfc(Key(ECKey.import_key(private), alg="ES256"), message)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")  # joserfc's, for the older name
@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32), st.sampled_from(["EdDSA", "Ed25519"]))
def test_ed25519_proof_keys_match_joserfc(seed: bytes, alg: str) -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    _check_like_joserfc(Key(OKPKey.import_key(private), alg=alg), "")


@settings(max_examples=20)
@given(st.sampled_from(sorted(RSA_KEYS)), st.text(alphabet="abc", max_size=8))
def test_rsa_proof_keys_match_joserfc(alg: str, message: str) -> None:
    _check_like_joserfc(RSA_KEYS[alg], message)


def _coordinate(value: int) -> str:
    return b64(value.to_bytes(32, "big"))


points = st.one_of(
    # On the curve: a real public key.
    st.integers(1, P256_ORDER - 1).map(
        lambda d: ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    ).map(lambda n: (n.x, n.y)),
    # Off it: any coordinates, a real x with a nudged y, coordinates past the prime.
    st.tuples(st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1)),
    st.integers(1, P256_ORDER - 1).map(
        lambda d: ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    ).map(lambda n: (n.x, (n.y + 1) % 2**256)),
    st.tuples(st.integers(P256_PRIME, 2**256 - 1), st.integers(0, 2**256 - 1)),
)


@settings(max_examples=300)
@given(points)
def test_p256_points_are_refused_exactly_when_joserfc_refuses_them(point: tuple[int, int]) -> None:
    jwk = {"kty": "EC", "crv": "P-256", "x": _coordinate(point[0]), "y": _coordinate(point[1])}
    try:
        ECKey.import_key(jwk).public_key  # noqa: B018 - the import is the check
        valid = True
    except (ValueError, JoseError):
        valid = False
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": b64(b"x")}
    # Signed by another key: a key we accept fails only at the signature.
    with pytest.raises(InvalidDPoPProof) as refused:
        VERIFIER.verify(forge(header, claims, KEY.sign), method="GET", url=URL, now=NOW,
                        access_token="tok")
    assert ("signature" in refused.value.message) is valid
