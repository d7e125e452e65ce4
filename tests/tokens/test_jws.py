"""Differential tests: the fast compact-JWS verifier against joserfc on random and
hostile input. Whatever coatcheck accepts, joserfc accepts with the same payload; whatever
joserfc accepts, coatcheck accepts unless it hits one of coatcheck's documented extra
refusals (refused header parameters, a kid naming no key, duplicate or deep JSON, size).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jws import JWSRegistry

from coatcheck._bounded import ADMIT_EVERY
from coatcheck.errors import (
    ConfigurationError,
    InvalidSignature,
    TokenError,
    UnsupportedAlgorithm,
)
from coatcheck.tokens import (
    SIGNING_ALGORITHMS,
    CompactVerifier,
    Key,
    KeyRing,
    sign_compact,
    verify_compact,
)
from coatcheck.tokens._codec import MAX_JSON_DEPTH, MAX_TOKEN_BYTES, b64url_decode
from coatcheck.tokens.jws import MAX_HEADER_BYTES, REFUSED_HEADERS

from .conftest import b64

# Every JWS algorithm, and EdDSA over both of its curves (RFC 8037 §3.1).
ALGS = [*sorted(SIGNING_ALGORITHMS), "EdDSA/Ed448"]
_KEYS = {
    name: Key.generate(name.split("/")[0], kid=f"k-{name}", curve=name.partition("/")[2] or None)
    for name in ALGS
}
_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _joserfc_accepts(token: str, key: Key) -> bytes | None:
    # joserfc verifies each name separately; coatcheck's key verifies EdDSA and its
    # fully-specified name as the one algorithm they are (RFC 9864 §2).
    registry = JWSRegistry(algorithms=sorted(key.jws_algorithms), strict_check_header=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return jws.deserialize_compact(token, key.jose_key, registry=registry).payload
        except Exception:  # any refusal counts; we only compare accept/refuse
            return None


def _ours(token: str, key: Key) -> bytes | None:
    try:
        return CompactVerifier(KeyRing([key])).verify(token)[1]
    except TokenError:
        return None


def _dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate")
    return dict(pairs)


def _deliberately_stricter(token: str, key: Key) -> bool:
    """True when coatcheck refuses on purpose what joserfc lets through."""
    if len(token) > MAX_TOKEN_BYTES or len(token.split(".")[0]) > MAX_HEADER_BYTES:
        return True
    head = token.split(".")[0]
    raw = __import__("base64").urlsafe_b64decode(head + "=" * (-len(head) % 4))
    try:
        header = json.loads(raw, object_pairs_hook=_dupes, parse_constant=float.__call__)
    except (ValueError, RecursionError):
        return True
    depth = raw.count(b"[") + raw.count(b"{")
    return (
        depth > MAX_JSON_DEPTH
        or bool(REFUSED_HEADERS.intersection(header))
        or ("kid" in header and header["kid"] != key.kid)
    )


def _agree(token: str, key: Key) -> None:
    ours = _ours(token, key)
    theirs = _joserfc_accepts(token, key)
    if ours is not None:
        assert theirs == ours, "coatcheck accepted what joserfc refuses"
    elif theirs is not None:
        assert _deliberately_stricter(token, key), "coatcheck refused what joserfc accepts"


_header_values = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from([*sorted(SIGNING_ALGORITHMS), "none", "hs256", "", 1, "ES256K"]),
        "kid": st.sampled_from([*(k.kid for k in _KEYS.values()), "x", "../../etc/passwd", 3]),
        "typ": st.sampled_from(["JWT", "at+jwt", 5]),
        "crit": st.sampled_from([[], ["exp"], "x"]),
        "jku": st.just("https://attacker.example/jwks"),
        "jwk": st.just({"kty": "oct", "k": "AAAA"}),
        "b64": st.booleans(),
        "zip": st.just("DEF"),
        "custom": st.text(max_size=5),
    },
)


@pytest.mark.parametrize("alg", ALGS)
@_SETTINGS
@given(header=_header_values, payload=st.binary(max_size=64))
def test_signed_headers_agree(alg: str, header: dict[str, Any], payload: bytes) -> None:
    key = _KEYS[alg]
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"
    _agree(token, key)


def _mutate(token: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "swap", "dots"]))
    if not token:
        return token
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. \x00é"
    if kind == "flip":
        return token[:i] + data.draw(st.sampled_from(alphabet)) + token[i + 1 :]
    if kind == "delete":
        return token[:i] + token[i + 1 :]
    if kind == "insert":
        return token[:i] + data.draw(st.sampled_from(alphabet)) + token[i:]
    if kind == "truncate":
        return token[:i]
    if kind == "swap":
        parts = token.split(".")
        return ".".join(reversed(parts))
    return token.replace(".", data.draw(st.sampled_from(["", "..", "."])), 1)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("issuer", ["coatcheck", "joserfc"])
@_SETTINGS
@given(data=st.data(), payload=st.binary(max_size=48))
def test_mutated_tokens_agree(alg: str, issuer: str, data: st.DataObject, payload: bytes) -> None:
    key = _KEYS[alg]
    if issuer == "coatcheck":
        token = sign_compact(payload, key)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            token = jws.serialize_compact(
                {"alg": key.alg, "kid": key.kid}, payload, key.jose_key, algorithms=[key.alg]
            )
    _agree(token, key)  # the untouched token: both accept
    assert _ours(token, key) == payload
    for _ in range(data.draw(st.integers(1, 3))):
        token = _mutate(token, data)
    _agree(token, key)


@_SETTINGS
@given(st.text(max_size=200))
def test_any_text_only_raises_token_errors(text: str) -> None:
    key = _KEYS["HS256"]
    with contextlib.suppress(TokenError):
        CompactVerifier(KeyRing([key])).verify(text)
    _agree(text, key) if text.isascii() else None


def test_cache_only_holds_verified_headers() -> None:
    key = _KEYS["HS256"]
    verifier = CompactVerifier(KeyRing([key]))
    for i in range(200):
        forged = f"{b64(json.dumps({'alg': 'HS256', 'n': i}).encode())}.e30.{b64(bytes(32))}"
        with pytest.raises(TokenError):
            verifier.verify(forged)
    assert verifier._cache is not None
    assert len(verifier._cache) == 0
    token = sign_compact(b"{}", key)
    verifier.verify(token)
    verifier.verify(token)
    assert len(verifier._cache) == 1
    assert verifier._cache.cache_info()[:2] == (1, 1)  # one miss stored, then one hit


def test_cache_is_bounded() -> None:
    key = _KEYS["HS256"]
    verifier = CompactVerifier(KeyRing([key]))
    for i in range(300):
        verifier.verify(sign_compact(b"{}", key, header={"n": i}))
    assert verifier._cache is not None
    assert len(verifier._cache) <= 64


def test_cache_size_knob() -> None:
    key = _KEYS["HS256"]
    token = sign_compact(b"{}", key)
    off = CompactVerifier(KeyRing([key]), cache_size=0)
    assert off._cache is None
    assert off.verify(token)[1] == b"{}"
    small = CompactVerifier(KeyRing([key]), cache_size=2)
    for i in range(3 * ADMIT_EVERY):  # three of them sampled into a cache of two
        small.verify(sign_compact(b"{}", key, header={"n": i}))
    assert small._cache is not None
    assert len(small._cache) == 2
    with pytest.raises(ConfigurationError):
        CompactVerifier(KeyRing([key]), cache_size=-1)


def test_check_algorithms() -> None:
    ring = KeyRing([_KEYS["HS256"]])
    assert CompactVerifier(ring).algorithms == {"HS256"}
    for bad in (["none"], ["HS256", "RS1"], [], "HS256"):
        with pytest.raises(ConfigurationError):
            CompactVerifier(ring, algorithms=bad)


def test_sign_compact_keeps_the_key_alg() -> None:
    key = _KEYS["ES256"]
    token = sign_compact(b"x", key, header={"alg": "none", "typ": "JOSE"})
    header, payload, used = CompactVerifier(KeyRing([key])).verify(token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "JOSE"
    assert payload == b"x"
    assert used is key


# -- issue 11: every algorithm, bound to its key type and curve ---------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_every_algorithm_round_trips_through_verify_compact(alg: str) -> None:
    key = _KEYS[alg]
    payload = b"\x00\xffnot json at all"
    token = sign_compact(payload, key, header={"typ": "example+jose"})
    verified = verify_compact(token, key)
    assert verified.payload == payload
    assert verified.header == {"alg": key.alg, "kid": key.kid, "typ": "example+jose"}
    assert verified.key is key
    public = key.public_jwk()
    if public is not None:
        assert verify_compact(token, Key.from_public_jwk(public, alg=key.alg)).payload == payload


@pytest.mark.parametrize("alg", ALGS)
def test_a_token_cannot_borrow_another_algorithm(alg: str) -> None:
    """The header's alg must be one the named key is bound to: never its key-type sibling
    (RS256/PS256, ES256/ES384), never another curve, never HMAC over a public key."""
    key = _KEYS[alg]
    ring = KeyRing([key])
    for other in sorted(SIGNING_ALGORITHMS - key.jws_algorithms):
        head = b64(json.dumps({"alg": other, "kid": key.kid}).encode())
        signing_input = f"{head}.e30"
        # Signed with the key's own primitive, as an attacker holding a signature would try.
        token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"
        with pytest.raises(UnsupportedAlgorithm):
            CompactVerifier(ring, algorithms=SIGNING_ALGORITHMS).verify(token)
        public = key.public_jwk() or {}
        hmac_over_public = hmac.new(json.dumps(public).encode(), signing_input.encode(),
                                    hashlib.sha256).digest()
        forged = f"{b64(json.dumps({'alg': 'HS256', 'kid': key.kid}).encode())}.e30." + b64(
            hmac_over_public
        )
        if key.alg != "HS256":
            with pytest.raises(UnsupportedAlgorithm):
                CompactVerifier(ring, algorithms=SIGNING_ALGORITHMS).verify(forged)


def test_eddsa_and_ed25519_are_one_algorithm() -> None:
    """RFC 9864 §2: tokens made elsewhere say EdDSA, coatcheck's say Ed25519; a key bound to
    either verifies both, an allow-list can pin one name, and Ed448 stays apart."""
    ed25519, eddsa, ed448 = _KEYS["Ed25519"], _KEYS["EdDSA"], _KEYS["Ed448"]
    for key in (ed25519, eddsa):
        for name in ("EdDSA", "Ed25519"):
            head = b64(json.dumps({"alg": name, "kid": key.kid}).encode())
            token = f"{head}.e30.{b64(key.sign(f'{head}.e30'.encode()))}"
            assert verify_compact(token, key).payload == b"{}"
            other = "Ed25519" if name == "EdDSA" else "EdDSA"
            with pytest.raises(UnsupportedAlgorithm):
                verify_compact(token, key, algorithms=[other])
    assert CompactVerifier(KeyRing([ed25519])).algorithms == {"EdDSA", "Ed25519"}
    head = b64(json.dumps({"alg": "Ed25519", "kid": ed448.kid}).encode())
    token = f"{head}.e30.{b64(ed448.sign(f'{head}.e30'.encode()))}"
    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(token, ed448)
    assert verify_compact(sign_compact(b"x", ed25519), ed25519).header["alg"] == "Ed25519"


@pytest.mark.parametrize(
    ("alg", "size"),
    [("ES256", 64), ("ES384", 96), ("ES512", 132), ("Ed25519", 64), ("Ed448", 114),
     ("RS384", 256), ("PS512", 256), ("HS384", 48)],
)
def test_signature_sizes_are_exact(alg: str, size: int) -> None:
    key = _KEYS[alg]
    token = sign_compact(b"{}", key)
    head, payload, signature = token.split(".")
    assert len(b64url_decode(signature.encode())) == size
    for wrong in (size - 1, size + 1, 0):
        bad = f"{head}.{payload}.{b64(bytes(wrong))}"
        with pytest.raises(InvalidSignature):
            verify_compact(bad, key)
    if alg.startswith("ES"):
        # R = S = 0 of the right length (CVE-2022-21449's psychic signature).
        with pytest.raises(InvalidSignature):
            verify_compact(f"{head}.{payload}.{b64(bytes(size))}", key)
