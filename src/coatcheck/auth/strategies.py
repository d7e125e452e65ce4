"""Strategies: how a credential is made, checked and taken back.

A strategy knows nothing about where the credential travels (that is a
:mod:`~coatcheck.auth.transports` concern). Two ship here:

* :class:`SessionStrategy`: an opaque session token; the identity comes from the
  server-side record, so revocation is immediate, at one store read per request.
* :class:`JWTStrategy`: a signed JWT; the identity comes from its claims, with no
  store at all, so it cannot be taken back before ``exp``.

Other strategies (hybrid, Auth.js interop) implement the same :class:`Strategy`
protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from .._bounded import CacheInfo
from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, TokenError
from ..sessions.manager import SessionManager
from ..sessions.record import SessionRecord
from ..tokens import JWTCodec
from ._cache import DEFAULT_SIZE, VerifiedCache
from .identity import Identity, Issued, Verified, _make_identity, _make_verified

__all__ = ["PERSISTENT_KEY", "JWTStrategy", "SessionStrategy", "Strategy"]

#: Session-data key (and, as ``per``, JWT claim) that records "remember me".
PERSISTENT_KEY = "_persistent"
_PERSISTENT_CLAIM = "per"
# Claims a strategy sets itself; caller data cannot override them, and a reissued
# token gets fresh ones from the codec (RFC 7519 §4.1).
_RESERVED_CLAIMS = frozenset({"sub", "iat", "exp", "nbf", "jti", "iss", "aud", "per"})
_SYSTEM_CLOCK = SystemClock()
_FOREVER = float("inf")


@runtime_checkable
class Strategy(Protocol):
    """How a credential is issued, verified and revoked.

    ``verify`` returns ``None`` for an absent, malformed, forged, expired or revoked
    credential (the visitor is then a guest) and lets only
    :class:`~coatcheck.errors.StoreUnavailable` / :class:`~coatcheck.errors.StoreError`
    escape, so that a store outage is never mistaken for "logged out". A strategy
    whose ``verify`` also takes a keyword ``via`` (the transport's name, for
    ``Identity.via``) is given it by the :class:`~coatcheck.auth.Authenticator`, which
    otherwise copies the identity with the right ``via``; coatcheck's strategies do.
    """

    name: str

    async def issue(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
        persistent: bool = True,
    ) -> Issued: ...

    async def verify(self, token: str) -> Verified | None: ...

    async def revoke(self, token: str) -> None: ...


class SessionStrategy:
    """Opaque session tokens backed by a :class:`~coatcheck.sessions.SessionManager`.

    The identity comes from the stored record (its ``data`` becomes
    ``Identity.claims``). When the manager slides a session's idle expiry forward,
    a persistent credential is reissued so the cookie's Max-Age follows; an
    unchanged session is never re-sent. Pass the manager's clock as ``clock``.
    ``Identity.claims`` is a read-only view of the session data. A guest's session
    (user id ``""``, see :mod:`coatcheck.sessions.data`) authenticates no one: its
    token verifies as ``None``, like a forged one.

    Nothing is cached: each request reads the store and makes its identity afresh.
    (An identity cache used to sit here; with more users than entries it cost more
    on its misses than it saved on its hits, issue 18.)
    """

    __slots__ = ("_clock", "_manager")

    name = "session"

    def __init__(self, manager: SessionManager, *, clock: Clock = _SYSTEM_CLOCK) -> None:
        self._manager = manager
        self._clock = clock

    @property
    def manager(self) -> SessionManager:
        return self._manager

    async def issue(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
        persistent: bool = True,
    ) -> Issued:
        """Start a new session (raises StoreError / StoreUnavailable)."""
        stored = dict(data or {})
        stored[PERSISTENT_KEY] = persistent
        token, record = await self._manager.create(
            user_id, data=stored, user_agent=user_agent, ip=ip
        )
        identity = _session_identity(record, "cookie")
        return Issued(
            token=token, expires_at=record.expires_at, session_id=record.id, identity=identity
        )

    async def verify(self, token: str, *, via: str = "cookie") -> Verified | None:
        """The session's identity, or ``None`` (raises StoreError / StoreUnavailable).

        ``via`` names the transport the token came through (``Identity.via``).
        """
        # lookup says whether this very call renewed the session (moved its expiry).
        record, renewed = await self._manager.lookup(token)
        if record is None or not record.user_id:
            # Fail closed: a guest's session holds data, never an identity.
            return None
        identity = _session_identity(record, via)
        if identity.persistent and renewed:
            reissued = Issued(
                token=token, expires_at=record.expires_at, session_id=record.id, identity=identity
            )
            return _make_verified(identity, reissued, record)
        return _make_verified(identity, None, record)

    async def revoke(self, token: str) -> None:
        """End the session (raises StoreError / StoreUnavailable)."""
        await self._manager.revoke(token)

    def __repr__(self) -> str:
        return f"SessionStrategy({self._manager!r})"


def _session_identity(record: SessionRecord, via: str) -> Identity:
    data = record.data
    return _make_identity(
        record.user_id,
        "session",
        record.id,
        # Read-only: the record's data is shared with the store's own copy (memory).
        MappingProxyType(data),
        record.auth_time,
        record.expires_at,
        data.get(PERSISTENT_KEY, True) is not False,
        via,
    )


class JWTStrategy:
    """Signed JWTs made and checked by a :class:`~coatcheck.tokens.JWTCodec`.

    Claims: ``sub`` (the user id), ``auth_time`` (OpenID Connect Core §2), ``per``
    (remember me) and whatever ``data`` holds (``name``, ``username`` ...). Tokens
    live ``ttl``; once more than half of that has passed, ``verify`` asks for a fresh
    token (sliding expiry, ``renew=True``) which cookie transports write and bearer
    transports ignore. A JWT cannot be revoked: :meth:`revoke` does nothing, and the
    token keeps working until ``exp`` (hybrid mode bounds that).

    :raises ConfigurationError: when ``ttl`` is not positive.
    """

    __slots__ = ("_cache", "_clock", "_codec", "_renew", "_ttl")

    name = "jwt"

    def __init__(
        self,
        codec: JWTCodec,
        *,
        ttl: timedelta = timedelta(hours=12),
        renew: bool = True,
        cache_size: int = DEFAULT_SIZE,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        self._ttl = ttl.total_seconds()
        if self._ttl <= 0:
            raise ConfigurationError("JWTStrategy ttl must be positive")
        if cache_size < 0:
            raise ConfigurationError("cache_size must be 0 (off) or more")
        self._codec = codec
        self._renew = renew
        self._clock = clock
        # token -> (Verified, good_until). Only tokens that verified are kept, until the
        # earlier of exp and the sliding-renewal point, so a hit never changes an answer:
        # a JWT cannot be revoked, and the codec's key ring is immutable (rotating keys
        # means a new codec, hence a new strategy and an empty cache).
        self._cache: VerifiedCache[Verified] | None = (
            VerifiedCache(cache_size) if cache_size else None
        )

    @property
    def codec(self) -> JWTCodec:
        return self._codec

    async def issue(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
        persistent: bool = True,
    ) -> Issued:
        """Sign a new token (user agent and IP are not put in it)."""
        claims = {k: v for k, v in (data or {}).items() if k not in _RESERVED_CLAIMS}
        claims.setdefault("auth_time", int(self._clock.now()))
        claims["sub"] = user_id
        claims[_PERSISTENT_CLAIM] = persistent
        return self._sign(claims)

    async def verify(self, token: str, *, via: str = "cookie") -> Verified | None:
        """The token's identity, or ``None`` for anything the codec refuses.

        ``via`` names the transport the token came through (``Identity.via``).
        """
        now = self._clock.now()
        cache = self._cache
        if cache is not None:
            hit = cache.get(token, now)
            if hit is not None and hit.identity.via == via:
                return hit
        try:
            claims = self._codec.decode(token)
        except TokenError:
            return None
        identity = _jwt_identity(claims, via)
        if identity is None:
            return None
        good_until = identity.expires_at
        if self._renew:
            iat = claims.get("iat")
            # RFC 7519 §4.1.6: iat is when the token was made; renew past half its life.
            if type(iat) is int or type(iat) is float:
                good_until = min(good_until, iat + (identity.expires_at - iat) / 2)
            if now > good_until:
                kept = {k: v for k, v in claims.items() if k not in _RESERVED_CLAIMS}
                kept["sub"] = identity.user_id
                kept[_PERSISTENT_CLAIM] = identity.persistent
                return _make_verified(identity, self._sign(kept))
        verified = _make_verified(identity)
        if cache is not None:
            cache.store(token, (verified, good_until))
        return verified

    async def revoke(self, token: str) -> None:
        """Nothing to do: a signed token stays valid until ``exp``."""

    def _sign(self, claims: dict[str, Any]) -> Issued:
        now = self._clock.now()
        token = self._codec.encode(claims, ttl=self._ttl)
        full = dict(claims)
        full["iat"] = int(now)
        full["exp"] = int(now + self._ttl)
        identity = _jwt_identity(full)
        if identity is None:  # pragma: no cover - sub is always a non-empty str here
            raise ConfigurationError("the user id must be a non-empty string")
        return Issued(
            token=token, expires_at=identity.expires_at, session_id=None, identity=identity
        )

    def cache_info(self) -> CacheInfo:
        """Hits and misses of the verified-token cache (all zero when it is off)."""
        cache = self._cache
        return CacheInfo(0, 0, 0, 0) if cache is None else cache.cache_info()

    def __repr__(self) -> str:
        return f"JWTStrategy({self._codec!r}, ttl={self._ttl!r})"


def _jwt_identity(claims: Mapping[str, Any], via: str = "cookie") -> Identity | None:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        return None
    exp = claims.get("exp")
    auth_time = claims["auth_time"] if "auth_time" in claims else claims.get("iat", 0)
    return _make_identity(
        sub,
        "jwt",
        None,
        # Read-only: one Identity may answer many requests from the verify cache.
        MappingProxyType(claims),
        float(auth_time) if isinstance(auth_time, (int, float)) else 0.0,
        float(exp) if isinstance(exp, (int, float)) else _FOREVER,
        claims.get(_PERSISTENT_CLAIM, True) is not False,
        via,
    )
