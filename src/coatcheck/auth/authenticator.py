"""The Authenticator: one strategy, one or more transports, no framework.

It answers "who is this?" for a request's headers, and performs login and logout,
returning the response headers to send. Adapters (ASGI, WSGI) only move headers in
and out of it.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    DeviceBindingRequired,
    InvalidCredentials,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    MissingCredentials,
    TokenError,
)
from ..events import Concealed, LoggedOut, LoginSucceeded, RefreshRefused, emit, observed
from ..sessions.dbsc import Admission
from ..sessions.record import SessionRecord
from ..tokens import unverified_parts
from ..tokens.dpop import DPoPProof
from .dbsc import DeviceBinding
from .dpop import CONFIRMATION_CLAIM, DPoPTransport, key_binding
from .hybrid import HybridIssued, HybridStrategy, Refreshing, split_refresh_token
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
    "invalid" (a DPoP proof or binding: the 401 then carries the DPoP challenge; a
    DBSC-bound session without its bound cookie).
    ``record`` the server-side session behind ``identity`` (session mode), read once
    and shared with the session mapping.
    """

    identity: Identity | None
    # Set-Cookie values carry the credential: keep them out of reprs and logs.
    set_headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    presented: bool = False
    #: A cookie held a genuine but expired access token (hybrid mode): refresh it.
    refresh: bool = False
    error: AuthenticationError | TokenError | None = None
    record: SessionRecord | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    """A new login: hand ``token`` to a native client, or send ``set_headers`` to a browser.

    ``token_type`` is ``"DPoP"`` when the token is bound to the key of the login's
    DPoP proof (thumbprint ``jkt``), else ``"Bearer"`` (RFC 9449 §5);
    ``refresh_token`` is hybrid mode's (``None`` in the other modes).
    """

    token: str = field(repr=False)
    expires_at: float
    identity: Identity
    set_headers: list[tuple[str, str]] = field(repr=False)
    issued: Issued = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    jkt: str | None = None
    refresh_token: str | None = field(default=None, repr=False)


class Authenticator:
    """Authenticate requests with ``strategy`` over ``transports``.

    Transports are tried in order; the first one that finds a credential decides
    the transport. If that credential is invalid the next transports are still
    tried, and a dead cookie is cleared. Absent or bad credentials make a guest and
    never raise; :class:`~coatcheck.errors.StoreUnavailable` always propagates so an
    outage is never mistaken for "logged out".

    DPoP (:mod:`coatcheck.auth.dpop`): with a :class:`~coatcheck.auth.DPoPTransport`
    among the transports, a login or refresh that carries a proof gets tokens bound
    to its key. A bound credential (``cnf`` in its claims or session data) is
    accepted only through that transport with a fresh proof of the same key, on
    every authenticator, so it is never accepted as a bearer token or cookie.

    ``binding``: Device Bound Session Credentials (:mod:`coatcheck.auth.dbsc`) for the
    strategy's browser sessions. Logins then offer registration; a bound session is
    accepted only with its live bound cookie, whichever transport carries the session
    credential (a copied cookie sent as a bearer token is no way around it); an
    unbound one as long as the binding's policy allows.

    Logins, logouts and refused browser refreshes are told to observers as
    :mod:`coatcheck.events` (``LoginSucceeded``, ``LoggedOut``, ``RefreshRefused``).

    :raises ConfigurationError: when ``transports`` is empty, or ``binding`` binds
        another strategy.
    """

    __slots__ = (
        "_binding",
        "_dpop",
        "_passes_via",
        "_readers",
        "_refresh_transport",
        "_refreshing",
        "_strategy",
        "_transports",
    )

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
        # A strategy that takes ``via`` makes the Identity with the transport's name
        # at once; for any other, each request pays a copy (dataclasses.replace).
        self._passes_via = _takes_via(strategy)
        # Hybrid mode: decided once here, so the per-request path pays nothing for it.
        self._refreshing = strategy if isinstance(strategy, Refreshing) else None
        self._refresh_transport = next(
            (t for t in self._transports if isinstance(t, HybridCookieTransport)), None
        )
        # Each transport with the reader of its cookie's previous name, if it was renamed.
        self._readers = tuple(
            (t, t if isinstance(t, CookieTransport) and t.renamed_from is not None else None)
            for t in self._transports
        )
        self._dpop = next((t for t in self._transports if isinstance(t, DPoPTransport)), None)

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
    def dpop(self) -> DPoPTransport | None:
        """The DPoP transport, when there is one."""
        return self._dpop

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
        dpop = self._dpop
        for transport, renamed in self._readers:
            token = transport.read(headers)
            if token is None:
                if renamed is None:
                    continue
                token = renamed.read_renamed(headers)
                if token is None:
                    continue
            else:
                renamed = None
            presented = True
            proof: DPoPProof | None = None
            if transport is dpop:
                try:
                    # The pure checks first: a bad proof costs no token check.
                    proof = dpop.proof_for(headers, access_token=token)
                except InvalidDPoPProof as exc:
                    error = exc
                    continue
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
            if renamed is not None and not 0 < identity.auth_time < renamed.renamed_before:
                # Never written under the old name by us: someone else put it there.
                dead = renamed.clear_renamed()
                cleared = dead if cleared is None else cleared + dead
                continue
            if proof is not None or CONFIRMATION_CLAIM in identity.claims or (
                dpop is not None and dpop.policy.required and transport.name == "bearer"
            ):
                refused = await self._binding_refusal(identity, proof)
                if refused is not None:
                    error = refused
                    dead = transport.clear()
                    if dead:
                        cleared = dead if cleared is None else cleared + dead
                    continue
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
            out = cleared or []
            if dpop is not None:
                out = out + dpop.response_headers(headers)
            reissued = verified.reissued
            if renamed is not None:
                # A login from before the rename: move it to the current name.
                moved = renamed.move_renamed(reissued or token, identity)
                return AuthResult(identity, out + moved, True)
            if reissued is None:
                return AuthResult(identity, out, True, False, None, verified.record)
            written = transport.write(reissued, persistent=identity.persistent)
            return AuthResult(identity, out + written, True, False, None, verified.record)
        extra = dpop.response_headers(headers) if dpop is not None else []
        return AuthResult(None, (cleared or []) + extra, presented, refresh, error)

    async def _binding_refusal(
        self, identity: Identity, proof: DPoPProof | None, *, remember: bool = True
    ) -> AuthenticationError | TokenError | None:
        """Why a verified credential must still be refused (RFC 9449 §7), or None.

        With ``remember`` the proof's ``jti`` is also spent. Raises StoreError /
        StoreUnavailable from the replay cache.
        """
        dpop = self._dpop
        bound = key_binding(identity.claims)
        if proof is None:
            if bound is None:
                # Only here for an unbound bearer token when the policy requires binding.
                return dpop.required_refusal() if dpop is not None else None
            message = "a DPoP-bound token must come as 'Authorization: DPoP' with a proof"
            if dpop is None:
                return InvalidDPoPBinding(message)
            return dpop.binding_refusal(message)
        if dpop is None:  # pragma: no cover - a proof only comes from the DPoP transport
            return InvalidDPoPBinding("no DPoP transport")
        if bound is None:
            return dpop.binding_refusal("this token is not DPoP-bound: send it as Bearer")
        if not hmac.compare_digest(bound, proof.jkt):
            return dpop.binding_refusal("the proof is signed by another key than the token's")
        if not remember:
            return None
        try:
            # Last, so only requests that passed every other check cost a store write.
            await dpop.remember(proof)
        except InvalidDPoPProof as exc:
            return exc
        return None

    async def refresh(
        self, headers: Mapping[str, str]
    ) -> tuple[Issued | None, list[tuple[str, str]]]:
        """Renew the pair from the refresh cookie: ``(new pair or None, Set-Cookie headers)``.

        The refresh cookie must come with an access cookie (expired or not) of the same
        session, each name exactly once (see :mod:`coatcheck.auth.hybrid_cookies`). A
        missing, ambiguous, unbound, invalid, reused or revoked refresh token clears
        both cookies (and, for reuse, the strategy has revoked the session). Raises
        StoreError / StoreUnavailable.
        """
        transport, refreshing = self._refresh_transport, self._refreshing
        if transport is None or refreshing is None:
            return None, []
        token = transport.read_refresh(headers)
        if token is None:
            _refused(MissingCredentials.code)
            return None, transport.clear()
        # The binding: the refresh cookie counts only beside an access cookie of its own
        # session, so a refresh cookie tossed in by a sibling subdomain (it can set a
        # __Secure- cookie, not a __Host- one) is refused, whatever the browser holds.
        access = transport.read(headers)
        renamed = access is None
        if renamed:
            access = transport.read_renamed(headers)
        bound = None if access is None else refreshing.same_session(access, token)
        if bound is None or (renamed and not 0 < bound.auth_time < transport.renamed_before):
            # Not an access cookie of the refresh cookie's own session: refused here.
            _refused(InvalidCredentials.code)
            return None, transport.clear()
        try:
            issued = await refreshing.refresh(token)  # its outcome is the strategy's event
        except AuthenticationError:
            return None, transport.clear()
        written = transport.write(issued, persistent=issued.identity.persistent)
        if renamed or transport.refresh_name not in headers.get("cookie", ""):
            written += transport.clear_renamed()  # an old name was read: expire it
        return issued, written

    async def require(self, headers: Mapping[str, str]) -> Identity:
        """The identity, or raise MissingCredentials / InvalidCredentials (and StoreError).

        A refused DPoP proof or binding raises its own error (InvalidDPoPProof,
        UseDPoPNonce, DPoPProofReplayed, InvalidDPoPBinding ...), which carries the
        DPoP challenge; a DBSC-bound session without its bound cookie raises
        DeviceBindingRequired.
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
        proof: DPoPProof | None = None,
    ) -> LoginResult:
        """Issue a brand-new credential for ``user_id`` (after checking the password).

        A new session every time (session fixation, OWASP ASVS V3.2.1); with
        ``revoke_previous`` the credential this request carried is revoked first.
        With a DPoP transport, a proof in ``headers`` (or ``proof``, already checked
        with :meth:`DPoPTransport.token_request <coatcheck.auth.DPoPTransport.token_request>`)
        binds the credential to its key: ``cnf`` in the claims or session data,
        ``token_type`` "DPoP", and no cookie is written (RFC 9449 §5, §6).

        Without a proof the credential is unbound even when the policy requires
        binding: a cookie needs none, and the policy refuses an unbound token on the
        bearer transport. An API login endpoint refuses such logins up front with
        ``token_request`` (which raises DPoPRequired).

        Raises StoreError / StoreUnavailable, CookieError for a bad cookie policy,
        InvalidDPoPProof for a bad or replayed proof.
        """
        dpop = self._dpop
        if proof is None and dpop is not None:
            proof = await dpop.token_request(headers, require=False)
        # cnf is the binding: only a checked proof may set it.
        stored = {k: v for k, v in (data or {}).items() if k != CONFIRMATION_CLAIM}
        if proof is not None:
            stored[CONFIRMATION_CLAIM] = {"jkt": proof.jkt}
        if revoke_previous:
            for transport, renamed in self._readers:
                old = transport.read(headers)
                if old is None and renamed is not None:
                    old = renamed.read_renamed(headers)
                if old is not None and (await self._may_revoke(transport, old, headers))[0]:
                    await self._strategy.revoke(old)
        issued = await self._strategy.issue(
            user_id,
            data=stored,
            user_agent=headers.get("user-agent", "")[:512],
            ip=ip,
            persistent=persistent,
        )
        set_headers: list[tuple[str, str]] = []
        if proof is None:
            # A bound credential is useless in a cookie (refused there): write none.
            for transport in self._transports:
                set_headers += transport.write(issued, persistent=persistent)
        if self._binding is not None and set_headers:
            # A browser login (a cookie was written): offer it a device binding.
            set_headers += self._binding.registration_headers(issued)
        if observed(LoginSucceeded):
            emit(
                LoginSucceeded(
                    mode=self._strategy.name,
                    bound="" if proof is None else "dpop",
                    persistent=persistent,
                    user=Concealed(user_id),
                    ip=Concealed(ip),
                )
            )
        return _login_result(issued, set_headers)

    async def refresh_bearer(
        self,
        refresh_token: str,
        *,
        headers: Mapping[str, str],
        proof: DPoPProof | None = None,
    ) -> LoginResult:
        """Native apps (hybrid mode): trade a refresh token for a new pair.

        A session bound to a DPoP key needs a proof of that key (in ``headers``, or
        ``proof`` already checked); an unbound one is bound by the first refresh that
        brings a proof (RFC 9449 §5). ``result.issued`` is the
        :class:`~coatcheck.auth.HybridIssued` with the new refresh token.

        :raises ConfigurationError: when the strategy has no refresh tokens.
        :raises InvalidDPoPBinding: a bound session without a proof of its key.
        :raises InvalidDPoPProof: a bad or replayed proof (DPoPRequired: none, and
            the policy requires one).
        :raises InvalidCredentials: or RefreshReuse, ConflictError, StoreError,
            StoreUnavailable from :meth:`HybridStrategy.refresh`.
        """
        strategy = self._strategy
        if not isinstance(strategy, HybridStrategy):
            raise ConfigurationError(f"{strategy.name} mode has no refresh tokens")
        dpop = self._dpop
        if proof is None and dpop is not None:
            proof = await dpop.token_request(headers)
        try:
            issued = await strategy.refresh(refresh_token, jkt=proof.jkt if proof else None)
        except InvalidDPoPBinding as exc:
            raise (dpop.binding_refusal(exc.message) if dpop is not None else exc) from None
        return _login_result(issued, [])

    async def logout(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Revoke the presented credential; the headers that clear it on the client.

        A DPoP-bound credential is revoked only with a valid proof of its key, so a
        copied one cannot log its owner out. Raises StoreError / StoreUnavailable.
        """
        set_headers: list[tuple[str, str]] = []
        presented = False
        user: Identity | None = None
        for transport, renamed in self._readers:
            token = transport.read(headers)
            if token is None and renamed is not None:
                token = renamed.read_renamed(headers)
            if token is not None:
                presented = True
                allowed, identity = await self._may_revoke(transport, token, headers)
                user = user or identity
                if allowed:
                    await self._strategy.revoke(token)
            set_headers += transport.clear()
        if self._binding is not None:
            set_headers += self._binding.clear()
        if presented and observed(LoggedOut):
            who = None if user is None else Concealed(user.user_id)
            emit(LoggedOut(mode=self._strategy.name, user=who))
        return set_headers

    async def _may_revoke(
        self, transport: Transport, token: str, headers: Mapping[str, str]
    ) -> tuple[bool, Identity | None]:
        """Whether ``token`` may be revoked by this request (not a bound credential
        without a proof of its key), and whose it is when it still verifies.
        Raises StoreError / StoreUnavailable."""
        proof: DPoPProof | None = None
        if transport is self._dpop:
            try:
                proof = transport.proof_for(headers, access_token=token)
            except InvalidDPoPProof:
                return False, None
        verified = await self._strategy.verify(token)
        if verified is None:
            # Dead or expired: an unbound one may go; a DPoP one must prove itself first.
            return proof is None and not await self._bound_but_unverified(token), None
        identity = verified.identity
        if proof is None and CONFIRMATION_CLAIM not in identity.claims:
            return True, identity
        # The proof's jti was spent when this request was authenticated; a replayed
        # proof is for this very method and URL, so it can only log out again.
        refused = await self._binding_refusal(identity, proof, remember=False)
        return refused is None, identity if refused is None else None

    async def _bound_but_unverified(self, token: str) -> bool:
        """Whether a token the strategy refused still belongs to a bound credential that
        revoking would end: an expired bound access JWT, or a bound session's hybrid
        refresh token. Raises StoreError / StoreUnavailable."""
        try:
            if CONFIRMATION_CLAIM in unverified_parts(token)[1]:
                return True
        except TokenError:
            pass
        strategy = self._strategy
        parts = split_refresh_token(token)
        if isinstance(strategy, HybridStrategy) and parts is not None:
            record = await strategy.manager.validate(parts[0])
            return record is not None and CONFIRMATION_CLAIM in record.data
        return False

    def __repr__(self) -> str:
        return f"Authenticator({self._strategy!r}, {list(self._transports)!r})"


def _refused(reason: str) -> None:
    if observed(RefreshRefused):
        emit(RefreshRefused(credential="refresh_token", reason=reason))


def _login_result(issued: Issued, set_headers: list[tuple[str, str]]) -> LoginResult:
    jkt = key_binding(issued.identity.claims)
    return LoginResult(
        token=issued.token,
        expires_at=issued.expires_at,
        identity=issued.identity,
        set_headers=set_headers,
        issued=issued,
        token_type="DPoP" if jkt else "Bearer",
        jkt=jkt or None,
        refresh_token=issued.refresh_token if isinstance(issued, HybridIssued) else None,
    )


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
