"""Hybrid mode: short-lived access JWTs, rotating refresh tokens, bounded revocation.

At login a server-side session is created (:class:`~coatcheck.sessions.SessionManager`)
and the client gets two credentials:

* an **access token**, a JWT of ``access_ttl`` (5 minutes by default) carrying
  ``sub``, ``sid`` (the public session id), ``auth_time`` and the user's claims.
  Requests are authenticated by it alone: a signature check and a lookup in the
  in-memory :class:`~coatcheck.revocation.RevocationSet`, no store round trip;
* a **refresh token** ``<session token>~<generation secret>``. The session stores
  only SHA-256 hashes of the generation secrets (current and previous), when the
  current one was made, and a counter, under the reserved data keys below.

Refreshing (:meth:`HybridStrategy.refresh`) costs one store read and one
compare-and-set write. The successor generation secret is *derived*,
``HMAC-SHA256(refresh secret, session id || old secret)``, not random: nothing
secret is stored, yet whoever presents the old secret can compute the successor.
So under N concurrent refreshes exactly one compare-and-set wins, and every loser
(and any second tab within ``grace``) re-derives and returns the *same* pair. The
access token of a pair is deterministic too (``iat`` is the rotation time, ``jti``
derives from the successor's hash): with HS256/384/512, RS256 and EdDSA the bytes
are identical; ES256/PS256 signatures are randomised, so those give an equivalent
token (same claims, other signature bytes).

A lost response is not a theft. A client whose refresh answer never arrived (the
connection dropped) still holds the retired token; until the successor has been
used once, and for at most ``retry_window`` (10 minutes by default) after the
rotation, the retired token fetches that same successor again (with a fresh access
token once ``grace`` has passed). The server knows whether the successor was used
without storing anything more: its first use is a rotation, the same
compare-and-set write that moves "previous" on to the successor's hash, after which
the retired token matches neither generation.

A secret that matches neither generation (a retired token whose successor has been
used, or an older one), or the previous secret after ``retry_window``, while the
session token is valid means a refresh token was copied: the whole family (the
session) is revoked, the revocation published, and
:class:`~coatcheck.errors.RefreshReuse` raised (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

Revocation bound: see :mod:`coatcheck.revocation`. Without a feed, one access-token
lifetime (plus leeway) in other processes, immediate in this one; with a healthy
feed, about the feed latency; while the feed is down, every access token is checked
against the store (fail safe).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from .._bounded import CacheInfo
from ..clock import Clock, SystemClock
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ExpiredToken,
    InvalidCredentials,
    InvalidDPoPBinding,
    RefreshReuse,
    TokenError,
)
from ..events import (
    Concealed,
    Refreshed,
    RefreshRefused,
    RefreshReuseDetected,
    emit,
    observed,
)
from ..revocation import RevocationFeed, RevocationSet
from ..secret import Secret, SecretRing
from ..sessions.dbsc import BINDING_KEY, BOUND_CLAIM
from ..sessions.ids import session_id as _session_id
from ..sessions.manager import SessionManager
from ..sessions.record import SessionRecord
from ..tokens import JWTCodec, unverified_parts
from ._cache import DEFAULT_SIZE, VerifiedCache
from .dpop import CONFIRMATION_CLAIM, key_binding
from .identity import Identity, Issued, Verified, _make_identity, _make_verified
from .strategies import PERSISTENT_KEY

__all__ = [
    "GENERATION_KEY",
    "PREVIOUS_GENERATION_KEY",
    "REFRESH_SEPARATOR",
    "HybridIssued",
    "HybridStrategy",
    "Refreshing",
    "split_refresh_token",
]

#: Joins the session token and the generation secret in a refresh token; neither
#: contains it, and it is legal in cookies and RFC 6750 bearer tokens.
REFRESH_SEPARATOR = "~"
#: Session-data keys (reserved): hashes of the current and previous generation
#: secrets, when the current one was made, and how many rotations happened.
GENERATION_KEY = "_rt"
PREVIOUS_GENERATION_KEY = "_rt_prev"
_ROTATED_AT_KEY = "_rt_at"
_COUNTER_KEY = "_rt_n"
_PERSISTENT_CLAIM = "per"
# Claims the strategy sets itself (RFC 7519 §4.1); session data cannot override them.
_RESERVED_CLAIMS = frozenset(
    {"sub", "sid", "iat", "exp", "nbf", "jti", "iss", "aud", "per", "auth_time", BOUND_CLAIM}
)
_GENERATION_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_DERIVE_LABEL = b"coatcheck.refresh\x00"
_MAX_REFRESH = 200
_MAX_RETRY = 86_400.0
_SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True, slots=True, kw_only=True)
class HybridIssued(Issued):
    """An access token (``token``) and the refresh token that renews it."""

    refresh_token: str = field(repr=False)
    refresh_expires_at: float


@runtime_checkable
class Refreshing(Protocol):
    """A strategy whose expired credentials can be renewed with a refresh token."""

    def refreshable(self, token: str) -> bool: ...

    def same_session(self, access_token: str, refresh_token: str) -> Identity | None: ...

    async def refresh(self, refresh_token: str, *, jkt: str | None = None) -> HybridIssued: ...


def _hash(generation: str) -> str:
    return hashlib.sha256(generation.encode("ascii")).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def split_refresh_token(value: str) -> tuple[str, str] | None:
    """``(session token, generation secret)`` of a refresh token, or ``None`` (never raises)."""
    if not isinstance(value, str) or len(value) > _MAX_REFRESH:
        return None
    token, sep, generation = value.rpartition(REFRESH_SEPARATOR)
    if not sep or not _GENERATION_RE.fullmatch(generation) or _session_id(token) is None:
        return None
    return token, generation


class HybridStrategy:
    """Access JWTs verified without a store, refresh tokens rotated with reuse detection.

    ``refresh_secrets`` key the derivation of successor generations (newest derives,
    every one is tried when re-deriving, so rotating them never logs anyone out).
    ``grace``: racing refreshes (parallel tabs) within it get the byte-identical pair;
    ``retry_window``: how long after a rotation a retired token whose successor was
    never used fetches that successor again (a lost response), see the module docs.
    Revocations go through the manager, which publishes them
    (:meth:`SessionManager.use_revocations`): give the feed to
    ``SessionManager(store, revocations=feed)``, or here as ``feed`` (it is handed to
    a manager that has none); without either, a set of this process is made. Pass the
    manager's clock as ``clock``. ``cache_size`` access tokens that verified are
    remembered until their ``exp`` (0 turns this off): a hit skips the signature
    check, never the revocation check.

    :raises ConfigurationError: for a non-positive ``access_ttl``, a negative
        ``grace``, a ``grace`` not shorter than ``access_ttl``, a ``retry_window``
        shorter than ``grace`` or longer than a day, a revocation set
        that forgets sooner than access tokens expire, a feed bound to another set, a
        feed or set other than the manager's own, or a negative ``cache_size``.
    """

    __slots__ = (
        "_cache",
        "_clock",
        "_codec",
        "_grace",
        "_manager",
        "_retry",
        "_revocations",
        "_ring",
        "_ttl",
    )

    name = "hybrid"

    def __init__(
        self,
        manager: SessionManager,
        codec: JWTCodec,
        refresh_secrets: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        access_ttl: timedelta = timedelta(minutes=5),
        grace: timedelta = timedelta(seconds=10),
        retry_window: timedelta = timedelta(minutes=10),
        revocations: RevocationSet | None = None,
        feed: RevocationFeed | None = None,
        cache_size: int = DEFAULT_SIZE,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        if cache_size < 0:
            raise ConfigurationError("cache_size must be 0 (off) or more")
        self._ttl = int(access_ttl.total_seconds())
        self._grace = grace.total_seconds()
        if self._ttl <= 0:
            raise ConfigurationError("access_ttl must be at least one second")
        if not 0 <= self._grace < self._ttl:
            raise ConfigurationError("grace must be at least 0 and shorter than access_ttl")
        self._retry = retry_window.total_seconds()
        if not self._grace <= self._retry <= _MAX_RETRY:
            raise ConfigurationError("retry_window must be at least grace and at most a day")
        retention = access_ttl + codec.policy.leeway
        if feed is not None:
            if revocations is not None and revocations is not feed.revocations:
                raise ConfigurationError("the feed fills another RevocationSet than the one given")
            revocations = feed.revocations
        # The manager publishes every revocation (whoever calls it: the app, an
        # adapter, the CLI), so the set and feed are the manager's; one given here is
        # handed to a manager that has none, and must be the same as one it has.
        if feed is not None:
            manager.use_revocations(feed)
        elif revocations is not None:
            manager.use_revocations(revocations)
        elif manager.revocations is None:
            manager.use_revocations(RevocationSet(retention=retention, clock=clock))
        revocations = manager.revocations
        if revocations is None:  # pragma: no cover - use_revocations set one just above
            raise ConfigurationError("the SessionManager has no revocations")
        if revocations.retention < retention.total_seconds():
            raise ConfigurationError(
                "the RevocationSet must keep ids for at least access_ttl + the codec's leeway"
            )
        self._manager = manager
        self._codec = codec
        self._ring = SecretRing.coerce(refresh_secrets)
        self._revocations = revocations
        self._clock = clock
        # token -> Identity of access tokens that verified, until their exp: a hit
        # never changes an answer (the key ring is immutable; revocation is checked
        # on every request regardless).
        self._cache: VerifiedCache[Verified] | None = (
            VerifiedCache(cache_size) if cache_size else None
        )

    @property
    def manager(self) -> SessionManager:
        return self._manager

    @property
    def codec(self) -> JWTCodec:
        return self._codec

    @property
    def revocations(self) -> RevocationSet:
        return self._revocations

    @property
    def access_ttl(self) -> int:
        """Lifetime of access tokens, seconds."""
        return self._ttl

    # -- issuing ------------------------------------------------------------------------

    async def issue(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
        persistent: bool = True,
    ) -> HybridIssued:
        """Log in: a new session, an access token and a refresh token.

        Raises StoreError / StoreUnavailable; InputError when ``data`` cannot be a claim.
        """
        generation = secrets.token_urlsafe(32)
        stored = {k: v for k, v in (data or {}).items() if not k.startswith("_rt")}
        now = self._clock.now()
        stored[PERSISTENT_KEY] = persistent
        stored[GENERATION_KEY] = _hash(generation)
        stored[PREVIOUS_GENERATION_KEY] = ""
        stored[_ROTATED_AT_KEY] = now
        stored[_COUNTER_KEY] = 0
        token, record = await self._manager.create(
            user_id, data=stored, user_agent=user_agent, ip=ip
        )
        return self._pair(record, token, generation)

    def _pair(
        self,
        record: SessionRecord,
        session_token: str,
        generation: str,
        *,
        issued_at: float | None = None,
    ) -> HybridIssued:
        data = record.data
        # Deterministic, so that racing refreshes hand out byte-identical tokens.
        seed = b"jti\x00" + str(data[GENERATION_KEY]).encode()
        iat = int(data.get(_ROTATED_AT_KEY, 0) if issued_at is None else issued_at)
        access = self._access(record, iat, seed)
        return HybridIssued(
            token=access.token,
            expires_at=access.expires_at,
            session_id=record.id,
            identity=access.identity,
            refresh_token=session_token + REFRESH_SEPARATOR + generation,
            refresh_expires_at=record.expires_at,
        )

    def _access(self, record: SessionRecord, iat: int, seed: bytes) -> Issued:
        data = record.data
        persistent = data.get(PERSISTENT_KEY, True) is not False
        exp = iat + self._ttl
        claims: dict[str, Any] = {
            k: data[k]
            for k in sorted(data)
            if not k.startswith("_") and k not in _RESERVED_CLAIMS
        }
        claims["sub"] = record.user_id
        claims["sid"] = record.id
        claims["auth_time"] = int(record.auth_time)
        claims[_PERSISTENT_CLAIM] = persistent
        binding = data.get(BINDING_KEY)
        if isinstance(binding, Mapping) and isinstance(binding.get("jkt"), str):
            # A DBSC-bound session: its access cookie is the short-lived bound cookie.
            claims[BOUND_CLAIM] = binding["jkt"]
        claims["iat"] = iat
        claims["exp"] = exp
        claims["jti"] = _b64(hashlib.sha256(seed).digest()[:16])
        identity = Identity(
            user_id=record.user_id,
            mode=self.name,
            session_id=record.id,
            claims=claims,
            auth_time=record.auth_time,
            expires_at=float(exp),
            persistent=persistent,
        )
        return Issued(
            token=self._codec.encode(claims),
            expires_at=float(exp),
            session_id=record.id,
            identity=identity,
        )

    def access_token(self, record: SessionRecord) -> Issued:
        """A new access token for the session ``record``, without a refresh token.

        For Device Bound Session Credentials (:mod:`coatcheck.auth.dbsc`): a bound
        session renews its access token by a proof of its device key, not by the
        refresh token. Pure: the caller has read and checked ``record``.
        """
        return self._access(record, int(self._clock.now()), secrets.token_bytes(16))

    # -- the per-request path -----------------------------------------------------------

    async def verify(self, token: str, *, via: str = "cookie") -> Verified | None:
        """The access token's identity, or ``None`` (forged, expired, revoked).

        ``via`` names the transport the token came through (``Identity.via``). No
        store call while the revocation set is reliable; otherwise one read of the
        session (raises StoreError / StoreUnavailable).
        """
        now = self._clock.now()
        cache = self._cache
        verified = None if cache is None else cache.get(token, now)
        if verified is None or verified.identity.via != via:
            identity = self._decode(token, via)
            if identity is None:
                return None
            verified = _make_verified(identity)
            if cache is not None:
                cache.store(token, (verified, identity.expires_at))
        else:
            identity = verified.identity
        # The cache only saves the signature check; revocation is checked every time.
        sid = identity.session_id or ""
        revocations = self._revocations
        if revocations.is_revoked(sid, now):
            return None
        # While the feed is down the store is the authority, until the feed is back.
        if not revocations.reliable_at(now) and await self._manager.get_id(sid) is None:
            revocations.add((sid,))
            return None
        return verified

    def _decode(self, token: str, via: str = "cookie") -> Identity | None:
        try:
            claims = self._codec.decode(token)
        except TokenError:
            return None
        return self._identity(claims, via)

    def _identity(self, claims: dict[str, Any], via: str = "cookie") -> Identity | None:
        sid = claims.get("sid")
        sub = claims.get("sub")
        exp = claims.get("exp")
        if not isinstance(sid, str) or not isinstance(sub, str) or not sub:
            return None
        auth_time = claims.get("auth_time")
        return _make_identity(
            sub,
            self.name,
            sid,
            # Read-only: one Identity may answer many requests from the cache.
            MappingProxyType(claims),
            float(auth_time) if isinstance(auth_time, (int, float)) else 0.0,
            float(exp) if isinstance(exp, (int, float)) else 0.0,
            claims.get(_PERSISTENT_CLAIM, True) is not False,
            via,
        )

    def cache_info(self) -> CacheInfo:
        """Hits and misses of the verified-token cache (all zero when it is off)."""
        cache = self._cache
        return CacheInfo(0, 0, 0, 0) if cache is None else cache.cache_info()

    def refreshable(self, token: str) -> bool:
        """Whether a token :meth:`verify` refused is a genuine access token that merely
        expired, of a session not known to be revoked, so a refresh may renew it.

        Only on the failure path (the middleware then redirects to refresh). Never raises.
        """
        try:
            self._codec.decode(token)
        except ExpiredToken:
            # The codec checks the signature before the claims: the token is genuine.
            try:
                sid = unverified_parts(token)[1].get("sid")
            except TokenError:  # pragma: no cover - it just decoded
                return False
            return isinstance(sid, str) and not self._revocations.is_revoked(
                sid, self._clock.now()
            )
        except TokenError:
            return False
        return False

    # -- refresh ------------------------------------------------------------------------

    async def refresh(self, refresh_token: str, *, jkt: str | None = None) -> HybridIssued:
        """Trade a refresh token for a new pair (rotation with reuse detection).

        ``jkt`` is the thumbprint of the key whose DPoP proof came with the request
        (already checked). A session bound to a key (``cnf`` in its data) is refreshed
        only with a proof of that key, and before anything else is looked at, so a
        copied refresh token without the key neither rotates nor revokes anything.
        An unbound session is bound by the first refresh with a proof (RFC 9449 §5).

        :raises InvalidDPoPBinding: a bound session, and no proof of its key.
        :raises InvalidCredentials: malformed token, or the session has ended.
        :raises RefreshReuse: a retired token came back; the session was revoked.
        :raises ConflictError: the session changed concurrently too many times.
        :raises StoreError: or StoreUnavailable when the store fails.
        """
        try:
            return await self._refresh(refresh_token, jkt)
        except RefreshReuse:
            raise  # its own event, sent where the session was revoked
        except AuthenticationError as exc:
            if observed(RefreshRefused):
                emit(RefreshRefused(credential="refresh_token", reason=exc.code))
            raise

    async def _refresh(self, refresh_token: str, jkt: str | None) -> HybridIssued:
        parts = split_refresh_token(refresh_token)
        if parts is None:
            raise InvalidCredentials("the refresh token is malformed")
        session_token, generation = parts
        record = await self._manager.validate(session_token)
        presented = _hash(generation)
        for _ in range(32):
            if record is None:
                raise InvalidCredentials("the session behind the refresh token has ended")
            data = record.data
            current = data.get(GENERATION_KEY)
            if not isinstance(current, str):
                raise InvalidCredentials("the session was not made by hybrid mode")
            if BINDING_KEY in data:
                # Bound to a device key (DBSC): only a proof of that key renews it, so a
                # copied refresh token is worth nothing. The browser never sends it here.
                raise InvalidCredentials("this session is bound to a device: it renews by DBSC")
            bound = key_binding(data)
            if bound is not None and jkt is None:
                raise InvalidDPoPBinding("this refresh token is DPoP-bound: prove its key")
            if bound is not None and not hmac.compare_digest(bound, jkt or ""):
                raise InvalidDPoPBinding("this refresh token is bound to another DPoP key")
            if hmac.compare_digest(presented, current):
                successor = self._derive(record.id, generation, self._ring.current)
                changed = dict(data)
                changed[PREVIOUS_GENERATION_KEY] = current
                changed[GENERATION_KEY] = _hash(successor)
                changed[_ROTATED_AT_KEY] = self._clock.now()
                changed[_COUNTER_KEY] = int(data.get(_COUNTER_KEY, 0)) + 1
                if bound is None and jkt is not None:
                    changed[CONFIRMATION_CLAIM] = {"jkt": jkt}
                updated = record.with_data(changed)
                if await self._manager.store.update(updated):
                    return self._refreshed(self._pair(updated, session_token, successor), True)
                # Lost the race: the winner moved "current" to "previous"; look again.
                record = await self._manager.get_id(record.id)
                continue
            previous = data.get(PREVIOUS_GENERATION_KEY)
            if isinstance(previous, str) and previous and hmac.compare_digest(presented, previous):
                # The successor ("current") has never been presented: its first use
                # would have rotated it to "previous" in the same compare-and-set write.
                now = self._clock.now()
                age = now - float(data.get(_ROTATED_AT_KEY, 0))
                if age <= self._retry:
                    # Another tab won (within grace: the very same pair), or the answer
                    # to this token was lost: the same successor again, fresh access.
                    issued_at = None if age <= self._grace else now
                    for secret in self._ring.all:
                        successor = self._derive(record.id, generation, secret)
                        if hmac.compare_digest(_hash(successor), current):
                            issued = self._pair(
                                record, session_token, successor, issued_at=issued_at
                            )
                            return self._refreshed(issued, False)
            await self._manager.revoke_id(record.id)  # published by the manager
            if observed(RefreshReuseDetected):
                emit(RefreshReuseDetected(mode=self.name, user=Concealed(record.user_id)))
            raise RefreshReuse("a retired refresh token was presented; the session was revoked")
        raise ConflictError("the session changed concurrently too many times")

    def _refreshed(self, issued: HybridIssued, rotated: bool) -> HybridIssued:
        if observed(Refreshed):
            user = Concealed(issued.identity.user_id)
            emit(Refreshed(mode=self.name, credential="refresh_token", rotated=rotated, user=user))
        return issued

    @staticmethod
    def _derive(sid: str, generation: str, secret: Secret) -> str:
        message = _DERIVE_LABEL + sid.encode() + b"\x00" + generation.encode("ascii")
        return _b64(hmac.new(secret.reveal(), message, hashlib.sha256).digest())

    # -- revocation ---------------------------------------------------------------------

    async def revoke(self, token: str) -> None:
        """Log out: end the session behind an access or refresh token; the manager
        publishes it.

        An expired (but genuine) access token still identifies its session. Unknown
        or forged tokens are ignored. Raises StoreError / StoreUnavailable.
        """
        parts = split_refresh_token(token)
        sid = _session_id(parts[0]) if parts is not None else self._sid_of_access(token)
        if sid is not None:
            await self._manager.revoke_id(sid)

    def same_session(self, access_token: str, refresh_token: str) -> Identity | None:
        """The access token's identity when it is genuine (expired or not) and of the
        refresh token's session; ``None`` otherwise. Never raises.

        The browser's refresh binding: a refresh cookie is only used together with an
        access cookie of its own session (see :mod:`coatcheck.auth.hybrid_cookies`).
        """
        parts = split_refresh_token(refresh_token)
        if parts is None:
            return None
        try:
            claims = self._codec.decode(access_token)
        except ExpiredToken:
            # The codec checks the signature before the claims: the token is genuine.
            try:
                claims = unverified_parts(access_token)[1]
            except TokenError:  # pragma: no cover - it just decoded
                return None
        except TokenError:
            return None
        identity = self._identity(claims)
        refresh_sid = _session_id(parts[0])
        if identity is None or refresh_sid is None:
            return None
        same = hmac.compare_digest(
            (identity.session_id or "").encode("utf-8", "surrogatepass"), refresh_sid.encode()
        )
        return identity if same else None

    def _sid_of_access(self, token: str) -> str | None:
        try:
            claims = self._codec.decode(token)
        except ExpiredToken:
            # The codec checks the signature before the claims: the token is genuine.
            claims = unverified_parts(token)[1]
        except TokenError:
            return None
        sid = claims.get("sid")
        return sid if isinstance(sid, str) else None

    async def revoke_session(self, session_id: str) -> bool:
        """Revoke one device (by public session id) and publish it; whether it existed.

        Raises StoreError / StoreUnavailable.
        """
        return await self._manager.revoke_id(session_id) is not None

    async def revoke_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Log out everywhere (all but session ``keep``, e.g. after a password change).

        Returns the revoked ids (published). Raises StoreError / StoreUnavailable.
        """
        return await self._manager.revoke_user(user_id, keep=keep)

    def __repr__(self) -> str:
        return f"HybridStrategy({self._manager!r}, access_ttl={self._ttl})"
