"""Every JOSE algorithm coatcheck supports, both ways with Node's jose (issue 11).

Compact JWS of every algorithm jose has (HS*, RS*, PS*, ES256/384/512, EdDSA, Ed25519)
and compact JWE of every key-management algorithm, curve and content encryption: coatcheck
makes, jose reads; jose makes, coatcheck reads; a tampered token is refused on each side.
jose has no Ed448, so Ed448 runs against Node's own ``crypto`` (raw RFC 8032 signatures).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from coatcheck.errors import InvalidSignature, UnsupportedHeader
from coatcheck.tokens import (
    CONTENT_ENCRYPTIONS,
    ENCRYPTION_ALGORITHMS,
    SIGNING_ALGORITHMS,
    Key,
    KeyRing,
    decrypt_compact,
    encrypt_compact,
    sign_compact,
    verify_compact,
)
from coatcheck.tokens._codec import b64url_decode, b64url_encode

from .conftest import NodeRunner, ok

JOSE_JWS = sorted(SIGNING_ALGORITHMS - {"Ed448"})
JOSE_JWE = [
    (alg, curve)
    for alg in sorted(ENCRYPTION_ALGORITHMS)
    for curve in (("P-256", "P-384", "P-521", "X25519") if alg.startswith("ECDH") else (None,))
]
PAYLOAD = "a payload that is not JSON \u2013 made by {}".encode()


def _b64(data: bytes) -> str:
    return b64url_encode(data).decode()


def _flip(token: str) -> str:
    head, _, signature = token.rpartition(".")
    raw = bytearray(b64url_decode(signature.encode()))
    raw[len(raw) // 2] ^= 1
    return f"{head}.{_b64(bytes(raw))}"


def _jwk(key: Key, *, private: bool) -> dict[str, Any]:
    jwk = key.to_jwk(private=private or key.is_symmetric)
    return {k: v for k, v in jwk.items() if k != "use"}


@pytest.fixture(scope="module")
def jws_keys() -> dict[str, Key]:
    return {alg: Key.generate(alg, kid=f"k-{alg}") for alg in sorted(SIGNING_ALGORITHMS)}


@pytest.fixture(scope="module")
def jwe_keys() -> dict[tuple[str, str | None], Key]:
    return {(alg, curve): Key.generate(alg, curve=curve, kid=f"{alg}-{curve}")
            for alg, curve in JOSE_JWE}


def test_every_jws_algorithm_coatcheck_to_jose(
    node_tokens: NodeRunner, jws_keys: dict[str, Key]
) -> None:
    ops, expected = [], []
    for alg in JOSE_JWS:
        key = jws_keys[alg]
        token = sign_compact(PAYLOAD, key)
        verify = _jwk(key, private=False)
        ops.append({"op": "jose.verifyCompact", "token": token, "jwk": verify, "algorithms": [alg]})
        ops.append({"op": "jose.verifyCompact", "token": _flip(token), "jwk": verify,
                    "algorithms": [alg]})
        expected.append(alg)
    results = node_tokens(*ops)
    for alg, good, bad in zip(expected, results[::2], results[1::2], strict=True):
        assert b64url_decode(ok(good)["payload"].encode()) == PAYLOAD, alg
        assert ok(good)["header"] == {"alg": alg, "kid": f"k-{alg}"}
        assert "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" in bad["error"], alg


def test_every_jws_algorithm_jose_to_coatcheck(
    node_tokens: NodeRunner, jws_keys: dict[str, Key]
) -> None:
    ops = [{"op": "jose.signCompact", "payload": _b64(PAYLOAD), "alg": alg, "kid": f"k-{alg}",
            "jwk": _jwk(jws_keys[alg], private=True)} for alg in JOSE_JWS]
    for alg, result in zip(JOSE_JWS, node_tokens(*ops), strict=True):
        token = ok(result)
        key = jws_keys[alg]
        verifier = key if key.is_symmetric else Key.from_public_jwk(key.public_jwk() or {}, alg=alg)
        verified = verify_compact(token, verifier, algorithms=[alg])
        assert verified.payload == PAYLOAD
        with pytest.raises(InvalidSignature):
            verify_compact(_flip(token), verifier)


def test_eddsa_tokens_from_jose_verify_with_an_ed25519_key(node_tokens: NodeRunner) -> None:
    """RFC 9864: jose still signs EdDSA by default; coatcheck's Ed25519 key reads it."""
    key = Key.generate("Ed25519", kid="ed")
    jwk = {**_jwk(key, private=True), "alg": "EdDSA"}
    token, = node_tokens({"op": "jose.signCompact", "payload": _b64(b"x"), "alg": "EdDSA",
                          "kid": "ed", "jwk": jwk})
    assert verify_compact(ok(token), key).header["alg"] == "EdDSA"


def test_ed448_both_ways_with_node_crypto(node_tokens: NodeRunner) -> None:
    key = Key.generate("Ed448", kid="ed448")
    token = sign_compact(PAYLOAD, key)
    signing_input, _, signature = token.rpartition(".")
    public, private = _jwk(key, private=False), _jwk(key, private=True)
    theirs_input = f"{_b64(json.dumps({'alg': 'Ed448', 'kid': 'ed448'}).encode())}.{_b64(PAYLOAD)}"
    verified, refused, signed = node_tokens(
        {"op": "node.ed448.verify", "input": signing_input, "signature": signature, "jwk": public},
        {"op": "node.ed448.verify", "input": signing_input + "x", "signature": signature,
         "jwk": public},
        {"op": "node.ed448.sign", "input": theirs_input, "jwk": private},
    )
    assert ok(verified) is True
    assert ok(refused) is False
    assert verify_compact(f"{theirs_input}.{ok(signed)}", key).payload == PAYLOAD


def test_coatcheck_jwks_with_every_algorithm_works_in_jose(
    node_tokens: NodeRunner, jws_keys: dict[str, Key]
) -> None:
    asymmetric = [alg for alg in JOSE_JWS if not jws_keys[alg].is_symmetric]
    ring = KeyRing([jws_keys[alg] for alg in asymmetric])
    results = node_tokens(*(
        {"op": "jose.verifyCompact", "token": sign_compact(alg.encode(), jws_keys[alg]),
         "jwks": ring.jwks(), "algorithms": asymmetric}
        for alg in asymmetric
    ))
    for alg, result in zip(asymmetric, results, strict=True):
        assert b64url_decode(ok(result)["payload"].encode()) == alg.encode()


def _fit(key: Key, enc: str) -> Key:
    if key.alg != "dir":
        return key
    return Key.from_secret(bytes(range(CONTENT_ENCRYPTIONS[enc])), alg="dir", kid=key.kid)


def _jwe_cases(keys: dict[tuple[str, str | None], Key]) -> list[tuple[Key, str]]:
    encs = sorted(CONTENT_ENCRYPTIONS)
    return [(_fit(keys[case], enc), enc) for case in JOSE_JWE for enc in encs]


def test_every_jwe_algorithm_coatcheck_to_jose(
    node_tokens: NodeRunner, jwe_keys: dict[tuple[str, str | None], Key]
) -> None:
    cases = _jwe_cases(jwe_keys)
    ops = []
    for key, enc in cases:
        public = key.public_jwk()
        sender = Key.from_public_jwk(public, alg=key.alg) if public is not None else key
        token = encrypt_compact(PAYLOAD, sender, enc=enc)
        ops.append({"op": "jose.decryptCompact", "token": token, "alg": key.alg, "enc": enc,
                    "jwk": _jwk(key, private=True)})
    for (key, enc), result in zip(cases, node_tokens(*ops), strict=True):
        assert b64url_decode(ok(result)["plaintext"].encode()) == PAYLOAD, (key.alg, enc)
        assert ok(result)["header"]["enc"] == enc


def test_every_jwe_algorithm_jose_to_coatcheck(
    node_tokens: NodeRunner, jwe_keys: dict[tuple[str, str | None], Key]
) -> None:
    cases = _jwe_cases(jwe_keys)
    ops = [{"op": "jose.encryptCompact", "plaintext": _b64(PAYLOAD), "alg": key.alg,
            "enc": enc, "kid": key.kid, "jwk": _jwk(key, private=False)} for key, enc in cases]
    for (key, enc), result in zip(cases, node_tokens(*ops), strict=True):
        decrypted = decrypt_compact(ok(result), key, algorithms=[key.alg], encryptions=[enc])
        assert decrypted.plaintext == PAYLOAD
        assert decrypted.key is key


def test_jose_zip_is_refused_then_read_when_allowed(node_tokens: NodeRunner) -> None:
    key = Key.generate("A256KW", kid="zip")
    token, = node_tokens({"op": "jose.encryptCompact", "plaintext": _b64(b"z" * 5000),
                          "alg": "A256KW", "enc": "A256GCM", "kid": "zip", "zip": "DEF",
                          "jwk": _jwk(key, private=True)})
    with pytest.raises(UnsupportedHeader):
        decrypt_compact(ok(token), key)
    assert decrypt_compact(ok(token), key, allow_zip=True).plaintext == b"z" * 5000
