"""Read a ``Set-Cookie`` line and lint it against RFC 6265bis and what browsers enforce."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from .report import Finding

__all__ = ["KNOWN_ATTRIBUTES", "SetCookie", "lint_set_cookie", "parse_set_cookie"]

#: Attribute names browsers understand (RFC 6265bis §5.6, plus Partitioned and Priority).
KNOWN_ATTRIBUTES = frozenset(
    {
        "domain",
        "expires",
        "httponly",
        "max-age",
        "partitioned",
        "path",
        "priority",
        "samesite",
        "secure",
    }
)
_MAX_NAME_VALUE = 4096  # RFC 6265bis §5.6 step 4-5
_MAX_ATTRIBUTE = 1024  # RFC 6265bis §5.6 step 8
_MAX_AGE_CAP = 400 * 86400  # RFC 6265bis §5.5
_VALUE_RE = re.compile(r'"?[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"?')


@dataclass(slots=True)
class SetCookie:
    """The parts of a ``Set-Cookie`` line; ``attributes`` keyed by lower-case name."""

    name: str
    value: str
    attributes: dict[str, str | None] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def parse_set_cookie(line: str) -> SetCookie | None:
    """A :class:`SetCookie`, or None when there is no ``name=value``. Never raises.

    A leading ``Set-Cookie:`` is dropped. As browsers do, the last of a repeated
    attribute wins.
    """
    text = line.strip()
    if text[:11].lower() == "set-cookie:":
        text = text[11:].strip()
    first, *rest = text.split(";")
    name, eq, value = first.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    cookie = SetCookie(name=name, value=value.strip())
    for part in rest:
        key, has_value, raw = part.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key in KNOWN_ATTRIBUTES:
            cookie.attributes[key] = raw.strip() if has_value else None
        else:
            cookie.unknown.append(key)
    return cookie


def lint_set_cookie(cookie: SetCookie) -> list[Finding]:
    """What a browser would refuse or what weakens the cookie, most serious first."""
    found: list[Finding] = []
    attrs = cookie.attributes
    secure = "secure" in attrs
    same_site = (attrs.get("samesite") or "").lower() if "samesite" in attrs else None
    folded = cookie.name.lower()
    # RFC 6265bis §4.1.3 prefixes, matched case-insensitively as browsers now do (§5.7).
    if folded.startswith("__host-"):
        if not secure:
            found.append(Finding("error", "host_prefix_secure", "__Host- cookies need Secure"))
        if attrs.get("path") != "/":
            found.append(Finding("error", "host_prefix_path", "__Host- cookies need Path=/"))
        if "domain" in attrs:
            found.append(Finding("error", "host_prefix_domain", "__Host- forbids Domain"))
    elif folded.startswith("__secure-") and not secure:
        found.append(Finding("error", "secure_prefix", "__Secure- cookies need Secure"))
    if same_site == "none" and not secure:
        found.append(
            Finding("error", "samesite_none_insecure", "SameSite=None needs Secure")
        )
    if "partitioned" in attrs and not secure:
        found.append(Finding("error", "partitioned_insecure", "Partitioned cookies need Secure"))
    size = len(cookie.name.encode()) + len(cookie.value.encode())
    if size > _MAX_NAME_VALUE:
        found.append(
            Finding(
                "error", "too_large",
                f"name plus value is {size} bytes, over the {_MAX_NAME_VALUE}-byte limit: "
                "browsers drop it (RFC 6265bis §5.6)",
            )
        )
    for key, value in attrs.items():
        if value is not None and len(value) > _MAX_ATTRIBUTE:
            found.append(
                Finding("warning", "attribute_too_long", f"browsers ignore {key} over 1024 bytes")
            )
    if not secure:
        found.append(
            Finding("warning", "missing_secure", "no Secure: it also travels over plain HTTP")
        )
    if "httponly" not in attrs:
        found.append(
            Finding("warning", "missing_httponly", "no HttpOnly: scripts (and XSS) can read it")
        )
    if same_site is None:
        found.append(
            Finding("info", "missing_samesite", "no SameSite: browsers differ (Chrome: Lax)")
        )
    elif same_site not in ("lax", "strict", "none"):
        found.append(Finding("warning", "bad_samesite", "SameSite must be Lax, Strict or None"))
    _lint_lifetime(attrs, found)
    path = attrs.get("path")
    if path is not None and not path.startswith("/"):
        found.append(Finding("warning", "bad_path", "a Path not starting with '/' is ignored"))
    domain = attrs.get("domain")
    if domain and domain.startswith("."):
        found.append(Finding("info", "domain_dot", "the leading '.' in Domain is ignored"))
    if not _VALUE_RE.fullmatch(cookie.value):
        found.append(
            Finding("warning", "bad_value", "the value has characters outside cookie-octet")
        )
    for key in cookie.unknown:
        found.append(Finding("info", "unknown_attribute", f"unknown attribute {key!r} is ignored"))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


def _lint_lifetime(attrs: dict[str, str | None], found: list[Finding]) -> None:
    if "max-age" in attrs:
        raw = attrs["max-age"] or ""
        if not re.fullmatch(r"-?[0-9]+", raw):
            found.append(
                Finding("warning", "bad_max_age", "Max-Age is not an integer; browsers ignore it")
            )
        elif int(raw) > _MAX_AGE_CAP:
            found.append(Finding("info", "max_age_capped", "browsers cap Max-Age at 400 days"))
    if "expires" in attrs:
        try:
            parsedate_to_datetime(attrs["expires"] or "")
        except (TypeError, ValueError, IndexError):
            found.append(Finding("warning", "bad_expires", "Expires is not an HTTP date"))
    if "max-age" not in attrs and "expires" not in attrs:
        found.append(
            Finding("info", "session_cookie", "no Max-Age or Expires: ends when the browser closes")
        )
