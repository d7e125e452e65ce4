"""DPoP proofs: every check of RFC 9449 §4.3, its examples, and URI normalisation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest

from coatcheck.errors import ConfigurationError, InvalidDPoPProof, UseDPoPNonce
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import (
    DPoPVerifier,
    access_token_hash,
    make_proof,
    normalize_htu,
)
from coatcheck.tokens.dpop_nonce import DPoPNonces

from .conftest import NOW, b64, forge

URL = "https://api.example.com/api/me"

# RFC 9449 §4.1, figure 3: a proof for POST https://server.example.com/token, and
# (§6.1) the thumbprint of its key.
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgt"
    "MzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VO"
    "SmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRj"
    "IiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0Ijox"
    "NTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJ"
    "K70nfbV37xRZT3Lg"
)
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.fixture(scope="module")
def es256() -> Key:
    return Key.generate("ES256")


def public_members(key: Key) -> dict[str, Any]:
    jwk = key.public_jwk() or {}
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def proof_with(
    key: Key,
    *,
    header: dict[str, Any] | None = None,
    drop_header: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A proof signed by ``key`` with header/claims changed from the good defaults."""
    head: dict[str, Any] = {"typ": "dpop+jwt", "alg": key.alg, "jwk": public_members(key)}
    head.update(header or {})
    for name in drop_header:
        head.pop(name, None)
    body: dict[str, Any] = {"jti": "j-" + b64(NOW.hex().encode()), "htm": "GET", "htu": URL,
                            "iat": int(NOW)}
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    return forge(head, body, key.sign)


def check(proof: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"method": "GET", "url": URL, "now": NOW}
    options.update(kwargs)
    return DPoPVerifier().verify(proof, **options)


# -- the RFC's own example ------------------------------------------------------------------


def test_rfc_9449_example_proof_verifies_with_its_thumbprint() -> None:
    proof = DPoPVerifier().verify(
        RFC_PROOF, method="POST", url="https://server.example.com/token", now=1562262616
    )
    assert proof.jkt == RFC_JKT
    assert (proof.jti, proof.htm, proof.alg) == ("-BwC3ESc6acc2lTc", "POST", "ES256")


def test_rfc_9449_example_proof_refused_elsewhere_and_later() -> None:
    with pytest.raises(InvalidDPoPProof, match="htu"):
        DPoPVerifier().verify(
            RFC_PROOF, method="POST", url="https://server.example.com/other", now=1562262616
        )
    with pytest.raises(InvalidDPoPProof, match="htm"):
        DPoPVerifier().verify(
            RFC_PROOF, method="GET", url="https://server.example.com/token", now=1562262616
        )
    with pytest.raises(InvalidDPoPProof, match="iat"):
        DPoPVerifier().verify(
            RFC_PROOF, method="POST", url="https://server.example.com/token", now=1562262616 + 61
        )


def test_ath_is_rfc_9449_example_hash() -> None:
    # RFC 9449 §7.1: the access token of figure 12 and its ath in figure 13.
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


# -- round trips for every algorithm --------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "Ed25519", "PS256", "RS256"])
def test_made_proofs_verify_for_every_allowed_algorithm(alg: str) -> None:
    key = Key.generate(alg)
    proof = make_proof(key, method="POST", url=URL + "?q=1#f", now=NOW, access_token="tok")
    checked = check(proof, method="POST", access_token="tok")
    assert checked.jkt == key.thumbprint()
    assert checked.alg == alg
    assert checked.htu == URL


def test_jkt_is_the_rfc_7638_thumbprint(es256: Key) -> None:
    members = public_members(es256)
    canonical = json.dumps(
        {k: members[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
    ).encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert check(proof_with(es256)).jkt == expected.decode()


def test_make_proof_refuses_keys_that_cannot_prove() -> None:
    with pytest.raises(ConfigurationError):
        make_proof(Key.generate("HS256"), method="GET", url=URL, now=NOW)
    public = Key.from_jwk(public_members(Key.generate("ES256")), alg="ES256")
    with pytest.raises(ConfigurationError):
        make_proof(public, method="GET", url=URL, now=NOW)


# -- each check of §4.3 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt"]
)
def test_typ_dpop_jwt_in_its_spellings(es256: Key, typ: str) -> None:
    check(proof_with(es256, header={"typ": typ}))


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", "", 1, None])
def test_other_typ_refused(es256: Key, typ: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="typ"):
        check(proof_with(es256, header={"typ": typ}))


def test_missing_typ_refused(es256: Key) -> None:
    with pytest.raises(InvalidDPoPProof, match="typ"):
        check(proof_with(es256, drop_header=("typ",)))


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS512", "ES384", "RS512", "", 7])
def test_none_symmetric_and_unknown_algorithms_refused(es256: Key, alg: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="algorithm"):
        check(proof_with(es256, header={"alg": alg}))


def test_hs256_with_the_public_key_as_secret_is_refused(es256: Key) -> None:
    # Algorithm confusion (RFC 8725 §2.1): HMAC keyed with the JWK's text.
    secret = json.dumps(public_members(es256)).encode()
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": public_members(es256)}
    body = {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW)}
    forged = forge(header, body, lambda d: hmac.new(secret, d, hashlib.sha256).digest())
    with pytest.raises(InvalidDPoPProof):
        check(forged)


def test_algorithm_outside_the_allow_list_refused() -> None:
    key = Key.generate("EdDSA")
    verifier = DPoPVerifier(algorithms=("ES256",))
    with pytest.raises(InvalidDPoPProof, match="algorithm"):
        verifier.verify(make_proof(key, method="GET", url=URL, now=NOW), method="GET", url=URL,
                        now=NOW)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_private_key_in_jwk_refused(es256: Key, member: str) -> None:
    jwk = {**public_members(es256), member: "AAAA"}
    with pytest.raises(InvalidDPoPProof, match="private"):
        check(proof_with(es256, header={"jwk": jwk}))


def test_the_real_private_jwk_refused(es256: Key) -> None:
    private = {k: v for k, v in es256.to_jwk(private=True).items() if k not in ("kid", "use")}
    with pytest.raises(InvalidDPoPProof, match="private"):
        check(proof_with(es256, header={"jwk": private}))


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "a string",
        [],
        {},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": 1, "y": 2},
        {"kty": "oct", "k": "c2VjcmV0"},
    ],
)
def test_malformed_or_mismatched_jwk_refused(es256: Key, jwk: Any) -> None:
    with pytest.raises(InvalidDPoPProof):
        check(proof_with(es256, header={"jwk": jwk}))


def test_point_not_on_the_curve_refused(es256: Key) -> None:
    members = public_members(es256)
    y = bytearray(base64.urlsafe_b64decode(members["y"] + "="))
    y[-1] ^= 1
    off_curve = {**members, "y": b64(bytes(y))}
    with pytest.raises(InvalidDPoPProof, match="not a valid public key"):
        check(proof_with(es256, header={"jwk": off_curve}))


def test_missing_jwk_and_key_references_refused(es256: Key) -> None:
    with pytest.raises(InvalidDPoPProof, match="jwk"):
        check(proof_with(es256, drop_header=("jwk",)))
    for name, value in (("crit", ["exp"]), ("jku", "https://x/"), ("x5u", "https://x/"),
                        ("x5c", ["MII"]), ("b64", False)):
        with pytest.raises(InvalidDPoPProof, match="refused header"):
            check(proof_with(es256, header={name: value}))


def test_signature_by_another_key_refused(es256: Key) -> None:
    other = Key.generate("ES256")
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_members(es256)}
    forged = forge(header, {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW)}, other.sign)
    with pytest.raises(InvalidDPoPProof, match="signature"):
        check(forged)


def test_zero_signature_refused(es256: Key) -> None:
    # CVE-2022-21449: r = s = 0 must never verify.
    good = proof_with(es256)
    with pytest.raises(InvalidDPoPProof, match="signature"):
        check(good.rsplit(".", 1)[0] + "." + b64(bytes(64)))


def test_forged_proofs_do_not_fill_the_header_cache(es256: Key) -> None:
    verifier = DPoPVerifier()
    for i in range(50):
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_members(es256), "n": i}
        forged = forge(header, {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW)},
                       lambda d: bytes(64))
        with pytest.raises(InvalidDPoPProof):
            verifier.verify(forged, method="GET", url=URL, now=NOW)
    assert verifier._cache == {}


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_required_claims(es256: Key, claim: str) -> None:
    with pytest.raises(InvalidDPoPProof, match=claim):
        check(proof_with(es256, drop=(claim,)))


@pytest.mark.parametrize("jti", ["", 5, None, "x" * 257, ["a"]])
def test_bad_jti_refused(es256: Key, jti: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="jti"):
        check(proof_with(es256, jti=jti))


@pytest.mark.parametrize("htm", ["get", "POST", "GET ", 1])
def test_htm_must_be_the_method_exactly(es256: Key, htm: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="htm"):
        check(proof_with(es256, htm=htm))


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/api/me",
        "HTTPS://API.EXAMPLE.COM/api/me",
        "https://api.example.com:443/api/me",
        "https://api.example.com/api/./x/../me",
        "https://api.example.com/%61pi/me",
        "https://api.example.com/api/me?query=ignored#and-fragment",
    ],
)
def test_htu_matches_after_normalisation(es256: Key, htu: str) -> None:
    check(proof_with(es256, htu=htu))


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/api/me/",
        "https://api.example.com/API/me",
        "http://api.example.com/api/me",
        "https://api.example.com:8443/api/me",
        "https://evil.example/api/me",
        "https://user@api.example.com/api/me",
        "https://api.example.com/api%2Fme",
        "/api/me",
        "",
        None,
        42,
    ],
)
def test_htu_for_another_uri_refused(es256: Key, htu: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="htu"):
        check(proof_with(es256, htu=htu))


def test_request_url_that_is_no_uri_refused(es256: Key) -> None:
    with pytest.raises(InvalidDPoPProof, match="URL"):
        check(proof_with(es256), url="not a url")


@pytest.mark.parametrize("offset", [-61, 11, 10**9, -(10**9)])
def test_iat_outside_the_window_refused(es256: Key, offset: int) -> None:
    with pytest.raises(InvalidDPoPProof, match="iat"):
        check(proof_with(es256, iat=int(NOW) + offset))


@pytest.mark.parametrize("offset", [-60, 0, 10])
def test_iat_inside_the_window_accepted(es256: Key, offset: int) -> None:
    check(proof_with(es256, iat=int(NOW) + offset))


@pytest.mark.parametrize("iat", ["1800000000", None, True, [1]])
def test_non_numeric_iat_refused(es256: Key, iat: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="iat"):
        check(proof_with(es256, iat=iat))


def test_infinite_iat_refused(es256: Key) -> None:
    # 1e400 is valid JSON that Python's parser reads as infinity.
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_members(es256)}
    body = b'{"jti":"x","htm":"GET","htu":"' + URL.encode() + b'","iat":1e400}'
    with pytest.raises(InvalidDPoPProof):
        check(forge(header, body, es256.sign))


def test_window_follows_the_policy(es256: Key) -> None:
    verifier = DPoPVerifier(max_age=timedelta(seconds=5), leeway=timedelta(0))
    assert verifier.replay_window == 5
    proof = proof_with(es256, iat=int(NOW) - 6)
    with pytest.raises(InvalidDPoPProof, match="iat"):
        verifier.verify(proof, method="GET", url=URL, now=NOW)


def test_ath_must_hash_the_presented_token(es256: Key) -> None:
    good = proof_with(es256, ath=access_token_hash("the-token"))
    check(good, access_token="the-token")
    with pytest.raises(InvalidDPoPProof, match="ath"):
        check(good, access_token="another-token")
    with pytest.raises(InvalidDPoPProof, match="ath"):
        check(proof_with(es256), access_token="the-token")
    # Without an access token (a token request) ath is not looked at.
    check(good)


def test_nonce_required_when_the_server_uses_them(es256: Key) -> None:
    nonces = DPoPNonces("n" * 32)
    with pytest.raises(UseDPoPNonce) as info:
        check(proof_with(es256), nonces=nonces)
    assert info.value.nonce == nonces.current(NOW)
    assert info.value.code == "use_dpop_nonce"
    checked = check(proof_with(es256, nonce=nonces.current(NOW)), nonces=nonces)
    assert checked.nonce == nonces.current(NOW)
    with pytest.raises(UseDPoPNonce):
        check(proof_with(es256, nonce="made-up-nonce-made-up-nonce-1234"), nonces=nonces)


def test_every_refusal_names_the_algorithms_and_the_nonce(es256: Key) -> None:
    nonces = DPoPNonces("n" * 32)
    with pytest.raises(InvalidDPoPProof) as info:
        check("garbage", nonces=nonces)
    assert info.value.algs == ("ES256", "Ed25519", "EdDSA", "PS256", "RS256")
    assert info.value.nonce == nonces.current(NOW)


@pytest.mark.parametrize(
    "proof",
    [
        "",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        "!!!.e30.AAAA",
        "x" * 5000,
        "é.é.é",
        "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AAAA",
        b64(b"[1]") + ".e30.AAAA",
        b64(b'{"typ":"dpop+jwt","typ":"dpop+jwt"}') + ".e30.AAAA",
        b64(b"[" * 100 + b"]" * 100) + ".e30.AAAA",
        b64(b'{"a":' * 40 + b"1" + b"}" * 40) + ".e30.AAAA",
    ],
)
def test_malformed_proofs_refused_cleanly(proof: str) -> None:
    with pytest.raises(InvalidDPoPProof):
        check(proof)


def test_non_text_proof_refused() -> None:
    with pytest.raises(InvalidDPoPProof):
        check(b"a.b.c")


def test_repeated_dpop_headers_joined_by_the_adapter_are_refused(es256: Key) -> None:
    # RFC 9449 §4.3 (1): not more than one DPoP header; adapters join repeats with ", ".
    one = proof_with(es256)
    with pytest.raises(InvalidDPoPProof, match="one compact JWS"):
        check(one + ", " + one)


def test_rsa_keys_outside_2048_to_4096_bits_refused() -> None:
    key = Key.generate("RS256")
    members = public_members(key)
    n = base64.urlsafe_b64decode(members["n"] + "==")
    for modulus in (n[:128], n * 3):
        jwk = {**members, "n": b64(modulus)}
        with pytest.raises(InvalidDPoPProof):
            check(proof_with(key, header={"jwk": jwk}))
    with pytest.raises(InvalidDPoPProof):
        check(proof_with(key, header={"jwk": {**members, "e": b64(b"\x00\x01\x00\x01")}}))


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [(), ("none",), ("HS256",), ("ES256", "ES384"), "ES256"])
def test_bad_allow_lists_fail_at_start_up(algorithms: Any) -> None:
    with pytest.raises(ConfigurationError):
        DPoPVerifier(algorithms=algorithms)


def test_bad_windows_fail_at_start_up() -> None:
    with pytest.raises(ConfigurationError):
        DPoPVerifier(max_age=timedelta(0))
    with pytest.raises(ConfigurationError):
        DPoPVerifier(leeway=timedelta(seconds=-1))


# -- URI normalisation (RFC 3986 §6.2.2, §6.2.3) ----------------------------------------------


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("https://Example.COM", "https://example.com/"),
        ("HTTP://example.com:80/", "http://example.com/"),
        ("http://example.com:/", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com:08443/a", "https://example.com:8443/a"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/b/..", "https://example.com/a/"),
        ("https://example.com/../../a", "https://example.com/a"),
        ("https://example.com/%7euser/%2f/%3A", "https://example.com/~user/%2F/%3A"),
        ("https://example.com/%41%62", "https://example.com/Ab"),
        ("https://example.com/a?b=c#d", "https://example.com/a"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://[2001:DB8::1]/", "https://[2001:db8::1]/"),
        ("http://127.0.0.1:8000/api/me", "http://127.0.0.1:8000/api/me"),
    ],
)
def test_normalize_htu(uri: str, normal: str) -> None:
    assert normalize_htu(uri) == normal
    assert normalize_htu(normal) == normal


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://example.com/",
        "https:/example.com/",
        "//example.com/",
        "/relative",
        "https://u:p@example.com/",
        "https://example.com:65536/",
        "https://example.com:0/",
        "https://exa mple.com/",
        "https://example.com/a b",
        "https://example.com/é",
        "https://example.com/%zz",
        "https:///path",
        "https://ex<ample.com/",
        "x" * 3000,
        "",
        None,
        b"https://example.com/",
    ],
)
def test_normalize_htu_refuses_what_is_no_http_uri(uri: Any) -> None:
    assert normalize_htu(uri) is None


def test_key_cache_can_be_sized_or_turned_off(es256: Key) -> None:
    off = DPoPVerifier(key_cache=0)
    off.verify(proof_with(es256), method="GET", url=URL, now=NOW)
    assert off._cache == {}
    small = DPoPVerifier(key_cache=2)
    for _ in range(3):
        key = Key.generate("ES256")
        small.verify(proof_with(key), method="GET", url=URL, now=NOW)
    assert len(small._cache) <= 2
    with pytest.raises(ConfigurationError):
        DPoPVerifier(key_cache=-1)
