"""Published test vectors (tests/tokens/vectors/): RFC 7515 Appendix A, RFC 7520 (the JOSE
Cookbook), RFC 8037 Appendix A and RFC 7638 §3.1, through coatcheck's own JWS verifier,
JWE decrypter and key loading. The RFC texts are public; the files are transcriptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from coatcheck.errors import (
    ConfigurationError,
    InvalidSignature,
    MalformedToken,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from coatcheck.tokens import (
    CompactDecrypter,
    CompactVerifier,
    Key,
    KeyRing,
    decrypt_compact,
    encrypt_compact,
    sign_compact,
    verify_compact,
)
from coatcheck.tokens._codec import b64url_decode, b64url_encode

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


RFC7515 = _load("rfc7515_8037.json")
COOKBOOK_JWS = _load("rfc7520_jws.json")
COOKBOOK_JWE = _load("rfc7520_jwe.json")


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature.encode()))
    raw[-1] ^= 1
    return f"{head}.{payload}.{b64url_encode(bytes(raw)).decode()}"


JWS_CASES = [
    *RFC7515["jws"],
    *({**case, "payload": COOKBOOK_JWS["payload"]} for case in COOKBOOK_JWS["cases"]),
]


@pytest.mark.parametrize("case", JWS_CASES, ids=[c["source"] for c in JWS_CASES])
def test_published_jws_verifies(case: dict[str, Any]) -> None:
    key = Key.from_jwk(case["key"], alg=case["alg"])
    verified = verify_compact(case["compact"], key, algorithms=[case["alg"]])
    assert verified.payload == case["payload"].encode()
    assert verified.header["alg"] == case["alg"]
    # The public half alone verifies too (a verification key set holds only that).
    public_jwk = key.public_jwk()
    if public_jwk is not None:
        public = Key.from_public_jwk(public_jwk, alg=case["alg"])
        assert verify_compact(case["compact"], public).payload == verified.payload
    with pytest.raises(InvalidSignature):
        verify_compact(_tampered(case["compact"]), key)
    if case.get("deterministic"):
        # RSASSA-PKCS1-v1_5, HMAC and Ed25519 are deterministic: signing the same input
        # again gives the published signature, byte for byte.
        head, payload, _ = case["compact"].split(".")
        assert _sign_as_published(key, head, payload) == case["compact"]


def _sign_as_published(key: Key, head: str, payload: str) -> str:
    signature = key.sign(f"{head}.{payload}".encode())
    return f"{head}.{payload}.{b64url_encode(signature).decode()}"


def test_rfc8037_ed25519_is_verified_under_both_names() -> None:
    """RFC 9864: the RFC 8037 token says EdDSA; a key bound to Ed25519 verifies it, and a
    token coatcheck makes with that key says Ed25519."""
    case = next(c for c in RFC7515["jws"] if c["alg"] == "EdDSA")
    key = Key.from_jwk(case["key"], alg="Ed25519")
    assert verify_compact(case["compact"], key).payload == b"Example of Ed25519 signing"
    ours = sign_compact(b"Example of Ed25519 signing", key)
    assert json.loads(b64url_decode(ours.split(".")[0].encode()))["alg"] == "Ed25519"
    with pytest.raises(UnsupportedAlgorithm):  # pinned to the new name only
        CompactVerifier(KeyRing([key]), algorithms=["Ed25519"]).verify(case["compact"])


def test_rfc7515_unsecured_jws_is_refused() -> None:
    key = Key.from_jwk(RFC7515["jws"][0]["key"], alg="HS256")
    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(RFC7515["unsecured"]["compact"], key)
    with pytest.raises(ConfigurationError, match="refused by design"):
        CompactVerifier(KeyRing([key]), algorithms=["none"])


@pytest.mark.parametrize("case", RFC7515["thumbprints"], ids=lambda c: c["source"])
def test_published_thumbprints(case: dict[str, Any]) -> None:
    key = Key.from_jwk(case["key"], alg=case["alg"])
    assert key.thumbprint() == case["expected"]


def test_rfc8037_x25519_key_agreement() -> None:
    vector = RFC7515["x25519"]
    key = Key.from_jwk(vector["recipient"], alg="ECDH-ES")
    assert (key.alg, key.curve, key.kid) == ("ECDH-ES", "X25519", "Bob")
    private = key.jose_key.private_key
    assert isinstance(private, x25519.X25519PrivateKey)
    ephemeral = x25519.X25519PublicKey.from_public_bytes(
        b64url_decode(vector["ephemeral_public"]["x"].encode())
    )
    assert private.exchange(ephemeral).hex() == vector["shared_secret_hex"]
    # And the key round-trips a real ECDH-ES token.
    assert decrypt_compact(encrypt_compact(b"hi", key), key).plaintext == b"hi"


@pytest.mark.parametrize(
    "case", COOKBOOK_JWE["decrypts"], ids=[c["source"] for c in COOKBOOK_JWE["decrypts"]]
)
def test_cookbook_jwe_decrypts(case: dict[str, Any]) -> None:
    key = Key.from_jwk(case["key"], alg=case["alg"])
    decrypted = decrypt_compact(
        case["compact"], key, algorithms=[case["alg"]], encryptions=[case["enc"]]
    )
    assert decrypted.plaintext.decode() == COOKBOOK_JWE["plaintext"]
    assert (decrypted.header["alg"], decrypted.header["enc"]) == (case["alg"], case["enc"])
    assert decrypted.key is key
    # Pinned to other algorithms, the same token is refused before any decryption.
    other = "A256KW" if case["alg"] != "A256KW" else "dir"
    with pytest.raises(UnsupportedAlgorithm):
        CompactDecrypter([key, Key.generate(other)], algorithms=[other]).decrypt(case["compact"])


def test_cookbook_compressed_content() -> None:
    """RFC 7520 §5.9: zip DEF is refused unless turned on, then inflates within its bound."""
    case = COOKBOOK_JWE["compressed"]
    key = Key.from_jwk(case["key"])
    with pytest.raises(UnsupportedHeader):
        decrypt_compact(case["compact"], key)
    decrypted = decrypt_compact(case["compact"], key, allow_zip=True)
    assert decrypted.plaintext.decode() == COOKBOOK_JWE["plaintext"]
    with pytest.raises(MalformedToken, match="inflates to more than 100 bytes"):
        decrypt_compact(case["compact"], key, allow_zip=True, max_decompressed=100)


@pytest.mark.parametrize(
    "case", COOKBOOK_JWE["refused"], ids=[c["source"] for c in COOKBOOK_JWE["refused"]]
)
def test_cookbook_refused_by_design(case: dict[str, Any]) -> None:
    """RSA1_5 (Bleichenbacher) and PBES2 (token-chosen work, passwords) never decrypt."""
    with pytest.raises(ConfigurationError, match="refused by design"):
        Key.generate(case["alg"])
    with pytest.raises(ConfigurationError, match="refused by design"):
        CompactDecrypter(Key.generate("A256KW"), algorithms=[case["alg"]])
    if "key" in case:
        with pytest.raises(ConfigurationError, match="refused by design"):
            Key.from_jwk(case["key"], alg=case["alg"])
        holder = Key.from_jwk(case["key"], alg="RSA-OAEP")  # the §5.1 key, bound to OAEP
    else:
        holder = Key.generate("A256KW")
    with pytest.raises(UnsupportedAlgorithm):
        decrypt_compact(case["compact"], holder)
