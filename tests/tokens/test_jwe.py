"""Encrypted JWTs: round trips, refusals, interop with joserfc."""

from __future__ import annotations

import json
import warnings
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwe
from joserfc.jwa import JWEZipModel
from joserfc.jwe import JWERegistry
from joserfc.jwk import OctKey

from coatcheck.clock import FrozenClock
from coatcheck.errors import (
    ConfigurationError,
    DecryptionFailed,
    ExpiredToken,
    InvalidEphemeralKey,
    MalformedToken,
    TokenError,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from coatcheck.tokens import (
    CONTENT_ENCRYPTIONS,
    ENCRYPTION_ALGORITHMS,
    CompactDecrypter,
    Key,
    KeyRing,
    decrypt_compact,
    decrypt_jwt,
    encrypt_compact,
    encrypt_jwt,
)
from coatcheck.tokens._codec import b64url_decode

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


# -- issue 11: every JWE algorithm but RSA1_5 and PBES2 ---------------------------------

# Every key-management algorithm on each curve it takes.
_MANAGEMENT = [
    (alg, curve)
    for alg in sorted(ENCRYPTION_ALGORITHMS)
    for curve in (("P-256", "P-384", "P-521", "X25519") if alg.startswith("ECDH") else (None,))
]


@pytest.fixture(scope="module")
def jwe_keys() -> dict[tuple[str, str | None], Key]:
    return {(alg, curve): Key.generate(alg, curve=curve, kid=f"{alg}/{curve}")
            for alg, curve in _MANAGEMENT}


def _fit(key: Key, enc: str) -> Key:
    """A dir key is the content key itself: one of the size ``enc`` takes."""
    if key.alg != "dir":
        return key
    return Key.from_secret(bytes(range(CONTENT_ENCRYPTIONS[enc])), alg="dir", kid=key.kid)


@pytest.mark.parametrize("enc", sorted(CONTENT_ENCRYPTIONS))
@pytest.mark.parametrize(("alg", "curve"), _MANAGEMENT)
def test_every_algorithm_round_trips_with_joserfc(
    jwe_keys: dict[tuple[str, str | None], Key], alg: str, curve: str | None, enc: str
) -> None:
    key = _fit(jwe_keys[(alg, curve)], enc)
    plaintext = b"\x00binary \xff plaintext"
    # coatcheck -> coatcheck, and the public half is enough to encrypt.
    ours = encrypt_compact(plaintext, key, enc=enc, header={"cty": "example"})
    decrypted = decrypt_compact(ours, key)
    assert decrypted.plaintext == plaintext
    assert (decrypted.header["alg"], decrypted.header["enc"]) == (alg, enc)
    assert decrypted.header["cty"] == "example"
    public = key.public_jwk()
    if public is not None:
        sealed = encrypt_compact(plaintext, Key.from_public_jwk(public, alg=alg), enc=enc)
        assert decrypt_compact(sealed, key).plaintext == plaintext
    # coatcheck -> joserfc and joserfc -> coatcheck.
    assert jwe.decrypt_compact(ours, key.jose_key, algorithms=[alg, enc]).plaintext == plaintext
    theirs = jwe.encrypt_compact({"alg": alg, "enc": enc}, plaintext, key.jose_key,
                                 algorithms=[alg, enc])
    assert decrypt_compact(theirs, key).plaintext == plaintext


def test_algorithms_are_pinned(jwe_keys: dict[tuple[str, str | None], Key]) -> None:
    kw, rsa = jwe_keys[("A128KW", None)], jwe_keys[("RSA-OAEP-256", None)]
    token = encrypt_compact(b"x", kw, enc="A128GCM")
    ring = KeyRing([kw, rsa])
    assert CompactDecrypter(ring).algorithms == {"A128KW", "RSA-OAEP-256"}
    with pytest.raises(UnsupportedAlgorithm, match="key-management algorithm not allowed"):
        CompactDecrypter(ring, algorithms=["RSA-OAEP-256"]).decrypt(token)
    with pytest.raises(UnsupportedAlgorithm, match="content encryption not allowed"):
        CompactDecrypter(ring, encryptions=["A256GCM"]).decrypt(token)
    assert CompactDecrypter(ring, encryptions=["A128GCM"]).decrypt(token).plaintext == b"x"
    for bad in (["RSA1_5"], ["PBES2-HS256+A128KW"], ["none"], ["HS256"], "A128KW", []):
        with pytest.raises(ConfigurationError):
            CompactDecrypter(ring, algorithms=bad)
    for bad_enc in (["A128CTR"], "A128GCM", []):
        with pytest.raises(ConfigurationError):
            CompactDecrypter(ring, encryptions=bad_enc)
    with pytest.raises(ConfigurationError, match="refused by design"):
        CompactDecrypter(ring, algorithms=["RSA1_5"])


def test_rsa1_5_and_pbes2_tokens_are_refused(jwe_keys: dict[tuple[str, str | None], Key]) -> None:
    rsa = jwe_keys[("RSA-OAEP", None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns that RSA1_5 is deprecated
        legacy = jwe.encrypt_compact({"alg": "RSA1_5", "enc": "A128GCM", "kid": rsa.kid}, b"x",
                                     rsa.jose_key, algorithms=["RSA1_5", "A128GCM"])
    with pytest.raises(UnsupportedAlgorithm):
        decrypt_compact(legacy, rsa)
    password = jwe.encrypt_compact(
        {"alg": "PBES2-HS256+A128KW", "enc": "A128GCM"}, b"x", OctKey.import_key(b"p" * 16),
        algorithms=["PBES2-HS256+A128KW", "A128GCM"],
    )
    with pytest.raises(UnsupportedAlgorithm):
        decrypt_compact(password, jwe_keys[("A128KW", None)])


def test_a_public_key_cannot_decrypt(jwe_keys: dict[tuple[str, str | None], Key]) -> None:
    key = jwe_keys[("ECDH-ES", "P-384")]
    public_jwk = key.public_jwk()
    assert public_jwk is not None
    public = Key.from_public_jwk(public_jwk, alg="ECDH-ES")
    assert public.can_encrypt
    assert not public.can_decrypt
    token = encrypt_compact(b"x", public)
    with pytest.raises(ConfigurationError, match="can decrypt"):
        decrypt_compact(token, public)
    with pytest.raises(DecryptionFailed, match="cannot decrypt"):
        CompactDecrypter([public, jwe_keys[("A256KW", None)]], algorithms=["ECDH-ES"]).decrypt(
            token
        )


def _with_epk(token: str, epk: object) -> str:
    head, rest = token.split(".", 1)
    header = json.loads(b64url_decode(head.encode()))
    header["epk"] = epk
    return f"{b64(json.dumps(header).encode())}.{rest}"


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_ecdh_refuses_points_off_the_curve(
    jwe_keys: dict[tuple[str, str | None], Key], curve: str
) -> None:
    """The invalid-curve attack: an ephemeral point on a weak curve leaks the private key a
    few bits per token. The epk must be a public key on the recipient key's own curve."""
    key = jwe_keys[("ECDH-ES+A128KW", curve)]
    token = encrypt_compact(b"x", key)
    epk = json.loads(b64url_decode(token.split(".")[0].encode()))["epk"]
    y = bytearray(b64url_decode(epk["y"].encode()))
    y[-1] ^= 1
    other_curve = "P-384" if curve != "P-384" else "P-256"
    other = json.loads(b64url_decode(
        encrypt_compact(b"x", jwe_keys[("ECDH-ES+A128KW", other_curve)]).split(".")[0].encode()
    ))["epk"]
    hostile: list[object] = [
        {**epk, "y": b64(bytes(y))},  # off the curve
        {**epk, "x": b64(bytes(len(y))), "y": b64(bytes(len(y)))},  # (0, 0)
        other,  # a point on another curve
        {**epk, "crv": other_curve},  # the same point, claiming another curve
        {**epk, "kty": "OKP"},
        {**epk, "d": epk["x"]},  # private material
        {**epk, "x": epk["x"] + "AA"},  # wrong size
        "not an object",
        None,
    ]
    for bad in hostile:
        with pytest.raises(InvalidEphemeralKey):
            decrypt_compact(_with_epk(token, bad), key)
    assert decrypt_compact(token, key).plaintext == b"x"


# RFC 7748 §6.1 / Bernstein's list: X25519 points of small order (u = 0, 1, and the
# order-8 points), and u = p - 1, p, p + 1 which reduce to them.
_P25519 = 2**255 - 19
_LOW_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P25519 - 1,
    _P25519,
    _P25519 + 1,
]


@pytest.mark.parametrize("u", _LOW_ORDER_U)
def test_ecdh_x25519_refuses_low_order_points(
    jwe_keys: dict[tuple[str, str | None], Key], u: int
) -> None:
    key = jwe_keys[("ECDH-ES", "X25519")]
    token = encrypt_compact(b"x", key)
    epk = {"kty": "OKP", "crv": "X25519", "x": b64(u.to_bytes(32, "little"))}
    with pytest.raises(InvalidEphemeralKey, match="invalid-curve"):
        decrypt_compact(_with_epk(token, epk), key)


def test_zip_is_refused_unless_turned_on_then_bounded(
    jwe_keys: dict[tuple[str, str | None], Key],
) -> None:
    key = jwe_keys[("A256KW", None)]
    small = jwe.encrypt_compact({"alg": "A256KW", "enc": "A256GCM", "zip": "DEF"}, b"a" * 1000,
                                key.jose_key, algorithms=["A256KW", "A256GCM", "DEF"])
    with pytest.raises(UnsupportedHeader, match="zip"):
        decrypt_compact(small, key)
    assert decrypt_compact(small, key, allow_zip=True).plaintext == b"a" * 1000
    with pytest.raises(MalformedToken, match="inflates to more than 999 bytes"):
        decrypt_compact(small, key, allow_zip=True, max_decompressed=999)
    # A deflate bomb: 5 MB of zeros in a token under the size limit.
    bomb_body = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = bomb_body.compress(bytes(5_000_000)) + bomb_body.flush()
    assert len(deflated) < 5000
    bomb = jwe.encrypt_compact({"alg": "A256KW", "enc": "A256GCM"}, deflated, key.jose_key,
                               algorithms=["A256KW", "A256GCM"])
    bomb = _rewrite_header(bomb, key, {"zip": "DEF"}, deflated)
    with pytest.raises(MalformedToken, match="inflates to more than 65536 bytes"):
        decrypt_compact(bomb, key, allow_zip=True)
    with pytest.raises(UnsupportedHeader):
        decrypt_compact(bomb, key)
    head, rest = small.split(".", 1)
    for other in ("GZIP", "def", 1, None):
        header = {**json.loads(b64url_decode(head.encode())), "zip": other}
        spliced = f"{b64(json.dumps(header).encode())}.{rest}"  # refused before decrypting
        with pytest.raises(UnsupportedHeader):
            decrypt_compact(spliced, key, allow_zip=True)
    with pytest.raises(ConfigurationError, match="zip"):
        encrypt_compact(b"x", key, header={"zip": "DEF"})  # coatcheck never compresses


def _rewrite_header(token: str, key: Key, extra: dict[str, object], body: bytes) -> str:
    """A genuine token for ``body`` whose protected header carries ``extra`` (the header is
    authenticated, so the token is made afresh with it)."""
    header = {"alg": key.alg, "enc": "A256GCM", **extra}
    registry = JWERegistry(algorithms=[key.alg, "A256GCM"], strict_check_header=False)
    registry.get_zip = lambda name: _Raw()  # type: ignore[method-assign]
    return str(jwe.encrypt_compact(header, body, key.jose_key, registry=registry))


class _Raw(JWEZipModel):
    """Puts bytes that are already DEFLATE into a token as they are."""

    name = "DEF"
    description = "already deflated"

    def compress(self, s: bytes) -> bytes:
        return s

    def decompress(self, s: bytes) -> bytes:  # pragma: no cover - only used to encrypt
        return s


def test_malformed_deflate_is_refused(jwe_keys: dict[tuple[str, str | None], Key]) -> None:
    key = jwe_keys[("A256KW", None)]
    for body in (b"not deflate at all", zlib.compress(b"zlib wrapper, not raw")[:-1],
                 _deflate(b"x") + b"trailing"):
        token = _rewrite_header("", key, {"zip": "DEF"}, body)
        with pytest.raises(MalformedToken):
            decrypt_compact(token, key, allow_zip=True)


def _deflate(data: bytes) -> bytes:
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(data) + raw.flush()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_hostile_jwe_only_raises_token_errors(
    jwe_keys: dict[tuple[str, str | None], Key], data: st.DataObject
) -> None:
    alg, curve = data.draw(st.sampled_from(_MANAGEMENT))
    key = _fit(jwe_keys[(alg, curve)], "A256GCM")
    token = encrypt_compact(b"{}", key)
    segments = token.split(".")
    index = data.draw(st.integers(0, 4))
    kind = data.draw(st.sampled_from(["flip", "header", "drop"]))
    if kind == "flip" and segments[index]:
        position = data.draw(st.integers(0, len(segments[index]) - 1))
        char = data.draw(st.sampled_from("AB_-x0="))
        segments[index] = segments[index][:position] + char + segments[index][position + 1:]
    elif kind == "header":
        header = json.loads(b64url_decode(segments[0].encode()))
        header[data.draw(st.sampled_from(["epk", "iv", "tag", "apu", "enc", "alg", "kid"]))] = (
            data.draw(st.one_of(st.none(), st.integers(), st.text(max_size=8),
                                st.dictionaries(st.text(max_size=3), st.text(max_size=8))))
        )
        segments[0] = b64(json.dumps(header).encode())
    else:
        segments[index] = ""
    mutated = ".".join(segments)
    try:
        result = decrypt_compact(mutated, key, allow_zip=data.draw(st.booleans()))
    except TokenError:
        return
    assert mutated == token or result.plaintext == b"{}"
