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
from ..cookies import dump_cookie, expire_cookie, find_cookie
from ..policies import CookiePolicy
from .identity import Issued

__all__ = ["BearerTransport", "CookieTransport", "Transport"]

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
    The name may carry the ``__Host-`` prefix (RFC 6265bis §4.1.3.2), which
    :func:`~coatcheck.cookies.dump_cookie` enforces.

    :raises CookieError: when the name or policy is illegal (checked here, once).
    """

    __slots__ = ("_clear", "_clock", "_cookie_name", "_policy")

    name = "cookie"

    def __init__(
        self,
        name: str = "session",
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen, so sharing is safe
        *,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        self._cookie_name = name
        self._policy = policy
        self._clock = clock
        # Builds and validates the expiring header once; it never changes.
        self._clear = [("set-cookie", expire_cookie(name, policy))]

    @property
    def cookie_name(self) -> str:
        return self._cookie_name

    @property
    def policy(self) -> CookiePolicy:
        return self._policy

    def read(self, headers: Mapping[str, str]) -> str | None:
        return find_cookie(headers.get("cookie"), self._cookie_name) or None

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        """The Set-Cookie header carrying ``issued.token``. Raises CookieError."""
        if not persistent:
            return [("set-cookie", dump_cookie(self._cookie_name, issued.token, self._policy))]
        now = self._clock.now()
        max_age = max(0, int(issued.expires_at - now))
        value = dump_cookie(self._cookie_name, issued.token, self._policy, max_age=max_age, now=now)
        return [("set-cookie", value)]

    def clear(self) -> list[tuple[str, str]]:
        return list(self._clear)

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
