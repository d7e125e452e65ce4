"""JWT issue and verify, keys and key rings, JWKS and encrypted JWTs.

Signing and verifying run directly on ``hmac``/``cryptography`` primitives for the
algorithms coatcheck issues; joserfc handles JWK import/export, thumbprints and JWE.
"""

from __future__ import annotations

from .claims import validate_claims
from .jwe import decrypt_jwt, encrypt_jwt
from .jws import CompactVerifier, sign_compact
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
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "CompactVerifier",
    "DecodedToken",
    "JWTCodec",
    "Key",
    "KeyRing",
    "decode_jwt",
    "decrypt_jwt",
    "encode_jwt",
    "encrypt_jwt",
    "load_keys",
    "new_jti",
    "sign_compact",
    "unverified_header",
    "unverified_parts",
    "validate_claims",
]
