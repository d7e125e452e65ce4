"""Hybrid mode in the browser: two HttpOnly cookies and a same-origin ``next`` check.

* the **access cookie** (Path=/) carries the access JWT. It is kept as long as the
  refresh token lives (not just the JWT's 5 minutes), so that once the JWT has
  expired the browser still presents it, and the middleware can tell "expired,
  refresh me" (a genuine, expired token) from "guest" (no cookie). Over HTTPS it is
  ``__Host-`` prefixed by default, so no sibling subdomain can set or shadow it;
* the **refresh cookie** lives on a narrow Path (``/auth/refresh`` by default):
  the browser sends it to that one path only (RFC 6265bis §5.8.3), so the
  long-lived credential never travels with ordinary requests or reaches their logs.
  A narrow Path rules out ``__Host-`` (RFC 6265bis §4.1.3.2), so over HTTPS it is
  ``__Secure-``, which a sibling subdomain *can* set for the parent domain. Its own
  defence is a binding: a refresh needs the access cookie too, and both must belong
  to one session (:meth:`~coatcheck.auth.Authenticator.refresh`). A tossed refresh
  cookie then meets the victim's ``__Host-`` access cookie of another session (or
  none) and is refused; a duplicated name is refused before that.

Transparent refresh (see :class:`~coatcheck.adapters.asgi.AuthMiddleware`): a request
with an expired access cookie gets ``307 Temporary Redirect`` to the refresh path
with ``?next=<the same path>``; that path rotates the refresh token and answers
``307`` back to ``next`` with both cookies set. 307 keeps the method and body
(RFC 9110 §15.4.8), so a form POST or a ``fetch`` survives; parallel requests of one
page all land within the refresh grace window and get the same pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from ..clock import Clock, SystemClock
from ..cookies import dump_cookie, expire_cookie, find_cookie, prefixed_name
from ..errors import ConfigurationError
from ..events import note_cookie
from ..policies import CookiePolicy
from ..redirects import safe_redirect
from .hybrid import HybridIssued
from .identity import Identity, Issued
from .transports import CookieTransport

__all__ = [
    "DEFAULT_ACCESS_NAME",
    "DEFAULT_REFRESH_NAME",
    "DEFAULT_REFRESH_PATH",
    "HybridCookieTransport",
    "refresh_location",
]

#: Where the refresh cookie is sent, and where the middleware refreshes.
DEFAULT_REFRESH_PATH = "/auth/refresh"
#: The cookies' names when the caller does not name them, before their prefixes.
DEFAULT_ACCESS_NAME = "coatcheck_access"
DEFAULT_REFRESH_NAME = "coatcheck_refresh"
_SYSTEM_CLOCK = SystemClock()
_MAX_NEXT = 2048


def refresh_location(refresh_path: str, path: str, query: str = "") -> str:
    """The redirect target that refreshes and then returns to ``path?query``."""
    # The scope's path is decoded; quote it back so the allow list sees wire form.
    target = quote(path, safe="/%:@!$&'()*+,;=-._~") + ("?" + query if query else "")
    return refresh_path + "?next=" + quote(safe_redirect(target), safe="")


class HybridCookieTransport(CookieTransport):
    """The access token in ``name`` (Path=/), the refresh token in ``refresh_name``
    (Path=``refresh_path``). Both HttpOnly; "remember me" gives both a Max-Age up to
    the refresh token's expiry, otherwise both last until the browser closes.

    Unnamed cookies get the strongest prefix their policy allows
    (:func:`~coatcheck.cookies.prefixed_name`): over HTTPS ``__Host-coatcheck_access``
    and ``__Secure-coatcheck_refresh``. Naming a cookie keeps that name. Name the
    access cookie ``__Host-...`` over HTTPS: the refresh binding (module docstring)
    is only as strong as the access cookie is untossable. ``renamed_from`` and
    ``refresh_renamed_from`` are previous names, read as
    :class:`~coatcheck.auth.CookieTransport` explains (set for you when a default
    name gained its prefix); an old refresh cookie is only ever accepted together
    with an access cookie of the same session.

    :raises ConfigurationError: when ``refresh_path`` is not an absolute path, or a
        previous name equals the current one.
    :raises CookieError: when a name or the policy is illegal.
    """

    __slots__ = (
        "_refresh_clear",
        "_refresh_name",
        "_refresh_path",
        "_refresh_policy",
        "_refresh_renamed_clear",
        "_refresh_renamed_from",
    )

    def __init__(
        self,
        name: str | None = None,
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen
        *,
        refresh_name: str | None = None,
        refresh_path: str = DEFAULT_REFRESH_PATH,
        renamed_from: str | None = None,
        refresh_renamed_from: str | None = None,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        if not refresh_path.startswith("/") or refresh_path.startswith("//"):
            raise ConfigurationError("refresh_path must be an absolute path like /auth/refresh")
        if name is None:
            name = prefixed_name(DEFAULT_ACCESS_NAME, policy)
            if renamed_from is None and name != DEFAULT_ACCESS_NAME:
                renamed_from = DEFAULT_ACCESS_NAME
        super().__init__(name, policy, renamed_from=renamed_from, clock=clock)
        self._refresh_path = refresh_path
        self._refresh_policy = CookiePolicy(
            path=refresh_path,
            domain=policy.domain,
            secure=policy.secure,
            http_only=True,
            same_site=policy.same_site,
            partitioned=policy.partitioned,
        )
        if refresh_name is None:
            refresh_name = prefixed_name(DEFAULT_REFRESH_NAME, self._refresh_policy)
            if refresh_renamed_from is None and refresh_name != DEFAULT_REFRESH_NAME:
                refresh_renamed_from = DEFAULT_REFRESH_NAME
        if refresh_renamed_from is not None and refresh_renamed_from == refresh_name:
            raise ConfigurationError("refresh_renamed_from must differ from refresh_name")
        self._refresh_name = refresh_name
        self._refresh_renamed_from = refresh_renamed_from
        self._refresh_clear = ("set-cookie", expire_cookie(refresh_name, self._refresh_policy))
        self._refresh_renamed_clear = (
            []
            if refresh_renamed_from is None
            else [("set-cookie", expire_cookie(refresh_renamed_from, self._refresh_policy))]
        )

    @property
    def refresh_name(self) -> str:
        return self._refresh_name

    @property
    def refresh_path(self) -> str:
        return self._refresh_path

    @property
    def cookie_names(self) -> tuple[tuple[str, str], ...]:
        """``(use, name)`` of every cookie this transport reads or writes."""
        names = (*super().cookie_names, ("refresh", self._refresh_name))
        if self._refresh_renamed_from is not None:
            names += (("refresh (previous name)", self._refresh_renamed_from),)
        return names

    @property
    def refresh_renamed_from(self) -> str | None:
        """The refresh cookie's previous name, still read, or ``None``."""
        return self._refresh_renamed_from

    def read_refresh(self, headers: Mapping[str, str]) -> str | None:
        """The refresh cookie (sent by the browser on the refresh path only).

        ``None`` when absent, malformed or ambiguous (the name sent twice). The old
        name is read only when the current one is nowhere in the header. The caller
        must check that it belongs to the access cookie's session (the binding).
        """
        header = headers.get("cookie")
        if not header:
            return None
        if self._refresh_name in header:
            return find_cookie(header, self._refresh_name) or None
        old = self._refresh_renamed_from
        return None if old is None else find_cookie(header, old) or None

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        """Set-Cookie for the access token and, for a new pair, the refresh token."""
        if not isinstance(issued, HybridIssued):
            return super().write(issued, persistent=persistent)
        now = self._clock.now()
        max_age = max(0, int(issued.refresh_expires_at - now)) if persistent else None
        access = dump_cookie(self.cookie_name, issued.token, self.policy, max_age=max_age, now=now)
        refresh = dump_cookie(
            self._refresh_name, issued.refresh_token, self._refresh_policy, max_age=max_age, now=now
        )
        note_cookie("credential", access)
        note_cookie("refresh", refresh)
        return [("set-cookie", access), ("set-cookie", refresh)]

    def clear(self) -> list[tuple[str, str]]:
        """Set-Cookie headers that expire both cookies (and their old names)."""
        return [*super().clear(), self._refresh_clear, *self._refresh_renamed_clear]

    def clear_renamed(self) -> list[tuple[str, str]]:
        """Set-Cookie headers that expire the old names only."""
        return [*super().clear_renamed(), *self._refresh_renamed_clear]

    def move_renamed(self, credential: str | Issued, identity: Identity) -> list[tuple[str, str]]:
        """Nothing yet: the access cookie must live as long as the refresh token, which
        only a refresh knows; the next refresh (minutes away) moves both cookies."""
        return []

    def __repr__(self) -> str:
        return (
            f"HybridCookieTransport({self.cookie_name!r}, refresh={self._refresh_name!r} "
            f"on {self._refresh_path!r})"
        )
