"""Frozen, validated configuration groups with secure defaults.

A contradictory policy raises :class:`~coatcheck.errors.ConfigurationError` when it is
built, so misconfiguration fails at start-up rather than on the first request.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from .errors import ConfigurationError

__all__ = [
    "ClaimsPolicy",
    "CookiePolicy",
    "CsrfPolicy",
    "SameSite",
    "SessionPolicy",
    "validate_origin",
]

SameSite = Literal["lax", "strict", "none"]

# RFC 3986 §3.1 scheme, as Go's url.Parse reads it.
_ORIGIN_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# host[:port] of an origin: a DNS name, IPv4 or bracketed IPv6; no userinfo, no spaces.
_ORIGIN_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def validate_origin(origin: str) -> str:
    """``origin`` (``scheme://host[:port]``) in lower case, as an ``Origin`` header has it.

    The rules of Go's ``CrossOriginProtection.AddTrustedOrigin`` (net/http/csrf.go): a
    scheme and a host are required, and a path (even a lone trailing ``/``), a query or
    a fragment is an error, never silently dropped: ``https://example.com/`` is not an
    origin (RFC 6454 §7.1 serialises one without a path). Stricter than Go where Go
    would accept a value no browser ever sends, so it could never match: userinfo
    (``https://user@host``), an empty query or fragment (``https://host?``), a port
    that is empty or not a number, spaces and control characters.

    :raises ConfigurationError: naming the rule that ``origin`` breaks.
    """
    if not isinstance(origin, str):
        raise ConfigurationError(f"invalid origin {origin!r}: an origin is a string")
    scheme, sep, rest = origin.partition("://")
    if not sep or not _ORIGIN_SCHEME.fullmatch(scheme):
        raise ConfigurationError(
            f"invalid origin {origin!r}: scheme is required (scheme://host[:port])"
        )
    authority = rest
    for mark in "/?#":
        authority = authority.partition(mark)[0]
    if authority != rest:
        raise ConfigurationError(
            f"invalid origin {origin!r}: path, query, and fragment are not allowed "
            "(write scheme://host[:port], without a trailing '/')"
        )
    if not authority:
        raise ConfigurationError(f"invalid origin {origin!r}: host is required")
    if not _ORIGIN_HOST.fullmatch(authority):
        raise ConfigurationError(
            f"invalid origin {origin!r}: the host must be a DNS name, an IPv4 address or a "
            "bracketed IPv6 address, with an optional numeric port (no userinfo)"
        )
    return origin.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class CookiePolicy:
    """Attributes of an auth cookie. Defaults: HttpOnly, Secure, SameSite=Lax, Path=/.

    ``secure=False`` is meant only for plain-HTTP development on localhost.
    """

    path: str = "/"
    domain: str | None = None
    secure: bool = True
    http_only: bool = True
    same_site: SameSite = "lax"
    partitioned: bool = False

    def __post_init__(self) -> None:
        if self.same_site not in ("lax", "strict", "none"):
            raise ConfigurationError("same_site must be 'lax', 'strict' or 'none'")
        if self.same_site == "none" and not self.secure:
            raise ConfigurationError("SameSite=None needs secure=True (browsers drop it otherwise)")
        if self.partitioned and not self.secure:
            raise ConfigurationError("partitioned cookies need secure=True")
        if not self.path.startswith("/"):
            raise ConfigurationError("a cookie path must start with '/'")


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """Server-side session lifetimes.

    A session ends when it has been idle for ``idle_timeout`` or has lived for
    ``absolute_timeout``, whichever comes first. Activity slides the idle expiry
    forward, but the store is written at most once per ``renew_interval``.
    """

    idle_timeout: timedelta = timedelta(days=7)
    absolute_timeout: timedelta = timedelta(days=30)
    renew_interval: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if _seconds(self.idle_timeout) <= 0 or _seconds(self.absolute_timeout) <= 0:
            raise ConfigurationError("session timeouts must be positive")
        if self.idle_timeout > self.absolute_timeout:
            raise ConfigurationError("idle_timeout cannot be longer than absolute_timeout")
        if _seconds(self.renew_interval) < 0 or self.renew_interval >= self.idle_timeout:
            raise ConfigurationError(
                "renew_interval must be at least 0 and shorter than idle_timeout "
                "(or sessions would expire between two renewals)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimsPolicy:
    """What a JWT must say to be accepted, and how long issued tokens live.

    ``leeway`` absorbs clock skew between issuer and verifier (RFC 7519 §4.1.4).
    """

    issuer: str | None = None
    audience: str | None = None
    leeway: timedelta = timedelta(seconds=10)
    ttl: timedelta = timedelta(minutes=15)
    require: tuple[str, ...] = ("exp", "iat", "jti")

    def __post_init__(self) -> None:
        if _seconds(self.ttl) <= 0:
            raise ConfigurationError("token ttl must be positive")
        if not timedelta(0) <= self.leeway <= timedelta(minutes=5):
            raise ConfigurationError("leeway must be between 0 and 5 minutes")


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrfPolicy:
    """Cross-site request forgery protection.

    ``trusted_origins`` are extra origins (``https://admin.example.com``) allowed to
    send unsafe requests; ``allow_same_site`` also lets sibling subdomains do so.

    :raises ConfigurationError: for a trusted origin that is not ``scheme://host[:port]``
        (see :func:`validate_origin`: a trailing ``/`` or a path is an error).
    """

    trusted_origins: Collection[str] = field(default_factory=tuple)
    allow_same_site: bool = False
    header_name: str = "x-csrf-token"
    field_name: str = "csrf_token"
    cookie_name: str = "csrf"

    def __post_init__(self) -> None:
        if isinstance(self.trusted_origins, str):
            # A lone string would be read as a collection of one-letter origins.
            raise ConfigurationError("trusted_origins is a collection of origins, not one string")
        trusted = frozenset(validate_origin(origin) for origin in self.trusted_origins)
        object.__setattr__(self, "trusted_origins", trusted)
