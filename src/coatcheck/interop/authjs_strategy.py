"""Trust a Next.js (Auth.js) login in a Python API: a verify-only strategy and a
transport that reads Auth.js's (possibly chunked) session cookie.

Use them with the :class:`~coatcheck.auth.Authenticator`::

    decoder = AuthJSDecoder(os.environ["AUTH_SECRET"], cookie_name="__Secure-authjs.session-token")
    auth = Authenticator(
        AuthJSStrategy(decoder),
        transports=(AuthJSCookieTransport(decoder.cookie_name), BearerTransport()),
    )

Auth.js owns these sessions: it issues and refreshes the cookie, so :meth:`issue`
raises and :meth:`revoke` cannot end a session early (a JWE stays valid until
``exp``); logging out clears the cookie on this origin only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth.identity import Identity, Issued, Verified
from ..cookies import expire_cookie
from ..errors import ConfigurationError, TokenError
from ..policies import CookiePolicy
from .authjs import AUTHJS_COOKIE, AuthJSDecoder, read_authjs_cookie

__all__ = ["AuthJSCookieTransport", "AuthJSStrategy"]

#: Chunks cleared on logout besides the plain cookie (a 3-chunk token is ~12 KB).
_CLEARED_CHUNKS = 3


class AuthJSStrategy:
    """Verifies Auth.js session tokens; ``Identity.user_id`` is the ``sub`` claim.

    ``Identity.mode`` is ``"authjs"``, ``session_id`` the token's ``jti``,
    ``auth_time`` its ``iat`` and ``expires_at`` its ``exp``. A token without a
    string ``user_id_claim`` is refused (``verify`` returns None).
    """

    __slots__ = ("_claim", "_decoder")

    name = "authjs"

    def __init__(self, decoder: AuthJSDecoder, *, user_id_claim: str = "sub") -> None:
        self._decoder = decoder
        self._claim = user_id_claim

    async def issue(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
        persistent: bool = True,
    ) -> Issued:
        """Not supported: the Next.js app (Auth.js) signs users in.

        :raises ConfigurationError: always.
        """
        raise ConfigurationError(
            "AuthJSStrategy only verifies: log users in through the Auth.js (Next.js) app"
        )

    async def verify(self, token: str) -> Verified | None:
        """The identity in a valid token; None when it is malformed, forged or expired."""
        try:
            claims = self._decoder.decode(token)
        except TokenError:
            return None
        user_id = claims.get(self._claim)
        if not isinstance(user_id, str) or not user_id:
            return None
        iat, exp, jti = claims.get("iat"), claims.get("exp"), claims.get("jti")
        identity = Identity(
            user_id=user_id,
            mode="authjs",
            session_id=jti if isinstance(jti, str) else None,
            claims=claims,
            auth_time=float(iat) if isinstance(iat, (int, float)) else 0.0,
            expires_at=float(exp) if isinstance(exp, (int, float)) else 0.0,
            persistent=True,
        )
        return Verified(identity=identity)

    async def revoke(self, token: str) -> None:
        """Nothing to do: an Auth.js token stays valid until ``exp`` (Auth.js has no revocation)."""

    def __repr__(self) -> str:
        return f"AuthJSStrategy({self._decoder!r})"


class AuthJSCookieTransport:
    """Reads the Auth.js session cookie, joining ``<name>.0``, ``<name>.1``...

    It never writes the cookie (Auth.js does); ``clear`` expires the cookie and its
    first chunks with ``policy`` (which must match the path and domain Auth.js used).
    """

    __slots__ = ("_cookie_name", "_policy")

    name = "cookie"

    def __init__(
        self,
        cookie_name: str = AUTHJS_COOKIE,
        *,
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen, so sharing is safe)
    ) -> None:
        self._cookie_name = cookie_name
        self._policy = policy

    def read(self, headers: Mapping[str, str]) -> str | None:
        """The (joined) token, or None (also when a name arrives twice). Never raises."""
        return read_authjs_cookie(headers, self._cookie_name)

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        """Nothing: Auth.js writes and refreshes its own cookie."""
        return []

    def clear(self) -> list[tuple[str, str]]:
        """``Set-Cookie`` headers that delete the cookie and its first chunks."""
        names = [self._cookie_name] + [f"{self._cookie_name}.{i}" for i in range(_CLEARED_CHUNKS)]
        return [("set-cookie", expire_cookie(name, self._policy)) for name in names]

    def __repr__(self) -> str:
        return f"AuthJSCookieTransport({self._cookie_name!r})"
