"""Say what a pasted value is, and show its parts: the inspector's entry point."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..auth.hybrid import split_refresh_token
from ..clock import Clock, SystemClock
from ..cookies import parse_cookie
from ..interop.authjs import join_chunks
from ..sessions.ids import session_id
from .jose import inspect_jwe, inspect_jws, looks_like_jose
from .material import KeyMaterial
from .report import Finding, Report, time_info
from .setcookie import KNOWN_ATTRIBUTES, lint_set_cookie, parse_set_cookie
from .signed import inspect_django, inspect_express, inspect_itsdangerous, match_signed

__all__ = ["MAX_INPUT", "inspect_single", "inspect_value"]

#: Longest value inspected; a Cookie header of chunked Auth.js cookies fits well within it.
MAX_INPUT = 256 * 1024
_COATCHECK_TOKEN_RE = re.compile(r"[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")
_OPAQUE_RE = re.compile(r"[A-Za-z0-9_\-+/=.~%]{16,}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
# name=value, but not base64 padding ("...Q==", "...Q=.timestamp.signature").
_PAIR_RE = re.compile(r"\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=(?![=.]|$)")
_SYSTEM_CLOCK = SystemClock()
_SLOT_NOTE = (
    "the slot is the first 8 hex digits of a SHA-256 of the user id: shared by all of "
    "a user's sessions (it keeps them together in the store), not secret"
)


def inspect_value(
    value: str,
    *,
    material: KeyMaterial = KeyMaterial(),  # noqa: B008  (frozen; sharing is safe)
    clock: Clock = _SYSTEM_CLOCK,
) -> Report:
    """A :class:`Report` on ``value``: a token, a cookie value, a Cookie or Set-Cookie line.

    Never raises: what cannot be read is reported as ``unreadable`` with the reason.
    Nothing is sent anywhere; secrets and keys in ``material`` are only tried locally.
    """
    try:
        return _inspect(value, material, clock.now())
    except Exception as exc:  # the inspector's promise: a report, never a traceback
        return _unreadable(value, f"could not be read ({type(exc).__name__})")


def _unreadable(value: str, reason: str) -> Report:
    report = Report(
        kind="unreadable", title="Unrecognised value", readable=False, length=len(value)
    )
    report.findings.append(Finding("info", "unreadable", reason))
    return report


def _inspect(value: str, material: KeyMaterial, now: float) -> Report:
    if not isinstance(value, str):
        return _unreadable("", "not text")
    text = value.strip()
    if not text:
        return _unreadable(value, "the value is empty")
    if len(text) > MAX_INPUT:
        return _unreadable(text, f"longer than {MAX_INPUT} characters")
    lowered = text[:12].lower()
    if lowered.startswith("set-cookie:"):
        return _set_cookie(text, material, now)
    if lowered.startswith("cookie:"):
        return _cookie_header(text[7:].strip(), material, now)
    if lowered.startswith("bearer "):
        text = text[7:].strip()
    if lowered.startswith("authorization:"):
        text = text[14:].strip()
        if text[:7].lower() == "bearer ":
            text = text[7:].strip()
    if _PAIR_RE.match(text) and not looks_like_jose(text):
        _, _, rest = text.partition(";")
        attributes = {p.split("=", 1)[0].strip().lower() for p in rest.split(";")}
        if attributes & KNOWN_ATTRIBUTES:
            return _set_cookie(text, material, now)
        return _cookie_header(text, material, now)
    return inspect_single(text, material, now, name=None)


def inspect_single(value: str, material: KeyMaterial, now: float, *, name: str | None) -> Report:
    """A report on one credential (a cookie value or token), ``name`` hinting at its kind."""
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    jose = looks_like_jose(value)
    if jose == "jws":
        return inspect_jws(value, material, now, name)
    if jose == "jwe":
        return inspect_jwe(value, material, now, name)
    family = match_signed(value)
    if family == "express":
        return inspect_express(value, material, now, name)
    if family == "itsdangerous":
        return inspect_itsdangerous(value, material, now, name)
    if family == "django":
        return inspect_django(value, material, now, name)
    if _COATCHECK_TOKEN_RE.fullmatch(value):
        return _coatcheck_session(value, name)
    refresh = split_refresh_token(value)
    if refresh is not None:
        return _coatcheck_refresh(value, refresh, name)
    if _OPAQUE_RE.fullmatch(value):
        return _opaque(value, name)
    if name is not None:
        report = Report(kind="plain", title="Plain cookie value (not signed)", name=name)
        report.length = len(value)
        report.payload = value
        return report
    return _unreadable(value, "not a token or cookie format coatcheck knows")


def _coatcheck_session(value: str, name: str | None) -> Report:
    report = Report(
        kind="coatcheck-session",
        title="coatcheck session token (opaque)",
        name=name,
        length=len(value),
    )
    # The session id is what `coatcheck sessions list|revoke` show; it cannot be presented.
    report.fields = {"slot": value[:8], "session_id": session_id(value)}
    report.findings.append(Finding("info", "slot", _SLOT_NOTE))
    report.findings.append(
        Finding(
            "info", "server_side",
            "the part after the dot is 256 random bits: only the server's session store "
            "knows what it stands for",
        )
    )  # fmt: skip
    return report


def _coatcheck_refresh(value: str, parts: tuple[str, str], name: str | None) -> Report:
    token, generation = parts
    report = Report(
        kind="coatcheck-refresh",
        title="coatcheck hybrid refresh token",
        name=name,
        length=len(value),
    )
    report.fields = {
        "slot": token[:8],
        "session_token": token,
        "session_id": session_id(token),
        "generation_secret_length": len(generation),
    }
    report.findings.append(Finding("info", "slot", _SLOT_NOTE))
    report.findings.append(
        Finding(
            "info", "refresh_token",
            "<session token>~<generation secret>: the server keeps only hashes of the "
            "current and previous generation; presenting an older one revokes the session "
            "(reuse detection, RFC 9700 §4.14.2)",
        )
    )  # fmt: skip
    return report


def _opaque(value: str, name: str | None) -> Report:
    report = Report(kind="opaque", title="Opaque identifier", name=name, length=len(value))
    if _HEX_RE.fullmatch(value):
        alphabet, bits = "hex", 4 * len(value)
    else:
        alphabet, bits = "base64-like", 6 * len(value)
    report.fields = {"alphabet": alphabet, "max_entropy_bits": bits}
    if bits < 128:
        report.findings.append(
            Finding("warning", "short_id", f"at most {bits} bits: session ids need 128 or more")
        )
    report.findings.append(
        Finding("info", "server_side", "an opaque value means nothing without its issuer")
    )
    return report


def _cookie_header(header: str, material: KeyMaterial, now: float) -> Report:
    cookies = parse_cookie(header, max_size=MAX_INPUT, max_count=200)
    title = f"Cookie header ({len(cookies)} cookies)"
    report = Report(kind="cookie-header", title=title, length=len(header))
    seen_chunks: set[str] = set()
    for name, value in cookies.items():
        base, _, suffix = name.rpartition(".")
        if suffix.isdigit() and base:
            if base in seen_chunks:
                continue
            joined = join_chunks(cookies, base)
            if joined is not None:
                seen_chunks.add(base)
                child = inspect_single(joined, material, now, name=base)
                child.fields["chunks"] = sum(
                    1 for n in cookies if n.startswith(base + ".") and n[len(base) + 1 :].isdigit()
                )
                report.children.append(child)
                continue
        report.children.append(inspect_single(value, material, now, name=name))
    if not cookies:
        report.readable = False
        report.findings.append(Finding("info", "empty", "no name=value pairs found"))
    return report


def _set_cookie(line: str, material: KeyMaterial, now: float) -> Report:
    cookie = parse_set_cookie(line)
    if cookie is None:
        return _unreadable(line, "a Set-Cookie line needs name=value")
    report = Report(kind="set-cookie", title=f"Set-Cookie for {cookie.name!r}", name=cookie.name)
    report.length = len(cookie.name) + len(cookie.value) + 1
    # A flag attribute (Secure, HttpOnly, Partitioned) has no value: show it as set.
    attributes = {k: True if v is None else v for k, v in cookie.attributes.items()}
    report.fields = {"attributes": attributes}
    report.findings = lint_set_cookie(cookie)
    max_age = cookie.attributes.get("max-age")
    if max_age and max_age.lstrip("-").isdigit():
        info = time_info("expires (Max-Age)", now + int(max_age), now)
        if info is not None:
            report.times.append(info)
    elif cookie.attributes.get("expires"):
        moment = _http_date(cookie.attributes["expires"] or "")
        info = None if moment is None else time_info("expires", moment, now)
        if info is not None:
            report.times.append(info)
    if cookie.value:
        report.children.append(inspect_single(cookie.value, material, now, name=cookie.name))
    return report


def _http_date(text: str) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() if isinstance(moment, datetime) else None
