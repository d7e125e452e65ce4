"""Encrypted JWTs (compact JWE, RFC 7516) through joserfc.

Key management ``dir`` (a shared 32- or 64-byte key), ``ECDH-ES`` (P-256) or
``RSA-OAEP-256``; content encryption ``A256GCM`` (default) or ``A256CBC-HS512``. The
protected header is vetted here with the same strict parser as JWS before joserfc
sees the token; compression (``zip``) is refused, so a small token cannot inflate.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from joserfc import jwe
from joserfc.jwk import OctKey

from ..clock import Clock, SystemClock
from ..errors import (
    ConfigurationError,
    DecryptionFailed,
    InputError,
    MalformedToken,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from ..policies import ClaimsPolicy
from ._codec import MAX_TOKEN_BYTES, b64url_decode, loads_object
from .claims import validate_claims
from .jws import MAX_HEADER_BYTES, REFUSED_HEADERS
from .jwt import _token_payload
from .keys import Key, KeyRing

__all__ = ["CONTENT_ENCRYPTIONS", "decrypt_jwt", "encrypt_jwt"]

#: Content-encryption algorithms and their key sizes in bytes (RFC 7518 §5.1).
CONTENT_ENCRYPTIONS = {"A256GCM": 32, "A256CBC-HS512": 64}
_REFUSED = REFUSED_HEADERS | {"zip"}


def _dir_fits(key: Key, enc: str) -> bool:
    jwk = key.jose_key
    return isinstance(jwk, OctKey) and len(jwk.raw_value) == CONTENT_ENCRYPTIONS[enc]


def encrypt_jwt(
    claims: Mapping[str, Any],
    keys: KeyRing | Key | Sequence[Key],
    *,
    enc: str = "A256GCM",
    ttl: float | None = None,
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008 - frozen
    clock: Clock = SystemClock(),  # noqa: B008 - stateless
) -> str:
    """An encrypted JWT of ``claims`` plus ``iat``, ``exp``, ``jti`` and the policy's
    ``iss``/``aud``, for the ring's newest JWE key.

    :raises ConfigurationError: no JWE key, an unknown ``enc``, or a ``dir`` key whose
        size does not fit ``enc``.
    :raises InputError: claims that are not JSON-serialisable.
    """
    key = KeyRing.coerce(keys).signing_key(encryption=True)
    if enc not in CONTENT_ENCRYPTIONS:
        raise ConfigurationError(f"unsupported content encryption {enc!r}")
    if key.alg == "dir" and not _dir_fits(key, enc):
        raise ConfigurationError(f"a 'dir' key for {enc} must be {CONTENT_ENCRYPTIONS[enc]} bytes")
    ttl_seconds = policy.ttl.total_seconds() if ttl is None else ttl
    body = _token_payload(claims, policy, int(clock.now()), ttl_seconds)
    header = {"alg": key.alg, "enc": enc, "kid": key.kid, "typ": "JWT"}
    token = jwe.encrypt_compact(header, body, key.jose_key, algorithms=[key.alg, enc])
    if len(token) > MAX_TOKEN_BYTES:
        raise InputError(f"the token would exceed {MAX_TOKEN_BYTES} bytes")
    return token


def _select_key(ring: KeyRing, header: Mapping[str, Any], encs: Collection[str]) -> Key:
    alg, enc, kid = header.get("alg"), header.get("enc"), header.get("kid")
    if type(alg) is not str or type(enc) is not str:
        raise MalformedToken("the header needs 'alg' and 'enc' strings")
    if enc not in encs:
        raise UnsupportedAlgorithm("content encryption not allowed")
    if kid is None:
        candidates = [k for k in ring if k.alg == alg and k.is_encryption]
        if not candidates:
            raise UnsupportedAlgorithm("algorithm not allowed")
        if len(candidates) > 1:
            raise UnknownKey("no kid and no single key for this algorithm")
        key = candidates[0]
    elif type(kid) is not str:
        raise MalformedToken("'kid' must be a string")
    else:
        found = ring.get(kid)
        if found is None:
            raise UnknownKey("no key with this kid")
        key = found
    if not key.is_encryption or key.alg != alg:
        raise UnsupportedAlgorithm("the algorithm is not the one this key is bound to")
    return key


def decrypt_jwt(
    token: str,
    keys: KeyRing | Key | Sequence[Key],
    *,
    encryptions: Collection[str] = ("A256GCM", "A256CBC-HS512"),
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008 - frozen
    clock: Clock = SystemClock(),  # noqa: B008 - stateless
) -> dict[str, Any]:
    """The verified claims of an encrypted JWT.

    :raises MalformedToken: size, segments, base64url or JSON.
    :raises UnsupportedHeader: ``zip``, ``crit``, ``jku``, ``jwk`` and the like.
    :raises UnsupportedAlgorithm: an algorithm not allowed or not the key's.
    :raises UnknownKey: no key for the ``kid``.
    :raises DecryptionFailed: the token does not decrypt with the key.
    :raises ClaimError: a claim check failed (see :func:`validate_claims`).
    """
    ring = KeyRing.coerce(keys)
    if not isinstance(token, str):
        raise MalformedToken("a token is text")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedToken("a token is ASCII") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise MalformedToken("token too large")
    segments = raw.split(b".")
    if len(segments) != 5:
        raise MalformedToken("a compact JWE has five segments")
    if len(segments[0]) > MAX_HEADER_BYTES:
        raise MalformedToken("header too large")
    header = loads_object(b64url_decode(segments[0]))
    for segment in segments[1:]:
        b64url_decode(segment)
    refused = _REFUSED.intersection(header)
    if refused:
        raise UnsupportedHeader(f"refused header parameter: {', '.join(sorted(refused))}")
    key = _select_key(ring, header, encryptions)
    enc = header["enc"]
    if key.alg == "dir" and not _dir_fits(key, enc):
        raise DecryptionFailed("the key does not fit this content encryption")
    try:
        plaintext = jwe.decrypt_compact(raw, key.jose_key, algorithms=[key.alg, enc]).plaintext
    # joserfc and cryptography raise many types on hostile input (JoseError, ValueError,
    # InvalidTag, binascii.Error); a token that does not decrypt is all they mean here.
    except Exception as exc:
        raise DecryptionFailed("the token does not decrypt with this key") from exc
    if plaintext is None:
        raise DecryptionFailed("the token does not decrypt with this key")
    claims = loads_object(plaintext)
    validate_claims(claims, policy, clock.now())
    return claims
