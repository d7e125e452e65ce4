"""Cookie headers, both ways: parse ``Cookie`` leniently, build ``Set-Cookie`` strictly.

:func:`parse_cookie` reads what browsers send and never raises: a malformed pair is
skipped, the header is read up to a bound, and the first occurrence of a name wins
(browsers list the cookie with the longest matching path first, RFC 6265bis §5.7.3).

A **credential** cookie is read differently: when its name arrives more than once, the
request is ambiguous and neither value is trusted (:func:`find_cookie` answers
``None``; ``parse_cookie(..., unique=True)`` leaves the name out). A browser sends two
cookies of one name when a sibling subdomain or a plain-HTTP page set a second one
("cookie tossing": ``Domain=example.com``, or a longer ``Path`` so it comes first), and
whichever copy a server picks, one of them is the attacker's. The ``__Host-`` prefix
stops the tossing itself (RFC 6265bis §4.1.3.2); refusing duplicates covers the names
that cannot have it. :func:`prefixed_name` gives a name the strongest prefix its
policy allows.

:func:`dump_cookie` builds a ``Set-Cookie`` value and refuses, with
:class:`~coatcheck.errors.CookieError`, anything a browser would reject or misread:
a name that is not an RFC 7230 token, a value outside RFC 6265 §4.1.1
``cookie-octet``, an attribute value with ``;`` or a control character, a name and
value over 4096 bytes (RFC 6265bis §5.6), or a broken ``__Host-``/``__Secure-``
prefix rule (RFC 6265bis §4.1.3, matched case-insensitively as browsers now do).

Values are not percent-decoded. Values coatcheck writes (session tokens, signed
values, JWTs) are all URL-safe base64 and need no escaping, and decoding would make
two spellings of one cookie equal. Express's ``cookie`` package does
``decodeURIComponent``; :func:`unquote_cookie_value` does the same for interop
(reading an ``express-session`` cookie, ``s%3A...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import formatdate
from functools import lru_cache
from urllib.parse import unquote

from .clock import SystemClock
from .errors import ConfigurationError, CookieError
from .policies import CookiePolicy

__all__ = [
    "MAX_COOKIE_COUNT",
    "MAX_COOKIE_HEADER",
    "MAX_COOKIE_SIZE",
    "check_distinct_names",
    "dump_cookie",
    "expire_cookie",
    "find_cookie",
    "parse_cookie",
    "prefixed_name",
    "unquote_cookie_value",
]

#: Longest ``Cookie`` header read; the rest is ignored (a pair cut by the bound is dropped).
MAX_COOKIE_HEADER = 8192
#: Most cookies :func:`parse_cookie` returns.
MAX_COOKIE_COUNT = 100
#: Largest name plus value a browser stores (RFC 6265bis §5.6: 4096 octets).
MAX_COOKIE_SIZE = 4096
#: Browsers ignore attribute values longer than 1024 octets (RFC 6265bis §5.6).
_MAX_ATTRIBUTE_SIZE = 1024
#: Browsers cap Max-Age and Expires at 400 days (RFC 6265bis §5.5, §5.6.1, §5.6.2).
_MAX_AGE_CAP = 400 * 24 * 3600

# RFC 7230 §3.2.6 token (cookie-name, RFC 6265bis §4.1.1).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 §4.1.1 cookie-octet: US-ASCII visible characters except DQUOTE, comma,
# semicolon and backslash; the value may be wrapped in one pair of DQUOTEs.
_VALUE_RE = re.compile(r'[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*')
_QUOTED_VALUE_RE = re.compile(r'"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"')
# RFC 6265bis §4.1.1 av-octet: any CHAR except CTLs or ";". Spaces are legal there but
# no sane path or domain has one, and browsers trim them, so they are refused too.
_ATTRIBUTE_RE = re.compile(r"[\x21-\x3a\x3c-\x7e]+")
# Control characters: a pair carrying one is skipped by the parser.
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_WHITESPACE = " \t"

_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_SYSTEM_CLOCK = SystemClock()


def parse_cookie(
    header: str | None,
    *,
    max_size: int = MAX_COOKIE_HEADER,
    max_count: int = MAX_COOKIE_COUNT,
    unique: bool = False,
) -> dict[str, str]:
    """The cookies in a ``Cookie`` header as ``{name: value}``. Never raises.

    Lenient like browsers and the npm ``cookie`` package: whitespace around names
    and values is dropped, one pair of surrounding double quotes is stripped from a
    value, a pair without ``=``, with an empty name, or with a control character is
    skipped, and the first occurrence of a name wins. Only the first ``max_size``
    characters are read and at most ``max_count`` cookies returned. Values are not
    percent-decoded (see :func:`unquote_cookie_value`).

    With ``unique=True`` (credential cookies) a name that occurs in more than one pair
    anywhere in the header, malformed pairs and pairs past the bounds included, is
    left out altogether: neither value is trusted (see the module docstring).
    """
    if not isinstance(header, str) or not header:
        return {}
    if unique:
        found = parse_cookie(header, max_size=max_size, max_count=max_count)
        for name in _repeated_names(header, found):
            del found[name]
        return found
    if len(header) > max_size:
        # Drop the pair the bound cut in two: half a value is worse than none.
        header = header[: header.rfind(";", 0, max_size + 1) + 1]
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        # Control characters are never part of the whitespace stripped below, so one
        # search of the whole pair covers the name and the value.
        if _CTL_RE.search(pair):
            continue
        name, eq, value = pair.partition("=")
        if not eq:
            continue
        name = name.strip(_WHITESPACE)
        if not name or name in cookies:
            continue
        value = value.strip(_WHITESPACE)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        if " " in name or "\t" in name:
            continue
        cookies[name] = value
        if len(cookies) >= max_count:
            break
    return cookies


def find_cookie(header: str | None, name: str) -> str | None:
    """The value of credential cookie ``name``, without building a dict. Never raises.

    ``parse_cookie(header, unique=True).get(name)``: ``None`` when the cookie is
    absent or malformed, and also when ``name`` occurs in more than one pair of the
    header (ambiguous, see the module docstring). The per-request read of one
    credential cookie: pairs that do not mention ``name`` cost one substring test.
    ``name`` must be a cookie name (a token, so no whitespace), as the transports
    check at construction. Headers near the size or count bounds take
    :func:`parse_cookie` itself, so both always agree.
    """
    if not isinstance(header, str) or not name or name not in header:
        return None
    if len(header) > MAX_COOKIE_HEADER or header.count(";") >= MAX_COOKIE_COUNT - 1:
        return parse_cookie(header, unique=True).get(name)
    seen = False
    found = None
    for pair in header.split(";"):
        if name not in pair:
            continue
        key, eq, value = pair.partition("=")
        if not eq or key.strip(_WHITESPACE) != name:
            continue
        if seen:
            return None  # a second pair of this name: ambiguous, trust neither
        seen = True
        if _CTL_RE.search(pair):
            continue
        value = value.strip(_WHITESPACE)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        found = value
    return found


def _occurrences(header: str, name: str) -> int:
    """How many pairs of the whole header are named ``name`` (well-formed or not)."""
    return sum(
        1 for pair in header.split(";") if name in pair and _pair_name(pair) == name
    )


def _repeated_names(header: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that name more than one pair of the whole header (one pass)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for pair in header.split(";"):
        name = _pair_name(pair)
        if name in seen:
            repeated.add(name)
        seen.add(name)
    return [name for name in names if name in repeated]


def _pair_name(pair: str) -> str:
    # A pair without "=" is a nameless cookie's value (RFC 6265bis §5.6 step 3), not a
    # name. A nameless cookie whose value holds "=" reads as a named pair, and counts.
    name, eq, _ = pair.partition("=")
    return name.strip(_WHITESPACE) if eq else ""


def prefixed_name(name: str, policy: CookiePolicy) -> str:
    """``name`` with the strongest prefix ``policy`` allows (RFC 6265bis §4.1.3).

    ``__Host-`` for a Secure cookie on Path=/ without Domain (no other host or path can
    set or shadow it), ``__Secure-`` for another Secure cookie (a narrow Path, or a
    Domain), and no prefix without Secure (plain-HTTP development). Used for the
    names coatcheck picks itself when the caller does not name a cookie.
    """
    if not policy.secure:
        return name
    if policy.path == "/" and policy.domain is None:
        return "__Host-" + name
    return "__Secure-" + name


def check_distinct_names(cookies: Iterable[tuple[str, str]]) -> None:
    """Refuse two of an app's cookies that share a name, at start-up.

    ``cookies`` are ``(what the cookie is for, its name)`` pairs, e.g. ``("login",
    "session")``. Two cookies of one name cannot both reach the server (the browser
    keeps one, or sends both and coatcheck trusts neither), so one of them would be
    read as the other: a session-data cookie taken for a credential, or expired with
    it at logout.

    :raises ConfigurationError: naming both uses and how to fix it.
    """
    seen: dict[str, str] = {}
    for use, name in cookies:
        other = seen.setdefault(name, use)
        if other != use:
            raise ConfigurationError(
                f"the {other} cookie and the {use} cookie are both named {name!r}: "
                f"give one of them another name"
            )


def unquote_cookie_value(value: str) -> str:
    """Percent-decode a cookie value as Express's ``cookie`` package does. Never raises.

    Like ``decodeURIComponent`` there, a value that does not decode to UTF-8 is
    returned unchanged.
    """
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def dump_cookie(
    name: str,
    value: str,
    policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen, so one shared default is safe)
    *,
    max_age: int | None = None,
    now: float | None = None,
) -> str:
    """A ``Set-Cookie`` header value for ``name=value`` with the attributes of ``policy``.

    With ``max_age`` (seconds) the cookie gets ``Max-Age`` and an ``Expires`` date
    computed from ``now`` (default: the system clock), for browsers that only know
    ``Expires``; both are capped at 400 days as browsers cap them. Without it the
    cookie lasts until the browser closes.

    :raises CookieError: for an illegal name, value or attribute, a name and value over
        4096 bytes, a negative ``max_age``, or a broken ``__Host-``/``__Secure-`` rule.
    """
    _check_name(name, policy)
    if not isinstance(value, str) or not (
        _VALUE_RE.fullmatch(value) or _QUOTED_VALUE_RE.fullmatch(value)
    ):
        raise CookieError(
            f"the value of cookie {name!r} has a character outside RFC 6265 cookie-octet "
            "(use URL-safe base64 or percent-encoding)"
        )
    if len(name) + len(value) > MAX_COOKIE_SIZE:
        raise CookieError(
            f"cookie {name!r} is over {MAX_COOKIE_SIZE} bytes (name plus value); "
            "browsers drop it (RFC 6265bis §5.6)"
        )
    attributes = _attributes(policy)
    if max_age is None:
        return f"{name}={value}{attributes}"
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise CookieError("max_age must be a non-negative number of seconds")
    max_age = min(max_age, _MAX_AGE_CAP)
    if now is None:
        now = _SYSTEM_CLOCK.now()
    try:
        expires = formatdate(now + max_age, usegmt=True)
    except (OverflowError, OSError, ValueError) as exc:
        raise CookieError("now is not a representable time") from exc
    return f"{name}={value}; Max-Age={max_age}; Expires={expires}{attributes}"


def expire_cookie(
    name: str,
    policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen, so one shared default is safe)
) -> str:
    """A ``Set-Cookie`` value that deletes cookie ``name`` (empty, ``Max-Age=0``, 1970).

    ``policy`` must give the same path and domain the cookie was set with, or the
    browser keeps it.

    :raises CookieError: for an illegal name or attribute, or a broken prefix rule.
    """
    _check_name(name, policy)
    return f"{name}=; Max-Age=0; Expires={_EPOCH}{_attributes(policy)}"


def _check_name(name: str, policy: CookiePolicy) -> None:
    if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
        raise CookieError("a cookie name must be a non-empty RFC 7230 token")
    # RFC 6265bis §4.1.3: browsers refuse a prefixed cookie that breaks the rule,
    # matching the prefix case-insensitively (§5.7 step 20-21), so enforce it the same way.
    folded = name[:9].lower()
    if folded.startswith("__host-"):
        if not policy.secure or policy.path != "/" or policy.domain is not None:
            raise CookieError(
                f"cookie {name!r}: the __Host- prefix needs Secure, Path=/ and no Domain"
            )
    elif folded.startswith("__secure-") and not policy.secure:
        raise CookieError(f"cookie {name!r}: the __Secure- prefix needs Secure")


@lru_cache(maxsize=64)
def _attributes(policy: CookiePolicy) -> str:
    # Policies are frozen and few, so the attribute string is built once per policy.
    parts = [f"; Path={_attribute(policy.path, 'path')}"]
    if policy.domain is not None:
        parts.append(f"; Domain={_attribute(policy.domain, 'domain')}")
    if policy.secure:
        parts.append("; Secure")
    if policy.http_only:
        parts.append("; HttpOnly")
    same_site = _SAME_SITE.get(policy.same_site)
    if same_site is None:
        raise CookieError("same_site must be 'lax', 'strict' or 'none'")
    # The policy checks these at construction; checked again because a wrong
    # Set-Cookie is silently dropped by browsers, the worst way to find out.
    if same_site == "None" and not policy.secure:
        raise CookieError("SameSite=None needs Secure (RFC 6265bis §5.6.7)")
    parts.append(f"; SameSite={same_site}")
    if policy.partitioned:
        if not policy.secure:
            raise CookieError("Partitioned needs Secure (CHIPS)")
        parts.append("; Partitioned")
    return "".join(parts)


def _attribute(value: str, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > _MAX_ATTRIBUTE_SIZE
        or not _ATTRIBUTE_RE.fullmatch(value)
    ):
        raise CookieError(
            f"the cookie {what} must be 1 to {_MAX_ATTRIBUTE_SIZE} visible US-ASCII "
            "characters without ';' (RFC 6265bis §4.1.1 av-octet)"
        )
    return value
