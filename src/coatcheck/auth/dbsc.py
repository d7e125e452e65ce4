"""Device Bound Session Credentials for browser sessions: the async shell.

:class:`DeviceBinding` ties the pure rules of :mod:`coatcheck.sessions.dbsc` to a
session or hybrid strategy and its cookie transport. Give it to the
:class:`~coatcheck.auth.Authenticator` (``binding=``) and the adapters do the rest:

1. **login**: the response carries ``Secure-Session-Registration`` with a challenge
   bound to the new session. A browser without DBSC ignores it and keeps today's
   behaviour (:attr:`DbscPolicy.unbound <coatcheck.sessions.dbsc.DbscPolicy>` says
   for how long);
2. **registration** (:meth:`DeviceBinding.register`, ``POST registration_path``): the
   browser made a key pair and signed the challenge; with the session credential in
   its cookies, the public key is kept in the session record and the first bound
   cookie is set;
3. **every request**: a bound session needs a live bound cookie beside its session
   credential. In session mode that is a signed ``<exp>.<MAC>`` cookie checked with
   one HMAC (no store read is added); in hybrid mode the access token itself is the
   bound cookie, living ``access_ttl``;
4. **refresh** (:meth:`DeviceBinding.refresh`, ``POST refresh_path``): when the bound
   cookie runs out, the browser holds its requests back, asks for a challenge (403),
   signs it, and gets a new bound cookie. The long-lived credential must come along
   (the session cookie, or hybrid mode's refresh cookie, whose path covers the
   refresh path), so closing a browser without "remember me" still logs out.

A thief who copies the cookies has the bound cookie's remaining lifetime and no more:
there is no refresh without the device key. Hybrid sessions that are bound no longer
renew with their refresh token at all.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import Enum
from typing import Any

from ..clock import Clock, SystemClock
from ..cookies import dump_cookie, expire_cookie, find_cookie
from ..errors import (
    CoatcheckError,
    ConfigurationError,
    ConflictError,
    DbscChallengeFailed,
    InputError,
    InvalidCredentials,
    InvalidDbscProof,
    MissingCredentials,
)
from ..events import Concealed, Refreshed, RefreshRefused, emit, note_cookie, observed
from ..secret import Secret, SecretRing
from ..sessions.dbsc import (
    BINDING_KEY,
    END_SESSION,
    Admission,
    Binding,
    BoundCookies,
    Challenges,
    DbscPolicy,
    admission,
    challenge_header,
    cookie_attributes,
    instructions,
    read_sf_string,
    registration_header,
)
from ..sessions.record import SessionRecord
from ..tokens.dbsc import device_key, verify_refresh_proof, verify_registration_proof
from .hybrid import HybridStrategy, split_refresh_token
from .hybrid_cookies import HybridCookieTransport
from .identity import Identity, Issued
from .strategies import SessionStrategy
from .transports import CookieTransport

__all__ = ["DbscReply", "DeviceBinding", "ReplyKind"]

_SYSTEM_CLOCK = SystemClock()
_REGISTER = "register"
_REFRESH = "refresh"
_ATTEMPTS = 8


class ReplyKind(Enum):
    """What a DBSC endpoint answers; the adapters give each its HTTP form."""

    #: 200 with the session instructions JSON and the new bound cookie.
    OK = "ok"
    #: 403 with a fresh challenge (``Secure-Session-Challenge`` or, at registration,
    #: a new ``Secure-Session-Registration``): sign this one.
    CHALLENGE = "challenge"
    #: 200 ``{"continue": false}``: the session is gone; the browser forgets its key.
    END = "end"
    #: a 4xx from :attr:`DbscReply.error` (the browser ends the DBSC session).
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class DbscReply:
    """A DBSC endpoint's answer, framework-free: see :class:`ReplyKind`."""

    kind: ReplyKind
    body: Mapping[str, Any] | None = None
    # Set-Cookie values carry the bound credential: keep them out of reprs and logs.
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    error: CoatcheckError | None = None


class DeviceBinding:
    """DBSC for the sessions of ``strategy``, whose browser credential is ``transport``.

    Session mode: a :class:`~coatcheck.auth.SessionStrategy` with its
    :class:`~coatcheck.auth.CookieTransport`; the bound cookie is
    ``policy.cookie_name`` with the session cookie's attributes. Hybrid mode: a
    :class:`~coatcheck.auth.HybridStrategy` with its
    :class:`~coatcheck.auth.HybridCookieTransport`; the access cookie is the bound
    cookie. ``secrets`` key the challenges and bound cookies (32 bytes or more, newest
    first signs, all verify). Pass the strategy's clock as ``clock``.

    :raises ConfigurationError: for another strategy or transport, a hybrid refresh
        path outside the refresh cookie's path, or bad secrets.
    """

    __slots__ = (
        "_bound_attributes",
        "_bound_clear",
        "_bound_name",
        "_bound_policy",
        "_challenges",
        "_clock",
        "_cookies",
        "_hybrid",
        "_policy",
        "_refresh_path",
        "_strategy",
        "_transport",
    )

    def __init__(
        self,
        strategy: SessionStrategy | HybridStrategy,
        transport: CookieTransport,
        secrets: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        policy: DbscPolicy = DbscPolicy(),  # noqa: B008 - frozen, so sharing is safe
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        self._strategy = strategy
        self._transport = transport
        self._policy = policy
        self._clock = clock
        if isinstance(strategy, HybridStrategy):
            if not isinstance(transport, HybridCookieTransport):
                raise ConfigurationError("hybrid DBSC needs the HybridCookieTransport")
            self._hybrid: HybridCookieTransport | None = transport
            base = transport.refresh_path.rstrip("/")
            self._refresh_path = policy.refresh_path or base + "/dbsc"
            if not (self._refresh_path == base or self._refresh_path.startswith(base + "/")):
                # The refresh cookie (Path=refresh_path) must reach the DBSC refresh.
                raise ConfigurationError(
                    f"the DBSC refresh_path must lie under the refresh cookie's path {base}"
                )
            self._cookies: BoundCookies | None = None
            self._bound_name = transport.cookie_name
            self._bound_policy = transport.policy
            self._bound_clear: list[tuple[str, str]] = []
        elif isinstance(strategy, SessionStrategy):
            if isinstance(transport, HybridCookieTransport):
                raise ConfigurationError("session-mode DBSC needs the plain CookieTransport")
            self._hybrid = None
            self._refresh_path = policy.refresh_path or "/auth/dbsc/refresh"
            self._cookies = BoundCookies(secrets)
            self._bound_name = policy.cookie_name
            self._bound_policy = transport.policy
            # Checks the name against the policy (a __Host- name needs Secure) at start-up.
            cleared = expire_cookie(policy.cookie_name, transport.policy)
            self._bound_clear = [("set-cookie", cleared)]
        else:
            raise ConfigurationError("DBSC binds SessionStrategy or HybridStrategy sessions")
        self._bound_attributes = cookie_attributes(self._bound_policy)
        lifetime = (
            timedelta(seconds=strategy.access_ttl)
            if isinstance(strategy, HybridStrategy)
            else policy.bound_ttl
        )
        self._challenges = Challenges(
            secrets, ttl=policy.challenge_ttl or lifetime + timedelta(minutes=5)
        )

    @property
    def strategy(self) -> SessionStrategy | HybridStrategy:
        return self._strategy

    @property
    def policy(self) -> DbscPolicy:
        return self._policy

    @property
    def registration_path(self) -> str:
        return self._policy.registration_path

    @property
    def refresh_path(self) -> str:
        return self._refresh_path

    @property
    def bound_cookie_name(self) -> str:
        """The cookie that must stay fresh: the bound cookie, or hybrid's access cookie."""
        return self._bound_name

    # -- login, every request, logout ------------------------------------------------------

    def registration_headers(self, issued: Issued) -> list[tuple[str, str]]:
        """``Secure-Session-Registration`` for a new login (nothing without a session)."""
        if issued.session_id is None:
            return []
        challenge = self._challenges.issue(issued.session_id, _REGISTER, self._clock.now())
        value = registration_header(self._policy.algorithms, self.registration_path, challenge)
        return [("secure-session-registration", value)]

    def admit(self, identity: Identity, headers: Mapping[str, str]) -> Admission:
        """Whether an authenticated request passes DBSC: pure, no store read."""
        cookies = self._cookies
        bound_cookie = None
        if cookies is not None and BINDING_KEY in identity.claims:
            bound_cookie = find_cookie(headers.get("cookie"), self._bound_name)
        return admission(
            identity.claims,
            session_id=identity.session_id,
            auth_time=identity.auth_time,
            bound_cookie=bound_cookie,
            now=self._clock.now(),
            policy=self._policy,
            cookies=cookies,
        )

    def clear(self) -> list[tuple[str, str]]:
        """Set-Cookie headers that remove the bound cookie (logout)."""
        return list(self._bound_clear)

    # -- the endpoints ---------------------------------------------------------------------

    async def register(self, headers: Mapping[str, str]) -> DbscReply:
        """Registration: bind the session of the request's cookies to the proof's key.

        Never raises for bad input (the reply says why); raises StoreError /
        StoreUnavailable when the store fails.
        """
        proof_text = read_sf_string(headers.get("secure-session-response"))
        if proof_text is None:
            return _refused(InvalidDbscProof("no Secure-Session-Response proof was sent"))
        try:
            proof = verify_registration_proof(proof_text, algorithms=self._policy.algorithms)
        except InvalidDbscProof as exc:
            return _refused(exc)
        identity = await self._current(headers)
        if identity is None or identity.session_id is None:
            return _refused(MissingCredentials("register with the session's cookie"))
        sid = identity.session_id
        now = self._clock.now()
        try:
            issued = self._challenges.check(proof.jti, sid, _REGISTER, now)
        except DbscChallengeFailed as exc:
            # A stale or foreign challenge: offer a new registration (DBSC §Session
            # Registration instructions: 403 with a new Secure-Session-Registration).
            fresh = self._challenges.issue(sid, _REGISTER, now)
            header = registration_header(self._policy.algorithms, self.registration_path, fresh)
            return DbscReply(
                ReplyKind.CHALLENGE, headers=[("secure-session-registration", header)], error=exc
            )
        binding = Binding(
            jwk=dict(proof.jwk), alg=proof.alg, jkt=proof.jkt, bound_at=now, last_challenge=issued
        )

        def bind(data: dict[str, Any]) -> None:
            existing = Binding.from_data(data.get(BINDING_KEY))
            if existing is not None and (
                not hmac.compare_digest(existing.jkt, proof.jkt)
                or existing.last_challenge >= issued
            ):
                raise ConflictError("this session is already bound to a device key")
            data[BINDING_KEY] = binding.to_data()

        manager = self._strategy.manager
        try:
            record = await manager.update_data(sid, bind)
        except (ConflictError, InvalidCredentials) as exc:
            return _refused(exc)
        return self._ok(record, binding, headers, now)

    async def refresh(self, headers: Mapping[str, str]) -> DbscReply:
        """Refresh: a proof of the device key for a fresh challenge buys a new bound cookie.

        Never raises for bad input; raises StoreError / StoreUnavailable.
        """
        sid = read_sf_string(headers.get("sec-secure-session-id"))
        if sid is None:
            return _refused(InputError("no Sec-Secure-Session-Id header"))
        now = self._clock.now()
        record = await self._session_record(headers)
        if record is None or not hmac.compare_digest(record.id, sid):
            # Logged out, expired, revoked, or a browser session that ended (no
            # "remember me"): the device's session ends too.
            return DbscReply(ReplyKind.END, END_SESSION, self.clear())
        binding = Binding.from_data(record.data.get(BINDING_KEY))
        if binding is None:
            return DbscReply(ReplyKind.END, END_SESSION, self.clear())
        proof_text = read_sf_string(headers.get("secure-session-response"))
        if proof_text is None:
            return self._challenge(sid, now, None)
        try:
            key = device_key(binding.jwk, binding.alg)
            proof = verify_refresh_proof(proof_text, key=key, jwk=binding.jwk)
        except InvalidDbscProof as exc:
            return _refused(exc, refresh=True)
        store = self._strategy.manager.store
        for _ in range(_ATTEMPTS):
            try:
                issued = self._challenges.check(
                    proof.jti, sid, _REFRESH, now, after=binding.last_challenge
                )
            except DbscChallengeFailed as exc:
                return self._challenge(sid, now, exc)
            binding = replace(binding, last_challenge=issued)
            data = dict(record.data)
            data[BINDING_KEY] = binding.to_data()
            updated = record.with_data(data)
            # Compare-and-set: of two refreshes with one proof, exactly one wins.
            if await store.update(updated):
                if observed(Refreshed):
                    user = Concealed(updated.user_id)
                    mode = self._strategy.name
                    emit(Refreshed(mode=mode, credential="device_key", rotated=False, user=user))
                return self._ok(updated, binding, headers, now)
            fresh = await store.get(record.id, now)
            binding_now = Binding.from_data(fresh.data.get(BINDING_KEY)) if fresh else None
            if fresh is None or binding_now is None:
                return DbscReply(ReplyKind.END, END_SESSION, self.clear())
            record, binding = fresh, binding_now
        return _refused(
            ConflictError("the session changed concurrently too many times"), refresh=True
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _current(self, headers: Mapping[str, str]) -> Identity | None:
        """The identity of the request's session cookie (access cookie in hybrid mode)."""
        token = self._transport.read(headers)
        if token is None:
            return None
        verified = await self._strategy.verify(token)
        return verified.identity if verified is not None else None

    async def _session_record(self, headers: Mapping[str, str]) -> SessionRecord | None:
        """The live session behind the request's long-lived credential, or ``None``."""
        manager = self._strategy.manager
        if self._hybrid is None:
            token = self._transport.read(headers)
        else:
            refresh = self._hybrid.read_refresh(headers)
            parts = split_refresh_token(refresh) if refresh is not None else None
            token = parts[0] if parts is not None else None
        if token is None:
            return None
        return await manager.validate(token)

    def _challenge(self, sid: str, now: float, error: CoatcheckError | None) -> DbscReply:
        challenge = self._challenges.issue(sid, _REFRESH, now)
        return DbscReply(
            ReplyKind.CHALLENGE,
            headers=[("secure-session-challenge", challenge_header(challenge, sid))],
            error=error,
        )

    def _ok(
        self, record: SessionRecord, binding: Binding, headers: Mapping[str, str], now: float
    ) -> DbscReply:
        sid = record.id
        if self._hybrid is not None and isinstance(self._strategy, HybridStrategy):
            access = self._strategy.access_token(record)
            value, expires_at = access.token, access.expires_at
        else:
            cookies = self._cookies
            if cookies is None:  # pragma: no cover - set for every session-mode binding
                raise ConfigurationError("no bound cookie signer")
            expires_at = now + self._policy.bound_ttl.total_seconds()
            value = cookies.make(sid, expires_at)
        cookie = dump_cookie(
            self._bound_name,
            value,
            self._bound_policy,
            # The browser drops it when the server stops taking it: then it refreshes.
            max_age=max(0, int(expires_at - now)),
            now=now,
        )
        note_cookie("bound", cookie)
        body = instructions(
            session_id=sid,
            refresh_url=self._refresh_path,
            credentials=[(self._bound_name, self._bound_attributes)],
            exclude_paths=(*self._policy.exclude_paths, self.registration_path),
            host=_host(headers.get("host")),
        )
        # A challenge ahead of time spares the next refresh its 403 round trip.
        challenge = self._challenges.issue(sid, _REFRESH, now)
        return DbscReply(
            ReplyKind.OK,
            body,
            [
                ("set-cookie", cookie),
                ("secure-session-challenge", challenge_header(challenge, sid)),
            ],
        )

    def __repr__(self) -> str:
        mode = "hybrid" if self._hybrid is not None else "session"
        return f"DeviceBinding({mode}, bound cookie {self._bound_name!r})"


def _refused(error: CoatcheckError, *, refresh: bool = False) -> DbscReply:
    if refresh and observed(RefreshRefused):
        emit(RefreshRefused(credential="device_key", reason=error.code))
    return DbscReply(ReplyKind.REFUSED, error=error)


def _host(value: str | None) -> str | None:
    """The host name of a Host header, without the port (``None`` if odd)."""
    if not value or len(value) > 300:
        return None
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else None
    return value.partition(":")[0] or None
