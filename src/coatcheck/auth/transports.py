"""Transports: where a credential travels between client and server.

* :class:`CookieTransport` for browsers: an HttpOnly cookie the browser sends by
  itself (and which therefore needs CSRF protection on unsafe requests).
* :class:`BearerTransport` for native apps and APIs: ``Authorization: Bearer``
  (RFC 6750 §2.1), which the client adds explicitly and the server never writes.

Headers in are a ``Mapping[str, str]`` with lower-case names; headers out are a
``list[tuple[str, str]]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ..clock import Clock, SystemClock
from ..cookies import dump_cookie, expire_cookie, find_cookie, prefixed_name
from ..errors import ConfigurationError
from ..events import note_cookie
from ..policies import CookiePolicy
from .identity import Identity, Issued

__all__ = ["DEFAULT_COOKIE_NAME", "BearerTransport", "CookieTransport", "Transport"]

#: The cookie's name when the caller does not name it, before its prefix (``__Host-session``).
DEFAULT_COOKIE_NAME = "session"

_SYSTEM_CLOCK = SystemClock()
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: Longest Authorization header read; a JWT coatcheck issues is far shorter.
_MAX_AUTHORIZATION = 8192


@runtime_checkable
class Transport(Protocol):
    """Reads a credential from request headers and writes it into response headers.

    ``read`` never raises: a missing or malformed credential is ``None``.
    """

    name: str

    def read(self, headers: Mapping[str, str]) -> str | None: ...

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]: ...

    def clear(self) -> list[tuple[str, str]]: ...


class CookieTransport:
    """The credential in one cookie.

    A persistent ("remember me") credential gets Max-Age and Expires up to its
    expiry; otherwise the cookie lasts until the browser closes (RFC 6265bis §5.6.1).

    **The name.** Unless you name the cookie, it is ``session`` with the strongest
    prefix ``policy`` allows (:func:`~coatcheck.cookies.prefixed_name`): over HTTPS
    (``secure``, the default) ``__Host-session``, which no sibling subdomain and no
    plain-HTTP page can set or shadow (RFC 6265bis §4.1.3.2). Naming it (any ``name``,
    even ``"session"``) keeps exactly that name. A credential whose name arrives twice
    in one ``Cookie`` header is ambiguous and read as absent (the visitor is a guest):
    see :mod:`coatcheck.cookies`.

    **Renaming without logging anyone out.** ``renamed_from`` is the cookie's previous
    name. The :class:`~coatcheck.auth.Authenticator` reads it only when the current
    name is not in the header at all, accepts what it carries only for a login older
    than this transport (``renamed_before``; the old name is never written any more,
    so a newer credential under it was put there by someone else), and then moves it
    to the current name and expires the old cookie. Until every browser has been
    moved, a visitor without the current cookie can be handed an old-name cookie of a
    login made before the rename; drop ``renamed_from`` once the old logins have
    expired. An app upgrading from ``CookieTransport()``'s old unprefixed ``session``
    keeps its logins with ``CookieTransport(renamed_from="session")``; it is not done
    for you, because ``session`` is also the default name of the session-data cookie
    (:class:`~coatcheck.sessions.StoreSessions`), which must never be read as a
    credential nor expired at logout.

    :raises CookieError: when a name or the policy is illegal (checked here, once).
    :raises ConfigurationError: when ``renamed_from`` is the current name.
    """

    __slots__ = (
        "_clear",
        "_clock",
        "_cookie_name",
        "_policy",
        "_renamed_before",
        "_renamed_clear",
        "_renamed_from",
    )

    name = "cookie"

    def __init__(
        self,
        name: str | None = None,
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen, so sharing is safe
        *,
        renamed_from: str | None = None,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        if name is None:
            name = prefixed_name(DEFAULT_COOKIE_NAME, policy)
        if renamed_from is not None and renamed_from == name:
            raise ConfigurationError("renamed_from must differ from the cookie's name")
        self._cookie_name = name
        self._policy = policy
        self._clock = clock
        # Builds and validates the expiring headers once; they never change.
        self._renamed_from = renamed_from
        self._renamed_clear = (
            [] if renamed_from is None else [("set-cookie", expire_cookie(renamed_from, policy))]
        )
        self._clear = [("set-cookie", expire_cookie(name, policy)), *self._renamed_clear]
        self._renamed_before = clock.now()

    @property
    def cookie_name(self) -> str:
        return self._cookie_name

    @property
    def policy(self) -> CookiePolicy:
        return self._policy

    @property
    def cookie_names(self) -> tuple[tuple[str, str], ...]:
        """``(use, name)`` of every cookie this transport reads or writes."""
        names: tuple[tuple[str, str], ...] = (("login", self._cookie_name),)
        if self._renamed_from is not None:
            names += (("login (previous name)", self._renamed_from),)
        return names

    @property
    def renamed_from(self) -> str | None:
        """The cookie's previous name, still read for logins before the rename, or ``None``."""
        return self._renamed_from

    @property
    def renamed_before(self) -> float:
        """Logins after this time (this transport's creation) are never read from the old name."""
        return self._renamed_before

    def read(self, headers: Mapping[str, str]) -> str | None:
        """The cookie's value; ``None`` when absent, malformed or ambiguous (sent twice)."""
        return find_cookie(headers.get("cookie"), self._cookie_name) or None

    def read_renamed(self, headers: Mapping[str, str]) -> str | None:
        """The old-name cookie, only when the current name is nowhere in the header.

        ``None`` as well when nothing was renamed, or the old name is ambiguous. The
        caller must check the login time against :attr:`renamed_before`.
        """
        old = self._renamed_from
        if old is None:
            return None
        header = headers.get("cookie")
        if not header or self._cookie_name in header:
            return None
        return find_cookie(header, old) or None

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        """The Set-Cookie header carrying ``issued.token``. Raises CookieError."""
        if not persistent:
            value = dump_cookie(self._cookie_name, issued.token, self._policy)
        else:
            now = self._clock.now()
            max_age = max(0, int(issued.expires_at - now))
            value = dump_cookie(
                self._cookie_name, issued.token, self._policy, max_age=max_age, now=now
            )
        note_cookie("credential", value)
        return [("set-cookie", value)]

    def clear(self) -> list[tuple[str, str]]:
        """Set-Cookie headers that expire the cookie (and its old name, if renamed)."""
        return list(self._clear)

    def clear_renamed(self) -> list[tuple[str, str]]:
        """Set-Cookie headers that expire the old name only (after moving a credential)."""
        return list(self._renamed_clear)

    def move_renamed(self, credential: str | Issued, identity: Identity) -> list[tuple[str, str]]:
        """Set-Cookie headers that move a credential read under the old name to the
        current one (``credential`` is its token, or a reissued one) and expire the old
        cookie. Raises CookieError.
        """
        issued = (
            credential
            if isinstance(credential, Issued)
            else Issued(
                token=credential,
                expires_at=identity.expires_at,
                session_id=identity.session_id,
                identity=identity,
            )
        )
        return self.write(issued, persistent=identity.persistent) + self.clear_renamed()

    def __repr__(self) -> str:
        return f"CookieTransport({self._cookie_name!r}, {self._policy!r})"


class BearerTransport:
    """The credential in ``Authorization: Bearer <token>`` (RFC 6750 §2.1).

    The scheme is matched case-insensitively (RFC 9110 §11.1); anything else, a
    second credential, or a token outside the b64token syntax reads as ``None``.
    The server never writes this header, so ``write`` and ``clear`` return nothing.
    """

    __slots__ = ()

    name = "bearer"

    def read(self, headers: Mapping[str, str]) -> str | None:
        header = headers.get("authorization")
        if not header or len(header) > _MAX_AUTHORIZATION:
            return None
        scheme, _, token = header.partition(" ")
        if len(scheme) != 6 or scheme.lower() != "bearer":
            return None
        token = token.strip(" ")
        if not token or not _B64TOKEN_RE.fullmatch(token):
            return None
        return token

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        return []

    def clear(self) -> list[tuple[str, str]]:
        return []

    def __repr__(self) -> str:
        return "BearerTransport()"
