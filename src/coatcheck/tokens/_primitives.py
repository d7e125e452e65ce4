"""Signature primitives prepared once per key: ``hmac`` and ``cryptography`` calls only.

Each builder returns ``(sign, verify)`` closures over already-parsed key objects, so the
per-token path does no key handling at all (RFC 7518 §3 for the signature formats,
RFC 8037 §3.1 and RFC 9864 §2 for EdDSA).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import ConfigurationError

__all__ = [
    "Signer",
    "Verifier",
    "ecdsa_pair",
    "eddsa_pair",
    "hmac_pair",
    "refuse_signing",
    "refuse_verifying",
    "rsa_pair",
]

Signer = Callable[[bytes], bytes]
Verifier = Callable[[bytes, bytes], bool]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# Immutable, so shared: a key made per request (a DPoP proof's) does not build its own.
_ECDSA = {name: ec.ECDSA(algorithm()) for name, algorithm in _HASHES.items()}


def refuse_signing(reason: str = "this key holds no private part and cannot sign") -> Signer:
    def sign(data: bytes) -> bytes:
        raise ConfigurationError(reason)

    return sign


def refuse_verifying() -> Verifier:
    def verify(data: bytes, signature: bytes) -> bool:
        return False

    return verify


def hmac_pair(secret: bytes, digest: str) -> tuple[Signer, Verifier]:
    # Keyed once (RFC 2104: the padded key hashed into the inner and outer states);
    # each call copies those states instead of keying again, half the cost of a
    # one-shot HMAC on a token-sized message.
    keyed = crypto_hmac.HMAC(secret, _HASHES[digest]())
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


def ecdsa_pair(
    private: ec.EllipticCurvePrivateKey | None, public: ec.EllipticCurvePublicKey, digest: str
) -> tuple[Signer, Verifier]:
    scheme = _ECDSA[digest]
    # RFC 7518 §3.4: R || S, each the size of the curve order (32, 48, 66 bytes).
    half = (public.curve.key_size + 7) // 8
    whole = 2 * half

    def verify(data: bytes, signature: bytes) -> bool:
        # Zero R or S is never valid (CVE-2022-21449 accepted it); refuse before the
        # library sees it.
        if len(signature) != whole:
            return False
        r = int.from_bytes(signature[:half], "big")
        s = int.from_bytes(signature[half:], "big")
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
        return r.to_bytes(half, "big") + s.to_bytes(half, "big")

    return sign, verify


def eddsa_pair(
    private: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | None,
    public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey,
) -> tuple[Signer, Verifier]:
    # RFC 8032 §5.1.6 / §5.2.6: 64-byte Ed25519 and 114-byte Ed448 signatures.
    size = 64 if isinstance(public, ed25519.Ed25519PublicKey) else 114
    check = public.verify

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            check(signature, data)
        except InvalidSignature:
            return False
        return True

    return (private.sign if private is not None else refuse_signing()), verify


def rsa_pair(
    private: rsa.RSAPrivateKey | None, public: rsa.RSAPublicKey, digest: str, *, pss: bool
) -> tuple[Signer, Verifier]:
    algorithm = _HASHES[digest]()
    scheme: padding.AsymmetricPadding
    if pss:
        # RFC 7518 §3.5: MGF1 with the same hash and a salt as long as the hash.
        scheme = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    else:
        scheme = padding.PKCS1v15()
    size = (public.key_size + 7) // 8

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            public.verify(signature, data, scheme, algorithm)
        except (InvalidSignature, ValueError):
            return False
        return True

    if private is None:
        return refuse_signing(), verify

    def sign(data: bytes) -> bytes:
        return private.sign(data, scheme, algorithm)

    return sign, verify
