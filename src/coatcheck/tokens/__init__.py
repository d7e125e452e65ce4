"""JWT issue and verify, keys and key rings, JWKS, JWE, and general compact JOSE.

Signing and verifying run directly on ``hmac``/``cryptography`` primitives for every JWS
algorithm of RFC 7518 and RFC 8037 / RFC 9864; joserfc handles JWK import/export,
thumbprints and JWE. :func:`verify_compact` and :func:`decrypt_compact` return the bytes
of any compact JWS or JWE, next to the JWT claim-set paths.
"""

from __future__ import annotations

from .claims import validate_claims
from .jwe import (
    CONTENT_ENCRYPTIONS,
    CompactDecrypter,
    DecryptedJWE,
    decrypt_compact,
    decrypt_jwt,
    encrypt_compact,
    encrypt_jwt,
)
from .jws import CompactVerifier, VerifiedJWS, sign_compact, verify_compact
from .jwt import (
    DecodedToken,
    JWTCodec,
    decode_jwt,
    encode_jwt,
    new_jti,
    unverified_header,
    unverified_parts,
)
from .keys import ENCRYPTION_ALGORITHMS, SIGNING_ALGORITHMS, Key, KeyRing, load_keys

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "CompactDecrypter",
    "CompactVerifier",
    "DecodedToken",
    "DecryptedJWE",
    "JWTCodec",
    "Key",
    "KeyRing",
    "VerifiedJWS",
    "decode_jwt",
    "decrypt_compact",
    "decrypt_jwt",
    "encode_jwt",
    "encrypt_compact",
    "encrypt_jwt",
    "load_keys",
    "new_jti",
    "sign_compact",
    "unverified_header",
    "unverified_parts",
    "validate_claims",
    "verify_compact",
]
