"""The Authenticator: one strategy, one or more transports, no framework.

It answers "who is this?" for a request's headers, and performs login and logout,
returning the response headers to send. Adapters (ASGI, WSGI) only move headers in
and out of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError, InvalidCredentials, MissingCredentials
from .identity import Identity, Issued
from .strategies import Strategy
from .transports import BearerTransport, CookieTransport, Transport

__all__ = ["AuthResult", "Authenticator", "LoginResult"]


@dataclass(slots=True)
class AuthResult:
    """The outcome of :meth:`Authenticator.authenticate`.

    ``identity`` is ``None`` for a guest; ``set_headers`` are response headers the
    strategy asked for (a renewed or cleared cookie); ``presented`` tells whether
    any transport found a credential at all (to tell "missing" from "invalid").
    """

    identity: Identity | None
    set_headers: list[tuple[str, str]] = field(default_factory=list)
    presented: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    """A new login: hand ``token`` to a native client, or send ``set_headers`` to a browser."""

    token: str = field(repr=False)
    expires_at: float
    identity: Identity
    set_headers: list[tuple[str, str]]
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

    __slots__ = ("_strategy", "_transports")

    def __init__(
        self,
        strategy: Strategy,
        transports: Sequence[Transport] = (CookieTransport(), BearerTransport()),
    ) -> None:
        if not transports:
            raise ConfigurationError("an Authenticator needs at least one transport")
        self._strategy = strategy
        self._transports = tuple(transports)

    @property
    def strategy(self) -> Strategy:
        return self._strategy

    @property
    def transports(self) -> tuple[Transport, ...]:
        return self._transports

    async def authenticate(self, headers: Mapping[str, str]) -> AuthResult:
        """Who sent ``headers``: never raises for absent or bad credentials.

        Raises StoreUnavailable / StoreError when the strategy's store fails.
        """
        cleared: list[tuple[str, str]] | None = None
        presented = False
        for transport in self._transports:
            token = transport.read(headers)
            if token is None:
                continue
            presented = True
            verified = await self._strategy.verify(token)
            if verified is None:
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
        return AuthResult(None, cleared or [], presented)

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
