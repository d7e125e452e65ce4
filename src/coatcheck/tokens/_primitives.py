"""Signature primitives prepared once per key: ``hmac`` and ``cryptography`` calls only.

Each builder returns ``(sign, verify)`` closures over already-parsed key objects, so the
per-token path does no key handling at all (RFC 7518 §3 for the signature formats).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import ConfigurationError

__all__ = [
    "Signer",
    "Verifier",
    "eddsa_pair",
    "es256_pair",
    "hmac_pair",
    "refuse_signing",
    "rsa_pair",
]

Signer = Callable[[bytes], bytes]
Verifier = Callable[[bytes, bytes], bool]


def refuse_signing() -> Signer:
    def sign(data: bytes) -> bytes:
        raise ConfigurationError("this key holds no private part and cannot sign")

    return sign


_HMAC_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def hmac_pair(secret: bytes, digest: str) -> tuple[Signer, Verifier]:
    # Keyed once (RFC 2104: the padded key hashed into the inner and outer states);
    # each call copies those states instead of keying again, half the cost of a
    # one-shot HMAC on a token-sized message.
    keyed = crypto_hmac.HMAC(secret, _HMAC_HASHES[digest]())
    fresh = keyed.copy
    equal = hmac.compare_digest

    def sign(data: bytes) -> bytes:
        mac = fresh()
        mac.update(data)
        return mac.finalize()

    def verify(data: bytes, signature: bytes) -> bool:
        mac = fresh()
        mac.update(data)
        return equal(mac.finalize(), signature)

    return sign, verify


def es256_pair(
    private: ec.EllipticCurvePrivateKey | None, public: ec.EllipticCurvePublicKey
) -> tuple[Signer, Verifier]:
    scheme = ec.ECDSA(hashes.SHA256())

    def verify(data: bytes, signature: bytes) -> bool:
        # RFC 7518 §3.4: R || S, 32 bytes each. Zero R or S is never valid
        # (CVE-2022-21449 accepted it); refuse before the library sees it.
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not r or not s:
            return False
        try:
            public.verify(encode_dss_signature(r, s), data, scheme)
        except InvalidSignature:
            return False
        return True

    if private is None:
        return refuse_signing(), verify

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(private.sign(data, scheme))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign, verify


def eddsa_pair(
    private: ed25519.Ed25519PrivateKey | None, public: ed25519.Ed25519PublicKey
) -> tuple[Signer, Verifier]:
    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return (private.sign if private is not None else refuse_signing()), verify


def rsa_pair(
    private: rsa.RSAPrivateKey | None, public: rsa.RSAPublicKey, alg: str
) -> tuple[Signer, Verifier]:
    scheme: padding.AsymmetricPadding
    if alg == "PS256":
        # RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash.
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        scheme = padding.PKCS1v15()
    digest = hashes.SHA256()
    size = (public.key_size + 7) // 8

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            public.verify(signature, data, scheme, digest)
        except (InvalidSignature, ValueError):
            return False
        return True

    if private is None:
        return refuse_signing(), verify

    def sign(data: bytes) -> bytes:
        return private.sign(data, scheme, digest)

    return sign, verify
