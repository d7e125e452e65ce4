"""Hand-written JWT floors: the least work a complete check can do, on stdlib/cryptography.

These are the yardsticks ("the floor measured in the same run"), not code to ship: they
check everything a real verify checks (3 segments, header alg, signature with a
constant-time compare, exp/nbf/iat with leeway, iss, aud, the required claims) and skip
nothing, but do no more. The signature work is always the standard library's ``hmac`` or
the ``cryptography`` primitive; nothing here implements a MAC or a signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = ["FloorError", "JWTFloor", "verify_hs256_bearer"]

_ES256 = ec.ECDSA(hashes.SHA256())
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512,
}
Pair = tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]


class FloorError(Exception):
    """The floor refused a token."""


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class JWTFloor:
    """A complete compact-JWS verify and sign for one algorithm and one key.

    ``key`` is the HMAC secret (bytes) for HS256, or a ``cryptography`` private key for
    ES256 / EdDSA (its public half verifies).
    """

    def __init__(
        self,
        alg: str,
        key: bytes | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        kid: str,
        leeway: float = 10.0,
        ttl: float = 900.0,
        require: tuple[str, ...] = ("exp", "iat", "jti"),
    ) -> None:
        self.alg = alg
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.ttl = ttl
        self.require = require
        self._other: Pair | None = None
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        self._header_b64 = _b64e(json.dumps(header, separators=(",", ":")).encode())
        if alg == "HS256":
            if not isinstance(key, bytes):
                raise TypeError("HS256 needs a bytes secret")
            self._secret = key
        elif alg == "ES256":
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise TypeError("ES256 needs an EC private key")
            self._ec_private = key
            self._ec_public = key.public_key()
        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PrivateKey):
                raise TypeError("EdDSA needs an Ed25519 private key")
            self._ed_private = key
            self._ed_public = key.public_key()
        else:
            self._other = _other_pair(alg, key)

    # -- signature primitives -------------------------------------------------------
    def _check_signature(self, signing_input: bytes, signature: bytes) -> None:
        if self._other is not None:
            self._other[1](signing_input, signature)
            return
        alg = self.alg
        if alg == "HS256":
            mac = hmac.new(self._secret, signing_input, hashlib.sha256).digest()
            if not hmac.compare_digest(mac, signature):
                raise FloorError("bad signature")
            return
        try:
            if alg == "ES256":
                if len(signature) != 64:
                    raise FloorError("bad signature length")
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                self._ec_public.verify(der, signing_input, _ES256)
            else:
                self._ed_public.verify(signature, signing_input)
        except InvalidSignature as exc:
            raise FloorError("bad signature") from exc

    def _sign(self, signing_input: bytes) -> bytes:
        if self._other is not None:
            return self._other[0](signing_input)
        alg = self.alg
        if alg == "HS256":
            return hmac.new(self._secret, signing_input, hashlib.sha256).digest()
        if alg == "ES256":
            r, s = decode_dss_signature(self._ec_private.sign(signing_input, _ES256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self._ed_private.sign(signing_input)

    # -- the two operations ---------------------------------------------------------
    def verify(self, token: str) -> dict[str, Any]:
        """Every check of a real verify; raises FloorError (or ValueError) on refusal."""
        parts = token.split(".")
        if len(parts) != 3:
            raise FloorError("not three segments")
        h, p, s = parts
        header = json.loads(_b64d(h))
        if not isinstance(header, dict) or header.get("alg") != self.alg or "crit" in header:
            raise FloorError("bad header")
        self._check_signature(f"{h}.{p}".encode("ascii"), _b64d(s))
        claims = json.loads(_b64d(p))
        if not isinstance(claims, dict):
            raise FloorError("claims are not an object")
        for name in self.require:
            if name not in claims:
                raise FloorError(f"missing {name}")
        now = time.time()
        leeway = self.leeway
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or now >= exp + leeway):
            raise FloorError("expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or now < nbf - leeway):
            raise FloorError("not yet valid")
        iat = claims.get("iat")
        if iat is not None and (not isinstance(iat, int | float) or now < iat - leeway):
            raise FloorError("issued in the future")
        if claims.get("iss") != self.issuer:
            raise FloorError("issuer")
        aud = claims.get("aud")
        if aud != self.audience and not (isinstance(aud, list) and self.audience in aud):
            raise FloorError("audience")
        return claims

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The same work as a codec's encode: add iss/aud/iat/exp/jti, serialise, sign."""
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + int(self.ttl),
            "jti": secrets.token_urlsafe(16),
        }
        body = _b64e(json.dumps(payload, separators=(",", ":")).encode())
        signing_input = f"{self._header_b64}.{body}"
        return f"{signing_input}.{_b64e(self._sign(signing_input.encode('ascii')))}"


def _other_pair(alg: str, key: Any) -> Pair:
    """Sign and verify for the other JWS algorithms (issue 11): the same direct calls,
    ``hmac`` or one ``cryptography`` verify, that a hand-written check makes."""
    family, bits = alg[:2], alg[2:]
    if family == "HS" and isinstance(key, bytes):
        digest = getattr(hashlib, f"sha{bits}")

        def hs_verify(data: bytes, signature: bytes) -> None:
            if not hmac.compare_digest(hmac.new(key, data, digest).digest(), signature):
                raise FloorError("bad signature")

        return (lambda data: hmac.new(key, data, digest).digest()), hs_verify
    if family in ("RS", "PS") and isinstance(key, rsa.RSAPrivateKey):
        algorithm = _HASHES[bits]()
        scheme: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(algorithm), algorithm.digest_size)
            if family == "PS" else padding.PKCS1v15()
        )
        public = key.public_key()

        def rsa_verify(data: bytes, signature: bytes) -> None:
            try:
                public.verify(signature, data, scheme, algorithm)
            except InvalidSignature as exc:
                raise FloorError("bad signature") from exc

        return (lambda data: key.sign(data, scheme, algorithm)), rsa_verify
    if family == "ES" and isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(_HASHES[bits]())
        half = (key.curve.key_size + 7) // 8
        ec_public = key.public_key()

        def es_verify(data: bytes, signature: bytes) -> None:
            if len(signature) != 2 * half:
                raise FloorError("bad signature length")
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            try:
                ec_public.verify(der, data, ecdsa)
            except InvalidSignature as exc:
                raise FloorError("bad signature") from exc

        def es_sign(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ecdsa))
            return r.to_bytes(half, "big") + s.to_bytes(half, "big")

        return es_sign, es_verify
    if alg in ("Ed25519", "Ed448") and isinstance(
        key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ):
        ed_public = key.public_key()

        def ed_verify(data: bytes, signature: bytes) -> None:
            try:
                ed_public.verify(signature, data)
            except InvalidSignature as exc:
                raise FloorError("bad signature") from exc

        return key.sign, ed_verify
    raise ValueError(f"no floor for {alg} with a {type(key).__name__}")


def verify_hs256_bearer(floor: JWTFloor, token: str) -> dict[str, Any] | None:
    """The floor as a request check would use it: None instead of an exception."""
    try:
        return floor.verify(token)
    except (FloorError, ValueError, UnicodeError):
        return None
