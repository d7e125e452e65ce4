"""JWT issue and verify (RFC 7519) over the strict compact JWS of :mod:`.jws`."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, InputError, MalformedToken
from ..policies import ClaimsPolicy
from ._codec import MAX_TOKEN_BYTES, b64url_decode, b64url_encode, dumps, loads_object
from .claims import ClaimsCheck
from .jws import HEADER_CACHE_SIZE, CompactVerifier
from .keys import Key, KeyRing

__all__ = [
    "DecodedToken",
    "JWTCodec",
    "decode_jwt",
    "encode_jwt",
    "new_jti",
    "unverified_header",
    "unverified_parts",
]


class DecodedToken(NamedTuple):
    """A verified token: its header, its claims and the key that verified it."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: Key


def new_jti() -> str:
    """A fresh token id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def _token_payload(
    claims: Mapping[str, Any], policy: ClaimsPolicy, now: int, ttl: float
) -> bytes:
    """The JSON body of a new token (JWS or JWE): ``claims`` plus ``iat``, ``exp``
    (``now + ttl``), ``jti`` and the policy's ``iss``/``aud``; claims given win.

    :raises InputError: when the claims are not JSON-serialisable.
    """
    payload = dict(claims)
    payload.setdefault("iat", now)
    if "exp" not in payload:
        payload["exp"] = now + int(ttl)
    if "jti" not in payload:
        payload["jti"] = new_jti()
    if policy.issuer is not None:
        payload.setdefault("iss", policy.issuer)
    if policy.audience is not None:
        payload.setdefault("aud", policy.audience)
    try:
        return dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InputError("claims must be JSON-serialisable with string keys") from exc


class JWTCodec:
    """Issues and verifies JWTs with a key ring, allowed algorithms and a claims policy.

    Signs with the ring's newest JWS key; verifies with any key, binding each token's
    ``alg`` to its key's. Everything that can be prepared is prepared here, once.
    ``header_cache_size`` header segments that verified are remembered (0 turns this
    off; see :class:`~coatcheck.tokens.CompactVerifier`).

    :raises ConfigurationError: for ``none`` or unknown algorithms, an empty ring or a
        negative ``header_cache_size``.
    """

    __slots__ = ("_check", "_clock", "_head", "_policy", "_signer", "_ttl", "_verifier")

    def __init__(
        self,
        keys: KeyRing | Key | Sequence[Key],
        *,
        algorithms: Collection[str] | None = None,
        policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008 - frozen, immutable
        clock: Clock = SystemClock(),  # noqa: B008 - stateless
        header_cache_size: int = HEADER_CACHE_SIZE,
    ) -> None:
        ring = KeyRing.coerce(keys)
        if algorithms is None and not any(key.can_verify for key in ring):
            # An issuer whose keys' key_ops allow only 'sign': it verifies nothing.
            algorithms = [key.alg for key in ring if key.can_sign] or None
        self._verifier = CompactVerifier(
            ring, algorithms=algorithms, cache_size=header_cache_size
        )
        self._policy = policy
        self._check = ClaimsCheck(policy)
        self._clock = clock
        self._ttl = policy.ttl.total_seconds()
        signer: Key | None
        try:
            signer = ring.signing_key()
        except ConfigurationError:
            signer = None
        if signer is not None and not signer.can_sign:
            signer = None
        self._signer = signer
        self._head = (
            b64url_encode(dumps({"alg": signer.alg, "kid": signer.kid, "typ": "JWT"})) + b"."
            if signer is not None
            else b""
        )

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms this codec accepts."""
        return self._verifier.algorithms

    @property
    def policy(self) -> ClaimsPolicy:
        """The claims policy."""
        return self._policy

    def encode(self, claims: Mapping[str, Any], *, ttl: float | None = None) -> str:
        """A signed JWT of ``claims`` plus ``iat``, ``exp`` (now + ttl, default the
        policy's), ``jti`` and the policy's ``iss``/``aud``; claims given win.

        :raises ConfigurationError: when the ring has no key that can sign.
        :raises InputError: when the claims are not JSON-serialisable or too large.
        """
        signer = self._signer
        if signer is None:
            raise ConfigurationError("no private JWS key in the ring to sign with")
        now = int(self._clock.now())
        body = _token_payload(claims, self._policy, now, self._ttl if ttl is None else ttl)
        signing_input = self._head + b64url_encode(body)
        token = signing_input + b"." + b64url_encode(signer.sign(signing_input))
        if len(token) > MAX_TOKEN_BYTES:
            raise InputError(f"the token would exceed {MAX_TOKEN_BYTES} bytes")
        return token.decode("ascii")

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``.

        :raises TokenError: the most specific subclass: MalformedToken, UnsupportedHeader,
            UnsupportedAlgorithm, UnknownKey, InvalidSignature or a ClaimError.
        """
        _, payload, _ = self._verifier.verify(token)
        claims = loads_object(payload)
        self._check(claims, self._clock.now())
        return claims

    def decode_complete(self, token: str) -> DecodedToken:
        """Like :meth:`decode`, also giving the header and the key that verified it.

        :raises TokenError: as :meth:`decode`.
        """
        header, payload, key = self._verifier.verify(token)
        claims = loads_object(payload)
        self._check(claims, self._clock.now())
        return DecodedToken(dict(header), claims, key)


def encode_jwt(
    claims: Mapping[str, Any],
    keys: KeyRing | Key | Sequence[Key],
    *,
    ttl: float | None = None,
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008
    clock: Clock = SystemClock(),  # noqa: B008
) -> str:
    """One-off :meth:`JWTCodec.encode`; build a codec once on hot paths.

    :raises ConfigurationError: when no key can sign.
    :raises InputError: when the claims cannot be serialised.
    """
    return JWTCodec(keys, policy=policy, clock=clock).encode(claims, ttl=ttl)


def decode_jwt(
    token: str,
    keys: KeyRing | Key | Sequence[Key],
    *,
    algorithms: Collection[str] | None = None,
    policy: ClaimsPolicy = ClaimsPolicy(),  # noqa: B008
    clock: Clock = SystemClock(),  # noqa: B008
) -> dict[str, Any]:
    """One-off :meth:`JWTCodec.decode`; build a codec once on hot paths.

    :raises TokenError: as :meth:`JWTCodec.decode`.
    """
    return JWTCodec(keys, algorithms=algorithms, policy=policy, clock=clock).decode(token)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWS, **without verifying anything**.

    For display only (inspector, ``coatcheck token decode``); never trust the result.

    :raises MalformedToken: when the token is not a well-formed compact JWS.
    """
    if not isinstance(token, str):
        raise MalformedToken("a token is text")
    try:
        raw = token.strip().encode("ascii")
    except UnicodeEncodeError:
        raise MalformedToken("a token is ASCII") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise MalformedToken("token too large")
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a JWS has three segments")
    header = loads_object(b64url_decode(parts[0]))
    payload = loads_object(b64url_decode(parts[1]))
    b64url_decode(parts[2])
    return header, payload


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS or JWE, **without verifying anything**.

    :raises MalformedToken: when the first segment is not a base64url JSON object.
    """
    if not isinstance(token, str):
        raise MalformedToken("a token is text")
    try:
        raw = token.strip().encode("ascii")
    except UnicodeEncodeError:
        raise MalformedToken("a token is ASCII") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise MalformedToken("token too large")
    return loads_object(b64url_decode(raw.split(b".", 1)[0]))
