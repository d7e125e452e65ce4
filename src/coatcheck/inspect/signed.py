"""HMAC-signed cookies of other frameworks: express-session, itsdangerous (Flask,
Starlette) and Django, read and (with a secret) verified with the stdlib ``hmac``.

The formats, as their libraries write them:

* express-session: ``s:<sid>.<base64 HMAC-SHA256 without '='>``, URL-encoded on the wire.
* itsdangerous ``TimestampSigner``: ``<payload>.<base64url timestamp>.<base64url HMAC>``,
  HMAC-SHA1 by default, with a key derived from the secret and a salt. Flask sessions
  use salt ``cookie-session`` with ``hmac`` key derivation and a base64url JSON payload
  (``.``-prefixed when zlib-compressed); Starlette's ``SessionMiddleware`` uses the
  default salt ``itsdangerous.Signer`` with ``django-concat`` derivation and a
  standard-base64 JSON payload.
* Django ``TimestampSigner``: ``<value>:<base62 timestamp>:<base64url HMAC>``, the HMAC
  keyed by ``sha256(salt + "signer" + secret)`` (SHA-1 before Django 3.1);
  ``signing.dumps`` makes the value base64url JSON, ``.``-prefixed when compressed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import zlib
from collections.abc import Callable
from typing import Any

from ..cookies import unquote_cookie_value
from ..errors import SignatureError
from ..interop.express import unsign_value
from ..interop.signed_sessions import (
    derive_django_concat,
    derive_hmac,
    itsdangerous_signature,
)
from .material import KeyMaterial
from .report import Finding, Report, Verification, time_info

__all__ = ["inspect_django", "inspect_express", "inspect_itsdangerous", "match_signed"]

_B64URL = r"[A-Za-z0-9_-]"
_SIG = rf"({_B64URL}{{27}}|{_B64URL}{{43}})"  # HMAC-SHA1 or HMAC-SHA256, base64url
_ITS_RE = re.compile(rf"(\.?[A-Za-z0-9_+/=-]+)\.({_B64URL}{{4,12}})\.{_SIG}")
_DJANGO_RE = re.compile(rf"(.*?)(?::([0-9A-Za-z]{{1,12}}))?:{_SIG}", re.S)
_EXPRESS_RE = re.compile(r"s:([^.]+(?:\.[^.]+)*)\.([A-Za-z0-9+/]{43})")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MAX_INFLATE = 1 << 20


def match_signed(value: str) -> str | None:
    """Which signed-cookie family ``value`` looks like, or None. Never raises."""
    if _EXPRESS_RE.fullmatch(unquote_cookie_value(value)):
        return "express"
    if _ITS_RE.fullmatch(value):
        return "itsdangerous"
    if ":" in value and _DJANGO_RE.fullmatch(value):
        return "django"
    return None


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, _MAX_INFLATE)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else out


def _decode_payload(payload: str, *, standard: bool) -> tuple[Any, bool] | None:
    """(decoded JSON, compressed?) or None; ``standard`` = standard base64 with padding."""
    try:
        if standard:
            raw = base64.b64decode(payload, validate=True)
            compressed = False
        else:
            compressed = payload.startswith(".")
            raw = _b64url(payload[1:] if compressed else payload)
            if compressed:
                inflated = _inflate(raw)
                if inflated is None:
                    return None
                raw = inflated
        return json.loads(raw), compressed
    except (ValueError, binascii.Error):
        return None


def inspect_express(value: str, material: KeyMaterial, now: float, name: str | None) -> Report:
    """An express-session ``s:<sid>.<signature>`` cookie."""
    raw = unquote_cookie_value(value)
    match = _EXPRESS_RE.fullmatch(raw)
    sid, signature = (match.group(1), match.group(2)) if match else (raw, "")
    report = Report(
        kind="express-session", title="express-session signed cookie (connect.sid)",
        name=name, length=len(value), signature=signature,
        fields={"session_id": sid, "url_encoded": raw != value},
    )
    report.findings.append(
        Finding("info", "server_side", "the data is on the Express server (Redis key sess:<id>)")
    )
    if material.secrets:
        for index, secret in enumerate(material.secrets):
            try:
                unsign_value(raw[2:], [secret])
            except SignatureError:
                continue
            label = material.secret_label(index)
            how = f"HMAC-SHA256 matches {label}"
            report.verification = Verification("verified", how, key=label)
            break
        else:
            report.verification = Verification(
                "failed", "the signature matches none of the given secrets",
                error_code="bad_signature",
            )
    return report


_ITS_SCHEMES: tuple[tuple[str, str, bytes, Callable[[bytes, bytes], bytes]], ...] = (
    ("flask-session", "Flask session cookie (itsdangerous)", b"cookie-session", derive_hmac),
    ("starlette-session", "Starlette session cookie (itsdangerous)", b"itsdangerous.Signer",
     derive_django_concat),
)


def inspect_itsdangerous(value: str, material: KeyMaterial, now: float, name: str | None) -> Report:
    """A ``payload.timestamp.signature`` cookie from Flask, Starlette or itsdangerous."""
    match = _ITS_RE.fullmatch(value)
    payload, stamp, signature = match.groups() if match else (value, "", "")
    url_safe = _decode_payload(payload, standard=False) if "=" not in payload else None
    standard = _decode_payload(payload, standard=True) if not payload.startswith(".") else None
    if url_safe and not standard:
        kind, title = _ITS_SCHEMES[0][:2]
    elif standard and not url_safe:
        kind, title = _ITS_SCHEMES[1][:2]
    else:
        kind = "itsdangerous"
        title = "itsdangerous TimestampSigner value (Flask or Starlette session)"
    decoded = url_safe or standard
    report = Report(kind=kind, title=title, name=name, length=len(value), signature=signature)
    if decoded is not None:
        report.payload, compressed = decoded
        report.fields["compressed"] = compressed
    else:
        report.fields["payload"] = payload
        report.findings.append(Finding("info", "opaque_payload", "the payload is not base64 JSON"))
    try:
        signed_at = int.from_bytes(_b64url(stamp), "big")
    except (ValueError, binascii.Error):
        signed_at = None
    if signed_at is not None:
        info = time_info("signed", float(signed_at), now)
        if info is not None:
            report.times.append(info)
    report.findings.append(
        Finding("warning", "readable", "signed, not encrypted: anyone can read the data")
    )
    if material.secrets:
        message = f"{payload}.{stamp}".encode()
        for index, secret in enumerate(material.secrets):
            for scheme_kind, scheme_title, salt, derive in _ITS_SCHEMES:
                expected = itsdangerous_signature(derive(secret.encode(), salt), message)
                if hmac.compare_digest(expected.encode(), signature.encode()):
                    label = material.secret_label(index)
                    report.kind, report.title = scheme_kind, scheme_title
                    report.verification = Verification(
                        "verified", f"HMAC-SHA1 (salt {salt.decode()!r}) matches {label}", key=label
                    )
                    return report
        report.verification = Verification(
            "failed", "no given secret matches (Flask and Starlette salts tried)",
            error_code="bad_signature",
        )
    return report


def _b62_decode(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + _B62.index(char)
    return number


def _django_signature(secret: bytes, salt: str, message: str, algorithm: str) -> str:
    digest = getattr(hashlib, algorithm)
    key = digest(f"{salt}signer".encode() + secret).digest()
    mac = hmac.new(key, message.encode(), digest).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def inspect_django(value: str, material: KeyMaterial, now: float, name: str | None) -> Report:
    """A Django ``signing`` value: ``value[:timestamp]:signature``."""
    match = _DJANGO_RE.fullmatch(value)
    body, stamp, signature = match.groups() if match else (value, None, "")
    report = Report(kind="django-signed", title="Django signed value", name=name, length=len(value))
    report.signature = signature
    decoded = _decode_payload(body, standard=False)
    if decoded is not None:
        report.payload, compressed = decoded
        report.fields["compressed"] = compressed
        report.title = "Django signed object (signing.dumps / signed_cookies session)"
    else:
        report.payload = body
    if stamp is not None:
        info = time_info("signed", float(_b62_decode(stamp)), now)
        if info is not None:
            report.times.append(info)
    if material.secrets:
        message = body if stamp is None else f"{body}:{stamp}"
        algorithm = "sha256" if len(signature) == 43 else "sha1"
        salts = ["django.core.signing", "django.contrib.sessions.backends.signed_cookies"]
        for index, secret in enumerate(material.secrets):
            candidates = [(secret.encode(), salt) for salt in salts]
            if name:
                # set_signed_cookie(): key b"django.http.cookies" + SECRET_KEY, salt = cookie name.
                candidates.append((b"django.http.cookies" + secret.encode(), name))
            for key, salt in candidates:
                expected = _django_signature(key, salt, message, algorithm)
                if hmac.compare_digest(expected.encode(), signature.encode()):
                    label = material.secret_label(index)
                    report.verification = Verification(
                        "verified",
                        f"HMAC-{algorithm.upper()} (salt {salt!r}) matches {label}",
                        key=label,
                    )
                    return report
        report.verification = Verification(
            "failed", "the signature matches none of the given secrets with Django's usual salts",
            error_code="bad_signature",
        )
    return report
