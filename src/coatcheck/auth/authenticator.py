"""The Authenticator: one strategy, one or more transports, no framework.

It answers "who is this?" for a request's headers, and performs login and logout,
returning the response headers to send. Adapters (ASGI, WSGI) only move headers in
and out of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    DeviceBindingRequired,
    InvalidCredentials,
    MissingCredentials,
    TokenError,
)
from ..sessions.dbsc import Admission
from .dbsc import DeviceBinding
from .hybrid import Refreshing
from .hybrid_cookies import HybridCookieTransport
from .identity import Identity, Issued
from .strategies import Strategy
from .transports import BearerTransport, CookieTransport, Transport

__all__ = ["AuthResult", "Authenticator", "LoginResult"]


@dataclass(slots=True)
class AuthResult:
    """The outcome of :meth:`Authenticator.authenticate`.

    ``identity`` is ``None`` for a guest; ``set_headers`` are response headers the
    strategy asked for (a renewed or cleared cookie); ``presented`` tells whether
    any transport found a credential at all (to tell "missing" from "invalid");
    ``refresh`` that a refresh could renew it (the middleware then redirects there);
    ``error`` why a presented credential was refused, when that is more than
    "invalid" (a DBSC-bound session without its bound cookie).
    """

    identity: Identity | None
    # Set-Cookie values carry the credential: keep them out of reprs and logs.
    set_headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    presented: bool = False
    #: A cookie held a genuine but expired access token (hybrid mode): refresh it.
    refresh: bool = False
    error: AuthenticationError | TokenError | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    """A new login: hand ``token`` to a native client, or send ``set_headers`` to a browser."""

    token: str = field(repr=False)
    expires_at: float
    identity: Identity
    set_headers: list[tuple[str, str]] = field(repr=False)
    issued: Issued = field(repr=False)


class Authenticator:
    """Authenticate requests with ``strategy`` over ``transports``.

    Transports are tried in order; the first one that finds a credential decides
    the transport. If that credential is invalid the next transports are still
    tried, and a dead cookie is cleared. Absent or bad credentials make a guest and
    never raise; :class:`~coatcheck.errors.StoreUnavailable` always propagates so an
    outage is never mistaken for "logged out".

    ``binding``: Device Bound Session Credentials (:mod:`coatcheck.auth.dbsc`) for the
    strategy's browser sessions. Logins then offer registration; a bound session is
    accepted only with its live bound cookie, whichever transport carries the session
    credential (a copied cookie sent as a bearer token is no way around it); an
    unbound one as long as the binding's policy allows.

    :raises ConfigurationError: when ``transports`` is empty, or ``binding`` binds
        another strategy.
    """

    __slots__ = ("_binding", "_refresh_transport", "_refreshing", "_strategy", "_transports")

    def __init__(
        self,
        strategy: Strategy,
        transports: Sequence[Transport] = (CookieTransport(), BearerTransport()),
        *,
        binding: DeviceBinding | None = None,
    ) -> None:
        if not transports:
            raise ConfigurationError("an Authenticator needs at least one transport")
        if binding is not None and binding.strategy is not strategy:
            raise ConfigurationError("the DeviceBinding must bind this authenticator's strategy")
        self._binding = binding
        self._strategy = strategy
        self._transports = tuple(transports)
        # Hybrid mode: decided once here, so the per-request path pays nothing for it.
        self._refreshing = strategy if isinstance(strategy, Refreshing) else None
        self._refresh_transport = next(
            (t for t in self._transports if isinstance(t, HybridCookieTransport)), None
        )

    @property
    def strategy(self) -> Strategy:
        return self._strategy

    @property
    def transports(self) -> tuple[Transport, ...]:
        return self._transports

    @property
    def binding(self) -> DeviceBinding | None:
        """The DBSC binding, when there is one (the adapters serve its endpoints)."""
        return self._binding

    @property
    def refresh_path(self) -> str | None:
        """Where browsers refresh (hybrid strategy with a refresh cookie), else ``None``."""
        if self._refreshing is None or self._refresh_transport is None:
            return None
        return self._refresh_transport.refresh_path

    async def authenticate(self, headers: Mapping[str, str]) -> AuthResult:
        """Who sent ``headers``: never raises for absent or bad credentials.

        Raises StoreUnavailable / StoreError when the strategy's store fails.
        """
        cleared: list[tuple[str, str]] | None = None
        presented = refresh = False
        error: AuthenticationError | TokenError | None = None
        binding = self._binding
        for transport in self._transports:
            token = transport.read(headers)
            if token is None:
                continue
            presented = True
            verified = await self._strategy.verify(token)
            if verified is None:
                if (
                    transport is self._refresh_transport
                    and self._refreshing is not None
                    and self._refreshing.refreshable(token)
                ):
                    # Keep the cookie: it is what tells the next request to refresh.
                    refresh = True
                    continue
                # Fail closed: a forged or dead credential makes a guest; drop it.
                dead = transport.clear()
                if dead:
                    cleared = dead if cleared is None else cleared + dead
                continue
            identity = verified.identity
            if binding is not None:
                verdict = binding.admit(identity, headers)
                if verdict is not Admission.ADMIT:
                    # Refused, but the cookie stays: the real browser is about to refresh
                    # its bound cookie and comes back with both.
                    error = DeviceBindingRequired(
                        "this session is bound to a device: its bound cookie is missing or "
                        "expired"
                        if verdict is Admission.MISSING_BOUND_COOKIE
                        else "this session was never bound to a device and may no longer "
                        "stay unbound: log in again"
                    )
                    continue
            if identity.via != transport.name:
                identity = replace(identity, via=transport.name)
            reissued = verified.reissued
            if reissued is None:
                return AuthResult(identity, cleared or [], True)
            written = transport.write(reissued, persistent=identity.persistent)
            return AuthResult(identity, (cleared + written) if cleared else written, True)
        return AuthResult(None, cleared or [], presented, refresh, error)

    async def refresh(
        self, headers: Mapping[str, str]
    ) -> tuple[Issued | None, list[tuple[str, str]]]:
        """Renew the pair from the refresh cookie: ``(new pair or None, Set-Cookie headers)``.

        A missing, invalid, reused or revoked refresh token clears both cookies (and,
        for reuse, the strategy has revoked the session). Raises StoreError /
        StoreUnavailable.
        """
        transport, refreshing = self._refresh_transport, self._refreshing
        if transport is None or refreshing is None:
            return None, []
        token = transport.read_refresh(headers)
        if token is None:
            return None, transport.clear()
        try:
            issued = await refreshing.refresh(token)
        except AuthenticationError:
            return None, transport.clear()
        return issued, transport.write(issued, persistent=issued.identity.persistent)

    async def require(self, headers: Mapping[str, str]) -> Identity:
        """The identity, or raise MissingCredentials / InvalidCredentials (and StoreError).

        A DBSC-bound session without its bound cookie raises DeviceBindingRequired.
        """
        result = await self.authenticate(headers)
        if result.identity is not None:
            return result.identity
        if result.error is not None:
            raise result.error
        if result.presented:
            raise InvalidCredentials("the credentials are invalid or have expired")
        raise MissingCredentials("log in first: no session cookie or bearer token was sent")

    async def login(
        self,
        user_id: str,
        *,
        headers: Mapping[str, str],
        data: Mapping[str, Any] | None = None,
        persistent: bool = True,
        revoke_previous: bool = True,
        ip: str = "",
    ) -> LoginResult:
        """Issue a brand-new credential for ``user_id`` (after checking the password).

        A new session every time (session fixation, OWASP ASVS V3.2.1); with
        ``revoke_previous`` the credential this request carried is revoked first.
        Raises StoreError / StoreUnavailable, CookieError for a bad cookie policy.
        """
        if revoke_previous:
            for transport in self._transports:
                old = transport.read(headers)
                if old is not None:
                    await self._strategy.revoke(old)
        issued = await self._strategy.issue(
            user_id,
            data=data,
            user_agent=headers.get("user-agent", "")[:512],
            ip=ip,
            persistent=persistent,
        )
        set_headers: list[tuple[str, str]] = []
        for transport in self._transports:
            set_headers += transport.write(issued, persistent=persistent)
        if self._binding is not None and set_headers:
            # A browser login (a cookie was written): offer it a device binding.
            set_headers += self._binding.registration_headers(issued)
        return LoginResult(
            token=issued.token,
            expires_at=issued.expires_at,
            identity=issued.identity,
            set_headers=set_headers,
            issued=issued,
        )

    async def logout(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Revoke the presented credential; the headers that clear it on the client.

        Raises StoreError / StoreUnavailable.
        """
        set_headers: list[tuple[str, str]] = []
        for transport in self._transports:
            token = transport.read(headers)
            if token is not None:
                await self._strategy.revoke(token)
            set_headers += transport.clear()
        if self._binding is not None:
            set_headers += self._binding.clear()
        return set_headers

    def __repr__(self) -> str:
        return f"Authenticator({self._strategy!r}, {list(self._transports)!r})"
