"""The Authenticator: one strategy, one or more transports, no framework.

It answers "who is this?" for a request's headers, and performs login and logout,
returning the response headers to send. Adapters (ASGI, WSGI) only move headers in
and out of it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidCredentials,
    MissingCredentials,
)
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
    ``refresh`` that a refresh could renew it (the middleware then redirects there).
    """

    identity: Identity | None
    # Set-Cookie values carry the credential: keep them out of reprs and logs.
    set_headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    presented: bool = False
    #: A cookie held a genuine but expired access token (hybrid mode): refresh it.
    refresh: bool = False


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

    :raises ConfigurationError: when ``transports`` is empty.
    """

    __slots__ = ("_passes_via", "_refresh_transport", "_refreshing", "_strategy", "_transports")

    def __init__(
        self,
        strategy: Strategy,
        transports: Sequence[Transport] = (CookieTransport(), BearerTransport()),
    ) -> None:
        if not transports:
            raise ConfigurationError("an Authenticator needs at least one transport")
        self._strategy = strategy
        self._transports = tuple(transports)
        # A strategy that takes ``via`` makes the Identity with the transport's name
        # at once; for any other, each request pays a copy (dataclasses.replace).
        self._passes_via = _takes_via(strategy)
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
        for transport in self._transports:
            token = transport.read(headers)
            if token is None:
                continue
            presented = True
            if self._passes_via:
                verified = await self._strategy.verify(token, via=transport.name)  # type: ignore[call-arg]
            else:
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
            if identity.via != transport.name:
                identity = replace(identity, via=transport.name)
            reissued = verified.reissued
            if reissued is None:
                return AuthResult(identity, cleared or [], True)
            written = transport.write(reissued, persistent=identity.persistent)
            return AuthResult(identity, (cleared + written) if cleared else written, True)
        return AuthResult(None, cleared or [], presented, refresh)

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
        """The identity, or raise MissingCredentials / InvalidCredentials (and StoreError)."""
        result = await self.authenticate(headers)
        if result.identity is not None:
            return result.identity
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
        return set_headers

    def __repr__(self) -> str:
        return f"Authenticator({self._strategy!r}, {list(self._transports)!r})"


def _takes_via(strategy: Strategy) -> bool:
    try:
        parameters = inspect.signature(strategy.verify).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False
    via = parameters.get("via")
    return via is not None and via.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
