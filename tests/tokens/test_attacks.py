"""The token attack suite (issue 5, item 2): each hostile case refused with its exact error.

Payload-level cases (bad JSON, duplicate names, nesting, UTF-8) are signed with the real
key, as a careless or compromised issuer would; the same cases in the header are caught
before the signature is even checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    ExpiredToken,
    ImmatureToken,
    InputError,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    MalformedToken,
    TokenError,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from coatcheck.policies import ClaimsPolicy
from coatcheck.tokens import JWTCodec, Key, KeyRing, _codec

from .conftest import NOW, b64, forge, good_claims, hs256_with, segment

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hs_codec(hs_key: Key, frozen: FrozenClock) -> JWTCodec:
    return JWTCodec(KeyRing([hs_key]), clock=frozen)


@pytest.fixture(params=["orjson", "stdlib"])
def json_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a case with orjson's fast path and with the standard-library-only path."""
    if request.param == "stdlib":
        monkeypatch.setattr(_codec, "_fast_loads", None)
    return request.param


def refused(codec: JWTCodec, token: object, error: type[TokenError]) -> TokenError:
    with pytest.raises(TokenError) as caught:
        codec.decode(token)  # type: ignore[arg-type]
    assert type(caught.value) is error, f"{type(caught.value).__name__} is not {error.__name__}"
    assert caught.value.code == error.code
    return caught.value


def signed(key: Key, header: dict[str, object] | bytes, payload: dict[str, object] | bytes) -> str:
    return forge(header, payload, key.sign)


# -- alg: none ------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_spelling(hs_codec: JWTCodec, hs_key: Key, spelling: str) -> None:
    header = {"alg": spelling, "kid": hs_key.kid, "typ": "JWT"}
    token = f"{segment(header)}.{segment(good_claims())}."
    refused(hs_codec, token, UnsupportedAlgorithm)
    # Also with a valid MAC attached, and with no kid at all.
    refused(hs_codec, signed(hs_key, header, good_claims()), UnsupportedAlgorithm)
    bare = f"{segment({'alg': spelling})}.{segment(good_claims())}."
    refused(hs_codec, bare, UnsupportedAlgorithm)


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_cannot_be_allowed(hs_key: Key, spelling: str) -> None:
    with pytest.raises(ConfigurationError):
        JWTCodec(KeyRing([hs_key]), algorithms=[spelling])


# -- algorithm confusion ----------------------------------------------------------------


def _public_materials(key: Key) -> list[bytes]:
    public = key.jose_key.public_key
    pem = public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [pem, pem.strip(), json.dumps(key.public_jwk()).encode()]


@pytest.mark.parametrize("which", ["rsa_key", "es_key"])
def test_hs256_signed_with_the_public_key(
    which: str, request: pytest.FixtureRequest, frozen: FrozenClock
) -> None:
    key: Key = request.getfixturevalue(which)
    other_hs = Key.generate("HS256", kid="other-hs")
    default = JWTCodec(KeyRing([key]), clock=frozen)
    permissive = JWTCodec(KeyRing([key, other_hs]), algorithms=["HS256", key.alg], clock=frozen)
    for material in _public_materials(key):
        token = forge({"alg": "HS256", "kid": key.kid}, good_claims(), hs256_with(material))
        # By default only the ring's own algorithm is allowed.
        refused(default, token, UnsupportedAlgorithm)
        # Even when HS256 is allowed, the kid names a key bound to another algorithm.
        refused(permissive, token, UnsupportedAlgorithm)
        # Without a kid, the only HS256 key is a real secret: the MAC fails.
        bare = forge({"alg": "HS256"}, good_claims(), hs256_with(material))
        refused(permissive, bare, InvalidSignature)
        # And public-key material is refused as an HMAC secret up front.
        with pytest.raises(ConfigurationError):
            Key.from_secret(material)


def test_hs256_without_kid_and_no_hmac_key(rsa_key: Key, frozen: FrozenClock) -> None:
    codec = JWTCodec(KeyRing([rsa_key]), algorithms=["HS256", "RS256"], clock=frozen)
    pem = _public_materials(rsa_key)[0]
    refused(codec, forge({"alg": "HS256"}, good_claims(), hs256_with(pem)), UnknownKey)


# -- kid --------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "unknown", "", "hs\x00"])
def test_kid_pointing_elsewhere(hs_codec: JWTCodec, hs_key: Key, kid: str) -> None:
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": kid}, good_claims()), UnknownKey)


def test_kid_not_a_string(hs_codec: JWTCodec, hs_key: Key) -> None:
    token = signed(hs_key, {"alg": "HS256", "kid": ["hs"]}, good_claims())
    refused(hs_codec, token, MalformedToken)


# -- headers that fetch or carry keys, crit ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "oct", "k": "AAAA"}),
        ("x5c", ["MIIB"]),
        ("b64", False),
    ],
)
def test_key_carrying_headers_refused(
    hs_codec: JWTCodec, hs_key: Key, name: str, value: object
) -> None:
    # Correctly signed, so only the header itself can be the reason.
    token = signed(hs_key, {"alg": "HS256", "kid": hs_key.kid, name: value}, good_claims())
    refused(hs_codec, token, UnsupportedHeader)


@pytest.mark.parametrize("crit", [["exp"], [], ["b64"], "exp"])
def test_crit_refused(hs_codec: JWTCodec, hs_key: Key, crit: object) -> None:
    header = {"alg": "HS256", "kid": hs_key.kid, "crit": crit, "exp": 1}
    token = signed(hs_key, header, good_claims())
    refused(hs_codec, token, UnsupportedHeader)


# -- signatures -------------------------------------------------------------------------


def test_stripped_signature(hs_codec: JWTCodec) -> None:
    token = hs_codec.encode({"sub": "alice"})
    refused(hs_codec, token.rsplit(".", 1)[0], MalformedToken)


def test_empty_signature(hs_codec: JWTCodec) -> None:
    token = hs_codec.encode({"sub": "alice"})
    refused(hs_codec, token.rsplit(".", 1)[0] + ".", InvalidSignature)


@pytest.mark.parametrize("which", ["hs_key", "es_key", "ed_key", "rsa_key"])
def test_truncated_signature(
    which: str, request: pytest.FixtureRequest, frozen: FrozenClock
) -> None:
    key: Key = request.getfixturevalue(which)
    codec = JWTCodec(KeyRing([key]), clock=frozen)
    head, sig = codec.encode({"sub": "alice"}).rsplit(".", 1)
    raw = _codec.b64url_decode(sig.encode())
    refused(codec, f"{head}.{b64(raw[:-1])}", InvalidSignature)
    refused(codec, f"{head}.{b64(raw + b'0')}", InvalidSignature)
    # Cut to a length no base64 can have (4k + 1): the encoding itself is broken.
    cut = next(k for k in range(1, 5) if (len(sig) - k) % 4 == 1)
    refused(codec, f"{head}.{sig[:-cut]}", MalformedToken)


@pytest.mark.parametrize(
    "signature",
    [
        bytes(64),  # r = s = 0: CVE-2022-21449 ("psychic signatures")
        P256_ORDER.to_bytes(32, "big") * 2,  # r = s = n, which is 0 mod n
        bytes(32) + (1).to_bytes(32, "big"),
        (1).to_bytes(32, "big") + bytes(32),
        b"\xff" * 64,
    ],
)
def test_es256_psychic_signature(es_key: Key, frozen: FrozenClock, signature: bytes) -> None:
    codec = JWTCodec(KeyRing([es_key]), clock=frozen)
    head = codec.encode({"sub": "alice"}).rsplit(".", 1)[0]
    refused(codec, f"{head}.{b64(signature)}", InvalidSignature)
    assert not es_key.verify(head.encode(), signature)


def test_signature_from_another_key_of_same_kid(hs_codec: JWTCodec) -> None:
    impostor = JWTCodec(Key.generate("HS256", kid="hs"), clock=FrozenClock(NOW))
    refused(hs_codec, impostor.encode({"sub": "mallory"}), InvalidSignature)


# -- claims -----------------------------------------------------------------------------


def test_expired(hs_codec: JWTCodec, frozen: FrozenClock) -> None:
    token = hs_codec.encode({"sub": "alice"}, ttl=60)
    frozen.advance(60 + 10)  # leeway is 10 s: exp <= now - leeway
    refused(hs_codec, token, ExpiredToken)


def test_not_before_in_future(hs_codec: JWTCodec) -> None:
    error = refused(hs_codec, hs_codec.encode({"nbf": NOW + 11}), ImmatureToken)
    assert error.claim == "nbf"  # type: ignore[attr-defined]


def test_issued_in_future(hs_codec: JWTCodec) -> None:
    error = refused(hs_codec, hs_codec.encode({"iat": NOW + 11, "exp": NOW + 600}), ImmatureToken)
    assert error.claim == "iat"  # type: ignore[attr-defined]


def test_wrong_audience(hs_key: Key, frozen: FrozenClock) -> None:
    issuer = JWTCodec(hs_key, policy=ClaimsPolicy(audience="billing"), clock=frozen)
    verifier = JWTCodec(hs_key, policy=ClaimsPolicy(audience="api"), clock=frozen)
    refused(verifier, issuer.encode({}), InvalidAudience)
    refused(verifier, issuer.encode({"aud": ["billing", "admin"]}), InvalidAudience)


def test_wrong_issuer(hs_key: Key, frozen: FrozenClock) -> None:
    issuer = JWTCodec(hs_key, policy=ClaimsPolicy(issuer="https://evil.example"), clock=frozen)
    verifier = JWTCodec(hs_key, policy=ClaimsPolicy(issuer="https://good.example"), clock=frozen)
    refused(verifier, issuer.encode({}), InvalidIssuer)


# -- rotation ----------------------------------------------------------------------------


def test_rotated_out_key(frozen: FrozenClock) -> None:
    old, new = Key.generate("HS256"), Key.generate("HS256")
    during = JWTCodec(KeyRing([old, new]), clock=frozen)
    old_token = JWTCodec(old, clock=frozen).encode({"sub": "alice"})
    assert during.decode(old_token)["sub"] == "alice"
    after = JWTCodec(KeyRing([new]), clock=frozen)
    refused(after, old_token, UnknownKey)


# -- weak keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "alg"),
    [
        (b"x" * 31, "HS256"),
        (b"x" * 47, "HS384"),
        (b"x" * 63, "HS512"),
        (b"", "HS256"),
        ("short", "HS256"),
    ],
)
def test_short_hmac_secret_refused(secret: bytes | str, alg: str) -> None:
    with pytest.raises(ConfigurationError):
        Key.from_secret(secret, alg=alg)
    raw = secret.encode() if isinstance(secret, str) else secret
    with pytest.raises(ConfigurationError):
        Key.from_jwk({"kty": "oct", "k": b64(raw), "alg": alg})


def test_small_rsa_key_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError):
        Key.from_pem(pem, alg="RS256")
    public_pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError):
        Key.from_pem(public_pem, alg="RS256")


def test_wrong_curve_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError):
        Key.from_pem(pem, alg="ES256")


def test_der_public_key_refused_as_secret(rsa_key: Key) -> None:
    der = rsa_key.jose_key.public_key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError):
        Key.from_secret(der)


# -- size -------------------------------------------------------------------------------


def test_oversized_token(hs_codec: JWTCodec, hs_key: Key) -> None:
    token = signed(hs_key, {"alg": "HS256", "kid": hs_key.kid}, good_claims(pad="x" * 9000))
    refused(hs_codec, token, MalformedToken)
    with pytest.raises(InputError):
        hs_codec.encode({"pad": "x" * 9000})


def test_oversized_header(hs_codec: JWTCodec, hs_key: Key) -> None:
    token = signed(hs_key, {"alg": "HS256", "kid": hs_key.kid, "x-pad": "x" * 2000}, good_claims())
    refused(hs_codec, token, MalformedToken)


# -- encoding and JSON ------------------------------------------------------------------


def _valid_parts(codec: JWTCodec) -> list[str]:
    return codec.encode({"sub": "alice"}).split(".")


@pytest.mark.parametrize("where", [0, 1, 2])
@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s + "=",  # padding
        lambda s: s + "==",
        lambda s: s[:-1] + "+",  # standard alphabet
        lambda s: s[:-1] + "/",
        lambda s: s[:5] + "*" + s[6:],
        lambda s: s[:5] + " " + s[6:],
        lambda s: s[:5] + "\n" + s[6:],
        lambda s: s + "A" * ((1 - len(s)) % 4 or 4),  # length 4k+1 can never be base64
    ],
)
def test_bad_base64(hs_codec: JWTCodec, hs_key: Key, where: int, damage: object) -> None:
    parts = _valid_parts(hs_codec)
    parts[where] = damage(parts[where])  # type: ignore[operator]
    if where == 1:
        # The signature is checked before the payload is read: sign the damage.
        signing_input = f"{parts[0]}.{parts[1]}"
        parts[2] = b64(hs_key.sign(signing_input.encode()))
    refused(hs_codec, ".".join(parts), MalformedToken)


@pytest.mark.parametrize("where", [0, 1])
def test_non_canonical_base64(hs_codec: JWTCodec, hs_key: Key, where: int) -> None:
    # Two encodings of the same bytes: only the canonical one (zero spare bits) is accepted.
    raw = b'{"alg":"HS256","kid":"hs","x":"a"}'  # 35 bytes: 47 chars, 2 spare bits
    parts = [b64(raw), segment(good_claims(y="ab"))]
    if len(parts[where]) % 4 == 0:
        parts[where] = b64(raw + b" ")  # make room for spare bits
    seg = parts[where]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    parts[where] = seg[:-1] + alphabet[alphabet.index(seg[-1]) + 1]
    signing_input = f"{parts[0]}.{parts[1]}"
    token = f"{signing_input}.{b64(hs_key.sign(signing_input.encode()))}"
    refused(hs_codec, token, MalformedToken)


@pytest.mark.usefixtures("json_path")
@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        b"[1,2,3]",
        b'"a string"',
        b"null",
        b"{",
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b"",
        b"\xef\xbb\xbf{}",  # UTF-8 byte order mark
        b'{"a":1}garbage',
    ],
)
def test_non_json(hs_codec: JWTCodec, hs_key: Key, bad: bytes) -> None:
    refused(hs_codec, signed(hs_key, bad, good_claims()), MalformedToken)
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": hs_key.kid}, bad), MalformedToken)


@pytest.mark.usefixtures("json_path")
def test_duplicate_keys(hs_codec: JWTCodec, hs_key: Key) -> None:
    header = b'{"alg":"HS256","kid":"hs","kid":"hs"}'
    refused(hs_codec, signed(hs_key, header, good_claims()), MalformedToken)
    # The classic: a second "alg" that some parsers read and others ignore.
    header = b'{"alg":"none","kid":"hs","alg":"HS256"}'
    refused(hs_codec, signed(hs_key, header, good_claims()), MalformedToken)
    body = json.dumps(good_claims()).encode()[:-1] + b',"sub":"admin"}'
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": "hs"}, body), MalformedToken)
    nested = json.dumps(good_claims(ctx={"role": "user"})).encode().replace(
        b'"role": "user"', b'"role":"user","role":"admin"'
    )
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": "hs"}, nested), MalformedToken)


@pytest.mark.usefixtures("json_path")
@pytest.mark.parametrize("depth", [33, 200, 3000])
def test_deep_nesting(hs_codec: JWTCodec, hs_key: Key, depth: int) -> None:
    deep = json.dumps(good_claims()).encode()[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": "hs"}, deep), MalformedToken)
    header = b'{"alg":"HS256","kid":"hs","x":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    refused(hs_codec, signed(hs_key, header, good_claims()), MalformedToken)


@pytest.mark.usefixtures("json_path")
@pytest.mark.parametrize(
    "bad",
    [b'{"sub":"\xff"}', b'{"sub":"\xc3"}', b'{"sub":"\xed\xa0\x80"}', b"\xff\xfe{\x00}\x00"],
)
def test_non_utf8(hs_codec: JWTCodec, hs_key: Key, bad: bytes) -> None:
    refused(hs_codec, signed(hs_key, {"alg": "HS256", "kid": "hs"}, bad), MalformedToken)
    header = bad.replace(b'"sub"', b'"alg":"HS256","kid":"hs","x"')
    refused(hs_codec, signed(hs_key, header, good_claims()), MalformedToken)


@pytest.mark.parametrize(
    "token",
    [None, 123, b"\xff", "", ".", "..", "...", "a.b", "a.b.c.d", "é.é.é", "x" * 9000, "\x00.\x00."],
)
def test_garbage_tokens(hs_codec: JWTCodec, token: object) -> None:
    refused(hs_codec, token, MalformedToken)


def test_leeway_bound_is_exact(hs_codec: JWTCodec, frozen: FrozenClock) -> None:
    token = hs_codec.encode({"sub": "alice"}, ttl=60)
    frozen.advance(69.5)
    assert hs_codec.decode(token)["sub"] == "alice"
    frozen.advance(0.5)
    refused(hs_codec, token, ExpiredToken)


def test_leeway_policy(hs_key: Key, frozen: FrozenClock) -> None:
    strict = JWTCodec(hs_key, policy=ClaimsPolicy(leeway=timedelta(0)), clock=frozen)
    refused(strict, strict.encode({"nbf": NOW + 1}), ImmatureToken)
