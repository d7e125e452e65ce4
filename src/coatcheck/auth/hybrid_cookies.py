"""Hybrid mode in the browser: two HttpOnly cookies and a same-origin ``next`` check.

* the **access cookie** (Path=/) carries the access JWT. It is kept as long as the
  refresh token lives (not just the JWT's 5 minutes), so that once the JWT has
  expired the browser still presents it, and the middleware can tell "expired,
  refresh me" (a genuine, expired token) from "guest" (no cookie);
* the **refresh cookie** lives on a narrow Path (``/auth/refresh`` by default):
  the browser sends it to that one path only (RFC 6265bis §5.8.3), so the
  long-lived credential never travels with ordinary requests or reaches their logs.

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
from ..cookies import dump_cookie, expire_cookie, parse_cookie
from ..errors import ConfigurationError
from ..policies import CookiePolicy
from ..redirects import safe_redirect
from .hybrid import HybridIssued
from .identity import Issued
from .transports import CookieTransport

__all__ = ["DEFAULT_REFRESH_PATH", "HybridCookieTransport", "refresh_location"]

#: Where the refresh cookie is sent, and where the middleware refreshes.
DEFAULT_REFRESH_PATH = "/auth/refresh"
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

    With ``policy.secure`` use ``__Secure-`` names: ``__Host-`` requires Path=/, which
    the refresh cookie deliberately does not have (RFC 6265bis §4.1.3).

    :raises ConfigurationError: when ``refresh_path`` is not an absolute path.
    :raises CookieError: when a name or the policy is illegal.
    """

    __slots__ = ("_refresh_clear", "_refresh_name", "_refresh_path", "_refresh_policy")

    def __init__(
        self,
        name: str = "coatcheck_access",
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen
        *,
        refresh_name: str = "coatcheck_refresh",
        refresh_path: str = DEFAULT_REFRESH_PATH,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        if not refresh_path.startswith("/") or refresh_path.startswith("//"):
            raise ConfigurationError("refresh_path must be an absolute path like /auth/refresh")
        super().__init__(name, policy, clock=clock)
        self._refresh_name = refresh_name
        self._refresh_path = refresh_path
        self._refresh_policy = CookiePolicy(
            path=refresh_path,
            domain=policy.domain,
            secure=policy.secure,
            http_only=True,
            same_site=policy.same_site,
            partitioned=policy.partitioned,
        )
        self._refresh_clear = ("set-cookie", expire_cookie(refresh_name, self._refresh_policy))

    @property
    def refresh_name(self) -> str:
        return self._refresh_name

    @property
    def refresh_path(self) -> str:
        return self._refresh_path

    def read_refresh(self, headers: Mapping[str, str]) -> str | None:
        """The refresh cookie (sent by the browser on the refresh path only)."""
        header = headers.get("cookie")
        if not header or self._refresh_name not in header:
            return None
        return parse_cookie(header).get(self._refresh_name) or None

    def write(self, issued: Issued, *, persistent: bool) -> list[tuple[str, str]]:
        """Set-Cookie for the access token and, for a new pair, the refresh token."""
        if not isinstance(issued, HybridIssued):
            return super().write(issued, persistent=persistent)
        now = self._clock.now()
        max_age = max(0, int(issued.refresh_expires_at - now)) if persistent else None
        return [
            (
                "set-cookie",
                dump_cookie(self.cookie_name, issued.token, self.policy, max_age=max_age, now=now),
            ),
            (
                "set-cookie",
                dump_cookie(
                    self._refresh_name,
                    issued.refresh_token,
                    self._refresh_policy,
                    max_age=max_age,
                    now=now,
                ),
            ),
        ]

    def clear(self) -> list[tuple[str, str]]:
        return [*super().clear(), self._refresh_clear]

    def __repr__(self) -> str:
        return (
            f"HybridCookieTransport({self.cookie_name!r}, refresh={self._refresh_name!r} "
            f"on {self._refresh_path!r})"
        )
