"""What every session adapter (ASGI, WSGI, Flask) shares, framework-free.

* :func:`visitor_of`: the :class:`~coatcheck.sessions.Visitor` a request is, from the
  identity and the login record the authentication middleware found;
* :class:`LoginWatch`: whether the app logged in or out during the request, read from
  the ``Set-Cookie`` it wrote for a credential cookie (the adapters see the app's
  response before the authentication middleware adds anything), so that the session's
  data follows the login to a new id whatever login code the app runs: the
  adapters' ``login`` helpers, ``Authenticator.login`` itself, FastAPI's or Flask's.
  A login through a bearer token sets no cookie; its data simply stays a guest's
  until the next request that carries both, which carries it over then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..auth.authenticator import Authenticator
from ..auth.identity import Identity
from ..auth.transports import CookieTransport
from ..cookies import check_distinct_names, find_cookie
from ..sessions.data import GUEST, SessionBackend, Visitor
from ..sessions.record import SessionRecord

__all__ = ["LoginWatch", "credential_cookie_names", "visitor_of"]


def credential_cookie_names(authenticator: Authenticator) -> list[tuple[str, str]]:
    """``(use, name)`` of every cookie the authenticator's cookie transports use."""
    return [
        pair
        for t in authenticator.transports
        if isinstance(t, CookieTransport)
        for pair in t.cookie_names
    ]


def visitor_of(identity: Identity | None, record: SessionRecord | None) -> Visitor:
    """The visitor for ``identity``; ``record`` only when it is that identity's session."""
    if identity is None:
        return GUEST
    if record is not None and record.id == identity.session_id and record.user_id:
        return Visitor(identity.user_id, record)
    return Visitor(identity.user_id)


class LoginWatch:
    """Reads logins and logouts from the credential cookies an app's response sets.

    :raises ConfigurationError: when the session-data cookie is named like a credential
        cookie (the login or refresh cookie, or a previous name of one).
    """

    __slots__ = ("_authenticator", "_names")

    def __init__(self, authenticator: Authenticator, sessions: SessionBackend) -> None:
        self._authenticator = authenticator
        # The cookie a credential travels in (for hybrid mode, the access cookie; its
        # refresh cookie never reaches ordinary paths).
        self._names = frozenset(
            t.cookie_name for t in authenticator.transports if isinstance(t, CookieTransport)
        )
        check_distinct_names(
            [*credential_cookie_names(authenticator), ("session-data", sessions.cookie_name)]
        )

    def _event(
        self, set_cookies: Iterable[str], request: Mapping[str, str]
    ) -> str | None:
        """The new credential (``""`` for a logout) the response sets, else ``None``."""
        event = None
        for value in set_cookies:
            name, eq, rest = value.partition("=")
            name = name.strip()
            if not eq or name not in self._names:
                continue
            token, _, attributes = rest.partition(";")
            token = token.strip()
            if not token or "max-age=0" in attributes.lower().replace(" ", ""):
                event = ""
            elif token != find_cookie(request.get("cookie"), name):
                event = token  # not the one presented (a renewal re-sends that one)
        return event

    async def visitor(
        self, set_cookies: Iterable[str], request: Mapping[str, str]
    ) -> Visitor | None:
        """Who the request ended as, when the app logged in or out; else ``None``.

        Raises StoreError / StoreUnavailable (checking a new session token reads it).
        """
        token = self._event(set_cookies, request)
        if token is None:
            return None
        if not token:
            return GUEST
        verified = await self._authenticator.strategy.verify(token)
        if verified is None:
            return GUEST  # fail closed: a credential that does not verify is no one
        identity = verified.identity
        return visitor_of(identity, verified.record)

    def __repr__(self) -> str:
        return f"LoginWatch({sorted(self._names)!r})"
