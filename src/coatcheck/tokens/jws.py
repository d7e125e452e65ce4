"""Compact JWS (RFC 7515 §7.1) signed and verified directly on ``hmac``/``cryptography``.

This is coatcheck's hot path. The signature primitives come from the standard library
and ``cryptography`` (prepared once per :class:`~coatcheck.tokens.keys.Key`); what is
here is the strict framing around them: size limits, canonical base64url, a header
check that binds the token's ``alg`` to the key's, and a small cache of header
segments that already verified, so a repeat header costs one dict lookup (every token
a key signs shares one header, so it hits for any number of users). The module is
differential-tested against joserfc on random and hostile input.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from .._bounded import BoundedCache
from ..errors import (
    ConfigurationError,
    InvalidSignature,
    MalformedToken,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from ._algorithms import refusal
from ._codec import MAX_TOKEN_BYTES, b64url_decode, b64url_encode, dumps, loads_object
from .keys import SIGNING_ALGORITHMS, Key, KeyRing

__all__ = [
    "HEADER_CACHE_SIZE",
    "MAX_HEADER_BYTES",
    "REFUSED_HEADERS",
    "CompactVerifier",
    "VerifiedJWS",
    "check_algorithms",
    "sign_compact",
    "verify_compact",
]

#: Encoded header segments longer than this are refused.
MAX_HEADER_BYTES = 1024
#: Header parameters coatcheck never honours. ``jku``/``x5u`` would make us fetch a key
#: an attacker names, ``jwk``/``x5c`` would let the token carry its own key (RFC 8725
#: §3.10), ``crit`` demands extensions we do not implement (RFC 7515 §4.1.11) and
#: ``b64`` changes what is signed (RFC 7797).
REFUSED_HEADERS = frozenset({"crit", "jku", "x5u", "jwk", "x5c", "b64"})
#: Verified header segments a verifier remembers by default: one per key and header
#: shape in use, so a handful in practice.
HEADER_CACHE_SIZE = 64
# Registered parameters whose value must be a string when present (RFC 7515 §4.1).
_STRING_HEADERS = ("typ", "cty", "x5t", "x5t#S256")


def check_algorithms(algorithms: Collection[str] | None, keys: KeyRing) -> frozenset[str]:
    """The allowed JWS algorithms: those named, or what the ring's keys verify (a key
    for Ed25519 or EdDSA verifies both names, RFC 9864 §2).

    :raises ConfigurationError: for ``none``, an unknown name, or an empty set.
    """
    if algorithms is None:
        allowed = frozenset().union(*(k.jws_algorithms for k in keys))
    else:
        if isinstance(algorithms, str):
            raise ConfigurationError("algorithms is a collection of names, not one string")
        allowed = frozenset(algorithms)
        unknown = allowed - SIGNING_ALGORITHMS
        if unknown:
            # 'none' in any spelling ends up here too (RFC 8725 §3.1).
            reasons = "; ".join(refusal(str(name)) for name in sorted(unknown, key=str))
            raise ConfigurationError(f"unsupported JWS algorithms: {reasons}")
    if not allowed:
        raise ConfigurationError(
            "no JWS algorithm is allowed: name some, or give the ring a key that may verify"
        )
    return allowed


def sign_compact(payload: bytes, key: Key, *, header: Mapping[str, Any] | None = None) -> str:
    """A compact JWS of ``payload`` signed by ``key``; ``alg`` and ``kid`` come from the key.

    :raises ConfigurationError: when the key cannot sign.
    """
    protected = {"alg": key.alg, "kid": key.kid, **(header or {})}
    protected["alg"] = key.alg
    head = b64url_encode(dumps(protected))
    signing_input = head + b"." + b64url_encode(payload)
    return (signing_input + b"." + b64url_encode(key.sign(signing_input))).decode("ascii")


class _HeaderCache(BoundedCache[bytes, tuple[dict[str, Any], Key]]):
    __slots__ = ()


class CompactVerifier:
    """Verifies compact JWS against a ring: the token's ``alg`` must be allowed and equal
    the bound algorithm of the key its ``kid`` names.

    A missing ``kid`` is accepted when exactly one key of the token's algorithm exists.
    ``cache_size`` header segments that verified are remembered with their parsed
    header and key (0 turns this off).

    :raises ConfigurationError: at construction, for bad ``algorithms`` or a negative
        ``cache_size``.
    """

    __slots__ = ("_allowed", "_by_alg", "_cache", "_keys")

    def __init__(
        self,
        keys: KeyRing,
        *,
        algorithms: Collection[str] | None = None,
        cache_size: int = HEADER_CACHE_SIZE,
    ) -> None:
        if cache_size < 0:
            raise ConfigurationError("cache_size must be 0 (off) or more")
        self._keys = keys
        self._allowed = check_algorithms(algorithms, keys)
        by_alg: dict[str, list[Key]] = {}
        for key in keys:
            for name in key.jws_algorithms:
                by_alg.setdefault(name, []).append(key)
        self._by_alg = {alg: tuple(found) for alg, found in by_alg.items()}
        # header segment -> (parsed header, key); filled only after a signature verified,
        # so forged tokens cannot grow or churn it.
        self._cache = _HeaderCache(cache_size) if cache_size else None

    @property
    def algorithms(self) -> frozenset[str]:
        """The allowed algorithms."""
        return self._allowed

    def verify(self, token: str) -> tuple[dict[str, Any], bytes, Key]:
        """Check ``token`` and return its header (shared; do not mutate), payload bytes, key.

        :raises MalformedToken: size, segments, base64url or header JSON.
        :raises UnsupportedHeader: a refused header parameter.
        :raises UnsupportedAlgorithm: an algorithm not allowed or not the key's.
        :raises UnknownKey: no key for the ``kid`` (or several candidates and no kid).
        :raises InvalidSignature: the signature does not verify.
        """
        if type(token) is not str:
            if isinstance(token, bytes | bytearray):
                raw = bytes(token)
            else:
                raise MalformedToken("a token is text")
        else:
            try:
                raw = token.encode("ascii")
            except UnicodeEncodeError:
                raise MalformedToken("a token is ASCII") from None
        if len(raw) > MAX_TOKEN_BYTES:
            raise MalformedToken("token too large")
        # Exactly two dots: the first, the last, and none in between (three short scans
        # instead of counting over the whole token first).
        head_end = raw.find(b".")
        last = raw.rfind(b".")
        if head_end == last or raw.find(b".", head_end + 1, last) >= 0:
            raise MalformedToken("a JWS has three segments")
        head_seg = raw[:head_end]
        cache = self._cache
        cached = None if cache is None else cache._entries.get(head_seg)
        if cached is None:
            header, key = self._resolve(head_seg)
        else:
            header, key = cached
        if not key._verify(raw[:last], b64url_decode(raw[last + 1 :])):
            raise InvalidSignature("signature does not verify")
        if cache is not None:
            if cached is None:
                cache.store(head_seg, (header, key))
            else:
                cache.hits += 1
        return header, b64url_decode(raw[head_end + 1 : last]), key

    def _resolve(self, head_seg: bytes) -> tuple[dict[str, Any], Key]:
        if len(head_seg) > MAX_HEADER_BYTES:
            raise MalformedToken("header too large")
        header = loads_object(b64url_decode(head_seg))
        refused = REFUSED_HEADERS.intersection(header)
        if refused:
            raise UnsupportedHeader(f"refused header parameter: {', '.join(sorted(refused))}")
        for name in _STRING_HEADERS:
            if name in header and type(header[name]) is not str:
                raise MalformedToken(f"'{name}' must be a string")
        alg = header.get("alg")
        if type(alg) is not str:
            raise MalformedToken("the header has no 'alg' string")
        if alg not in self._allowed:
            raise UnsupportedAlgorithm("algorithm not allowed")
        kid = header.get("kid")
        if kid is None:
            candidates = self._by_alg.get(alg, ())
            if len(candidates) != 1:
                raise UnknownKey("no kid and no single key for this algorithm")
            return header, candidates[0]
        if type(kid) is not str:
            raise MalformedToken("'kid' must be a string")
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey("no key with this kid")
        if alg not in key.jws_algorithms:
            if key.can_verify:
                raise UnsupportedAlgorithm("the algorithm is not the one this key is bound to")
            # RFC 7517 §4.2, §4.3: a key for encryption, or whose key_ops leave out
            # 'verify', never checks a signature.
            raise UnsupportedAlgorithm("the key with this kid may not verify signatures")
        return header, key


class VerifiedJWS(NamedTuple):
    """A verified compact JWS: its protected header, its payload bytes and the key."""

    header: dict[str, Any]
    payload: bytes
    key: Key


def verify_compact(
    token: str | bytes,
    keys: KeyRing | Key | Sequence[Key],
    *,
    algorithms: Collection[str] | None = None,
) -> VerifiedJWS:
    """Verify any compact JWS (RFC 7515 §7.1) and return its header and payload bytes.

    The payload need not be JSON: this is the general JOSE verify, next to the JWT
    claim-set path of :class:`~coatcheck.tokens.JWTCodec`. Build a :class:`CompactVerifier`
    once instead when verifying many tokens.

    :raises ConfigurationError: for bad ``algorithms``.
    :raises TokenError: as :meth:`CompactVerifier.verify`.
    """
    header, payload, key = CompactVerifier(KeyRing.coerce(keys), algorithms=algorithms).verify(
        token  # type: ignore[arg-type]
    )
    return VerifiedJWS(dict(header), payload, key)
