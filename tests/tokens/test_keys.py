"""Key and KeyRing: construction, binding, export, JWKS, loading."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.errors import (
    ConfigurationError,
    DuplicateKid,
    KeyRefused,
    KeyUseConflict,
    MalformedKey,
    NotAPublicKey,
    PointNotOnCurve,
    UnsupportedAlgorithm,
    WeakKey,
)
from coatcheck.secret import Secret
from coatcheck.tokens import CompactVerifier, JWTCodec, Key, KeyRing, load_keys
from coatcheck.tokens._codec import b64url_decode
from coatcheck.tokens._jwk import PRIVATE_MEMBERS

from .conftest import b64


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


# -- issue 11: key policy -------------------------------------------------------------


def _refused(error: type[KeyRefused], build: Callable[[], object]) -> KeyRefused:
    with pytest.raises(KeyRefused) as caught:
        build()
    assert type(caught.value) is error, f"{type(caught.value).__name__} is not {error.__name__}"
    assert isinstance(caught.value, ConfigurationError)  # keys are configuration
    return caught.value


@pytest.fixture(scope="module")
def rsa_jwk() -> dict[str, Any]:
    return Key.generate("RS256", kid="r").to_jwk(private=True)


@pytest.mark.parametrize(
    ("alg", "use"), [("RS256", "enc"), ("ES256", "enc"), ("RSA-OAEP-256", "sig"), ("dir", "sig")]
)
def test_use_must_fit_the_algorithm(alg: str, use: str) -> None:
    """RFC 7517 §4.2: an encryption key never verifies or signs, and the reverse."""
    jwk = Key.generate(alg, kid="k").to_jwk(private=True)
    error = _refused(KeyUseConflict, lambda: Key.from_jwk({**jwk, "use": use}, alg=alg))
    assert error.kid == "k"
    assert f"use: '{use}'" in error.message
    assert Key.from_jwk({**jwk, "use": "sig" if use == "enc" else "enc"}, alg=alg).alg == alg


@pytest.mark.parametrize(
    ("use", "key_ops", "reason"),
    [
        ("sig", ["encrypt"], "disagree"),
        ("enc", ["sign", "verify"], "disagree"),
        (None, ["verify", "verify"], "twice"),
        (None, "verify", "list of strings"),
        (None, [1], "list of strings"),
        ("signature", None, "must be"),
        (None, ["encrypt", "wrapKey"], "allow no ES256 operation"),
        (None, [], "allow no ES256 operation"),
    ],
)
def test_use_and_key_ops_are_vetted(use: str | None, key_ops: object, reason: str) -> None:
    jwk: dict[str, Any] = Key.generate("ES256").to_jwk(private=True)
    del jwk["use"]
    if use is not None:
        jwk["use"] = use
    if key_ops is not None:
        jwk["key_ops"] = key_ops
    assert reason in _refused(KeyUseConflict, lambda: Key.from_jwk(jwk)).message


def test_key_ops_limit_what_a_key_does(hs_key: Key) -> None:
    """RFC 7517 §4.3: a key whose key_ops leave out 'verify' never checks a signature, and
    one that leaves out 'sign' never signs; keys with neither member do both."""
    jwk = Key.generate("ES256", kid="ops").to_jwk(private=True)
    del jwk["use"]
    sign_only = Key.from_jwk({**jwk, "key_ops": ["sign"]})
    verify_only = Key.from_jwk({**jwk, "key_ops": ["verify"]})
    token = JWTCodec(sign_only).encode({"sub": "a"})
    assert (sign_only.can_sign, sign_only.can_verify) == (True, False)
    assert (verify_only.can_sign, verify_only.can_verify) == (False, True)
    assert JWTCodec(verify_only).decode(token)["sub"] == "a"
    with pytest.raises(UnsupportedAlgorithm, match="not allowed"):
        CompactVerifier(KeyRing([sign_only, hs_key])).verify(token)
    with pytest.raises(UnsupportedAlgorithm, match="may not verify"):
        CompactVerifier(KeyRing([sign_only, hs_key]), algorithms=["ES256"]).verify(token)
    with pytest.raises(ConfigurationError, match="do not allow 'sign'"):
        verify_only.sign(b"x")
    assert not sign_only.verify(token.rsplit(".", 1)[0].encode(), b"\x00" * 64)
    plain = Key.from_jwk(jwk)
    assert (plain.can_sign, plain.can_verify) == (True, True)  # no use, no key_ops: as before
    enc_only = Key.from_jwk({**Key.generate("RSA-OAEP", kid="e").to_jwk(private=True),
                             "key_ops": ["wrapKey"], "use": "enc"})
    assert (enc_only.can_encrypt, enc_only.can_decrypt) == (True, False)


def test_an_encryption_key_never_signs_or_verifies(hs_key: Key) -> None:
    key = Key.generate("ECDH-ES", kid="e")
    assert (key.can_sign, key.can_verify, key.jws_algorithms) == (False, False, frozenset())
    with pytest.raises(ConfigurationError, match="JWE algorithm"):
        key.sign(b"data")
    header = {"alg": "ES256", "kid": "e"}
    forged = f"{b64(json.dumps(header).encode())}.e30.{b64(bytes(64))}"
    with pytest.raises(UnsupportedAlgorithm):
        CompactVerifier(KeyRing([key, hs_key])).verify(forged)


@pytest.mark.parametrize("exponent", [1, 2, 4, 65536, 0])
def test_rsa_exponent_must_be_odd_and_at_least_3(rsa_jwk: dict[str, Any], exponent: int) -> None:
    raw = exponent.to_bytes(max(1, (exponent.bit_length() + 7) // 8), "big")
    public = {"kty": "RSA", "n": rsa_jwk["n"], "e": b64(raw), "kid": "r"}
    error = _refused(WeakKey, lambda: Key.from_jwk(public, alg="RS256"))
    assert f"not {exponent}" in error.message
    assert "odd number of at least 3" in error.message


def test_rsa_exponent_three_is_accepted() -> None:
    private = rsa.generate_private_key(3, 2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = Key.from_pem(pem, alg="PS256")
    assert key.verify(b"m", key.sign(b"m"))


@pytest.mark.parametrize("bits", [1024, 1536, 2040])
def test_small_rsa_moduli_are_refused(bits: int) -> None:
    private = rsa.generate_private_key(65537, bits)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64(numbers.n.to_bytes((bits + 7) // 8, "big")), "e": "AQAB"}
    assert "at least 2048 bits" in _refused(WeakKey, lambda: Key.from_jwk(jwk)).message
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert f"has {bits}" in _refused(WeakKey, lambda: Key.from_pem(pem, alg="RS256")).message


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_ec_points_off_the_curve_are_refused(crv: str) -> None:
    alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv]
    jwk = Key.generate(alg).public_jwk()
    assert jwk is not None
    y = bytearray(b64url_decode(jwk["y"].encode()))
    y[-1] ^= 1  # (x, y') with y' != ±y is not on the curve
    off = {**jwk, "y": b64(bytes(y))}
    error = _refused(PointNotOnCurve, lambda: Key.from_jwk(off))
    assert f"not a point on {crv}" in error.message
    _refused(PointNotOnCurve, lambda: Key.from_public_jwk(off, alg=alg))
    bare = {k: v for k, v in off.items() if k not in ("alg", "use")}
    _refused(PointNotOnCurve, lambda: Key.from_jwk(bare, alg="ECDH-ES"))
    short = {**jwk, "x": jwk["x"][:-4]}
    assert "coordinates are" in _refused(MalformedKey, lambda: Key.from_jwk(short)).message


def test_each_algorithm_is_bound_to_its_curve() -> None:
    p384 = Key.generate("ES384").public_jwk()
    assert p384 is not None
    del p384["alg"]
    for alg in ("ES256", "ES512"):
        error = _refused(MalformedKey, lambda alg=alg: Key.from_jwk(p384, alg=alg))
        assert "not 'P-384'" in error.message
    ed448 = Key.generate("Ed448").to_jwk(private=True)
    _refused(MalformedKey, lambda: Key.from_jwk({**ed448, "alg": "Ed25519"}))
    assert Key.from_jwk({**ed448, "alg": "EdDSA"}).jws_algorithms == {"EdDSA", "Ed448"}
    x25519 = Key.generate("ECDH-ES", curve="X25519").to_jwk(private=True)
    _refused(KeyUseConflict, lambda: Key.from_jwk(x25519, alg="EdDSA"))  # its alg says ECDH-ES
    bare = {k: v for k, v in x25519.items() if k not in ("alg", "use")}
    assert "not 'X25519'" in _refused(MalformedKey, lambda: Key.from_jwk(bare, alg="EdDSA")).message


def test_okp_private_and_public_halves_must_match() -> None:
    one, two = Key.generate("Ed25519").to_jwk(private=True), Key.generate("Ed25519").public_jwk()
    assert two is not None
    error = _refused(MalformedKey, lambda: Key.from_jwk({**one, "x": two["x"]}))
    assert "'x' is not the public key of 'd'" in error.message


def test_ec_private_and_public_halves_must_match() -> None:
    one, two = Key.generate("ES256").to_jwk(private=True), Key.generate("ES256").public_jwk()
    assert two is not None
    _refused(MalformedKey, lambda: Key.from_jwk({**one, "x": two["x"], "y": two["y"]}))


@pytest.mark.parametrize(
    ("alg", "size"), [("dir", 16), ("dir", 48), ("A128KW", 16), ("A192GCMKW", 24), ("A256KW", 32)]
)
def test_aes_key_sizes(alg: str, size: int) -> None:
    assert Key.from_secret(bytes(range(size)), alg=alg).alg == alg
    error = _refused(MalformedKey, lambda: Key.from_secret(bytes(range(size + 1)), alg=alg))
    assert "bytes" in error.message


def test_hmac_secrets_per_hash() -> None:
    for alg, size in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
        assert Key.from_secret(b"k" * size, alg=alg).alg == alg
        short = b"k" * (size - 1)
        error = _refused(WeakKey, lambda alg=alg, short=short: Key.from_secret(short, alg=alg))
        assert f"at least {size} bytes" in error.message


# -- a JWKS holds public keys only -------------------------------------------------------


def test_jwks_refuses_secrets_naming_the_key() -> None:
    public = Key.generate("ES256", kid="ok").public_jwk()
    secret = Key.generate("HS256", kid="shh").to_jwk(private=True)
    error = _refused(NotAPublicKey, lambda: KeyRing.from_jwks({"keys": [public, secret]}))
    assert error.kid == "shh"
    assert "key 'shh' in the JWKS (keys[1]) is a symmetric (oct) secret" in error.message
    assert secret["k"] not in error.message  # never the key itself
    assert len(KeyRing.from_jwks({"keys": [public, secret]}, private=True)) == 2


@pytest.mark.parametrize("alg", ["RS256", "ES384", "Ed25519", "ECDH-ES+A128KW"])
def test_jwks_refuses_private_material(alg: str) -> None:
    private = Key.generate(alg, kid="leak").to_jwk(private=True)
    error = _refused(NotAPublicKey, lambda: KeyRing.from_jwks(json.dumps({"keys": [private]})))
    assert "holds private key material (d" in error.message
    assert "keys[0]" in error.message
    _refused(NotAPublicKey, lambda: load_keys(json.dumps({"keys": [private]})))
    assert load_keys(json.dumps({"keys": [private]}), private=True).keys[0].is_private
    public = {k: v for k, v in private.items() if k not in PRIVATE_MEMBERS}
    assert KeyRing.from_jwks({"keys": [public]}).keys[0].alg == alg


def test_jwks_refuses_a_private_member_alone() -> None:
    public = Key.generate("RS256", kid="r").public_jwk()
    assert public is not None
    for member in ("p", "q", "dp", "dq", "qi", "oth"):
        error = _refused(NotAPublicKey, lambda m=member: KeyRing.from_jwks(
            {"keys": [{**public, m: "AQAB"}]}))
        assert f"({member})" in error.message


def test_jwks_refuses_duplicate_kids() -> None:
    a = Key.generate("ES256", kid="same").public_jwk()
    b = Key.generate("Ed25519", kid="same").public_jwk()
    error = _refused(DuplicateKid, lambda: KeyRing.from_jwks({"keys": [a, b]}))
    assert "keys[0] and keys[1]" in error.message
    assert error.kid == "same"
    # The same key twice without kids: both get the thumbprint, and clash too.
    bare = {k: v for k, v in (a or {}).items() if k != "kid"}
    _refused(DuplicateKid, lambda: KeyRing.from_jwks({"keys": [bare, bare]}))
    _refused(DuplicateKid, lambda: KeyRing([Key.generate("HS256", kid="x")] * 2))


def test_jwks_keeps_encryption_keys_apart_from_verification() -> None:
    """A published set (Keycloak's does this) may list encryption keys next to signing
    keys: they load, bound to their JWE algorithm, and never verify a signature."""
    sig = Key.generate("RS256", kid="sig")
    enc = Key.generate("RSA-OAEP", kid="enc")
    enc_jwk = enc.public_jwk()
    assert enc_jwk is not None
    del enc_jwk["alg"]  # use: enc alone says what it is for
    ring = KeyRing.from_jwks({"keys": [sig.public_jwk(), enc_jwk]})
    assert [k.alg for k in ring] == ["RS256", "RSA-OAEP-256"]
    assert CompactVerifier(ring).algorithms == {"RS256"}


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"keys": "x"}, {"keys": [5]}, [], {"nokeys": 1}, "{", '{"keys": [{}]}'],
)
def test_jwks_malformed(document: object) -> None:
    with pytest.raises(KeyRefused):
        KeyRing.from_jwks(document)  # type: ignore[arg-type]


# -- from_public_jwk (for keys that arrive in tokens, e.g. DPoP) -------------------------


def test_from_public_jwk() -> None:
    key = Key.generate("ES256")
    public = key.public_jwk()
    assert public is not None
    verify_only = Key.from_public_jwk(public, alg="ES256")
    assert (verify_only.can_verify, verify_only.can_sign, verify_only.is_private) == (
        True, False, False
    )
    assert verify_only.thumbprint() == key.thumbprint()
    _refused(NotAPublicKey, lambda: Key.from_public_jwk(key.to_jwk(private=True), alg="ES256"))
    _refused(NotAPublicKey,
             lambda: Key.from_public_jwk(Key.generate("HS256").to_jwk(private=True), alg="HS256"))
    _refused(KeyUseConflict, lambda: Key.from_public_jwk(public, alg="ES384"))
    _refused(MalformedKey, lambda: Key.from_public_jwk({"kty": "EC", "crv": "P-256"}, alg="ES256"))
    _refused(MalformedKey, lambda: Key.from_public_jwk("[1]", alg="ES256"))
    ed = Key.generate("Ed25519").public_jwk()
    assert ed is not None
    assert Key.from_public_jwk(ed, alg="EdDSA").jws_algorithms == {"EdDSA", "Ed25519"}
    with pytest.raises(ConfigurationError, match="refused by design"):
        Key.from_public_jwk(public, alg="none")


# -- bad input never crashes -------------------------------------------------------------

_members = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "d", "n", "e", "k", "alg", "use", "key_ops", "kid",
                     "p", "q", "x5c"]),
    st.one_of(
        st.sampled_from(["EC", "RSA", "OKP", "oct", "P-256", "P-521", "Ed25519", "X25519",
                         "sig", "enc", "ES256", "RS256", "EdDSA", "dir", "AQAB", "AAAA", ""]),
        st.text(max_size=12), st.integers(), st.none(), st.lists(st.text(max_size=6), max_size=3),
        st.binary(min_size=1, max_size=70).map(b64),
    ),
    max_size=8,
)


_KEY_CODES = {
    "configuration_error", "malformed_key", "weak_key", "vulnerable_key", "point_not_on_curve",
    "key_use_conflict", "not_a_public_key", "duplicate_kid",
}


def _outcome(build: Callable[[], object]) -> object:
    try:
        return build()
    except ConfigurationError as exc:  # any other exception fails the test
        return exc


@settings(max_examples=400, deadline=None)
@given(data=_members, alg=st.sampled_from([None, "ES256", "RS256", "Ed25519", "ECDH-ES", "dir"]))
def test_any_jwk_is_loaded_or_refused_with_a_code(data: dict[str, Any], alg: str | None) -> None:
    for build in (
        lambda: Key.from_jwk(data, alg=alg),
        lambda: Key.from_public_jwk(data, alg=alg or "ES256"),
        lambda: KeyRing.from_jwks({"keys": [data]}),
    ):
        outcome = _outcome(build)
        if isinstance(outcome, ConfigurationError):
            assert outcome.code in _KEY_CODES
        else:
            assert isinstance(outcome, Key | KeyRing)


@settings(max_examples=150, deadline=None)
@given(x=st.binary(min_size=32, max_size=32), y=st.binary(min_size=32, max_size=32))
def test_random_ec_points_are_refused_or_on_the_curve(x: bytes, y: bytes) -> None:
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}
    try:
        key = Key.from_jwk(jwk)
    except PointNotOnCurve:
        return
    # Astronomically unlikely; if it happens the point really is on P-256.
    assert key.curve == "P-256"


def _published(alg: str, kid: str, **extra: Any) -> dict[str, Any]:
    jwk = Key.generate(alg, kid=kid).public_jwk()
    assert jwk is not None
    return {**jwk, **extra}


@pytest.mark.parametrize(
    ("foreign", "reason"),
    [
        # An identity provider's set may carry an old RSA1_5 encryption key beside its
        # signing keys; coatcheck never decrypts with it, so it is ignored, not fatal.
        ({"use": "enc", "alg": "RSA1_5"}, "'RSA1_5' is refused by design"),
        ({"alg": "RS1"}, "'RS1' is not a supported algorithm"),
        ({"kty": "EC", "crv": "secp256k1", "alg": "ES256K", "x": "AQ", "y": "AQ"},
         "'ES256K' is not a supported algorithm"),
        ({"kty": "EC", "crv": "secp256k1", "x": "AQ", "y": "AQ"},
         "no supported algorithm fits kty 'EC', crv 'secp256k1'"),
        ({"kty": "OKP", "crv": "X448", "x": "AQ"}, "no supported algorithm fits kty 'OKP'"),
        ({"kty": "PQC-ML-DSA", "pub": "AQ"}, "key type 'PQC-ML-DSA' is not supported"),
    ],
)
def test_jwks_ignores_keys_it_does_not_understand(foreign: dict[str, Any], reason: str) -> None:
    """RFC 7517 §5: keys of a type, curve or algorithm not understood are ignored."""
    base = _published("RS256", "other")
    if "kty" in foreign:
        base = {"kid": "other"}
    odd = {**base, **foreign}
    signer = Key.generate("ES256", kid="sig")
    ring = KeyRing.from_jwks({"keys": [signer.public_jwk(), odd]})
    assert [k.kid for k in ring] == ["sig"]
    assert len(ring.ignored) == 1
    assert ring.ignored[0].startswith("key 'other' at keys[1]: ")
    assert reason in ring.ignored[0]
    # The ignored kid verifies nothing: a token naming it finds no key.
    assert ring.get("other") is None
    # Alone, a set of keys not understood is no key set at all.
    with pytest.raises(MalformedKey, match="no key in the JWKS is one coatcheck can use"):
        KeyRing.from_jwks({"keys": [odd]})
    # A set of your own keys (private=True) is configuration: nothing is skipped silently.
    with pytest.raises(ConfigurationError):
        KeyRing.from_jwks({"keys": [signer.to_jwk(private=True), odd]}, private=True)


def test_jwks_still_refuses_a_broken_key_it_understands() -> None:
    """Ignoring is for what is not understood: a weak or off-curve key refuses the set."""
    good = _published("ES256", "good")
    off_curve = {**_published("ES256", "off"), "y": good["x"]}
    with pytest.raises(KeyRefused):
        KeyRing.from_jwks({"keys": [good, off_curve]})
    mismatched = {**_published("ES256", "mis"), "alg": "ES384"}
    with pytest.raises(KeyRefused):
        KeyRing.from_jwks({"keys": [good, mismatched]})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "X25519", "x": "AQ", "y": "AQ"},  # found by hypothesis: a KeyError
        {"kty": "OKP", "crv": "P-256", "x": "AQ"},
    ],
)
def test_a_curve_of_the_other_key_type_is_malformed(jwk: dict[str, Any]) -> None:
    for alg in ("ECDH-ES", "ECDH-ES+A128KW", None):
        with pytest.raises(MalformedKey):
            Key.from_jwk(jwk, alg=alg)
