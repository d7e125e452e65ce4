"""Starlette's and Flask's signed session cookies, read with their old secret to move over.

Both sign with itsdangerous's ``TimestampSigner``: the cookie is
``<payload>.<timestamp>.<signature>``, the timestamp whole POSIX seconds as big-endian
bytes, the signature HMAC-SHA1 over ``<payload>.<timestamp>`` (URL-safe base64
without padding), under a key derived from the secret and a salt:

* Starlette's ``SessionMiddleware``: salt ``itsdangerous.Signer``, "django-concat"
  derivation ``sha1(salt + b"signer" + secret)``; the payload is standard base64
  (with padding) of the JSON of the session; ``max_age`` 14 days by default.
* Flask's default session (``SecureCookieSessionInterface``): salt ``cookie-session``,
  "hmac" derivation ``HMAC-SHA1(secret, salt)``; the payload is URL-safe base64 of
  the compact JSON (``.``-prefixed and zlib-compressed when that is shorter), with
  Flask's tags for non-JSON values; ``max_age`` is ``PERMANENT_SESSION_LIFETIME``, 31
  days by default. ``SECRET_KEY_FALLBACKS`` are given as more secrets.

These readers only read and verify (in constant time, with :mod:`hmac`): SHA-1 is what
the old cookies were signed with, and coatcheck never signs anything with it. A
reader's :meth:`load` never raises: a cookie that is forged, expired, or of another
kind is ``None``. The readers plug into :class:`~coatcheck.sessions.data.StoreSessions`
and :class:`~coatcheck.sessions.client.CookieSessions` as ``legacy=[...]``, which carry
the data into a coatcheck session on the visitor's first request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "FlaskSessionCookie",
    "StarletteSessionCookie",
    "derive_django_concat",
    "derive_hmac",
    "itsdangerous_signature",
]

_B64URL = r"[A-Za-z0-9_-]"
# payload . timestamp . HMAC-SHA1 (27 characters of URL-safe base64)
_COOKIE_RE = re.compile(rf"([A-Za-z0-9_+/=.-]+)\.({_B64URL}{{1,12}})\.({_B64URL}{{27}})")
#: Largest inflated Flask payload read (a cookie is at most 4 KB compressed).
_MAX_INFLATE = 1 << 20
#: Seconds a cookie may be dated in the future (clock skew between servers).
_SKEW = 60.0


def derive_hmac(secret: bytes, salt: bytes) -> bytes:
    """itsdangerous's "hmac" key derivation (Flask): ``HMAC-SHA1(secret, salt)``."""
    return hmac.new(secret, salt, hashlib.sha1).digest()


def derive_django_concat(secret: bytes, salt: bytes) -> bytes:
    """itsdangerous's "django-concat" derivation (Starlette): ``SHA1(salt + "signer" + secret)``."""
    # SHA-1 because that is what itsdangerous derives with; coatcheck only verifies here.
    return hashlib.sha1(salt + b"signer" + secret).digest()  # noqa: S324


def itsdangerous_signature(key: bytes, message: bytes) -> str:
    """The HMAC-SHA1 signature itsdangerous puts after the last ``.`` (URL-safe base64)."""
    mac = hmac.new(key, message, hashlib.sha1).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secrets(value: str | bytes | Sequence[str | bytes]) -> tuple[bytes, ...]:
    items = [value] if isinstance(value, (str, bytes)) else list(value)
    keys = tuple(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in items)
    if not keys or not all(keys):
        raise ConfigurationError("give the old secret key (and any fallbacks) to read its cookies")
    return keys


class _TimestampReader:
    """Verifies an itsdangerous ``TimestampSigner`` value; returns its payload text."""

    __slots__ = ("_keys", "_max_age")

    def __init__(
        self,
        secrets: tuple[bytes, ...],
        salt: bytes,
        derive: Callable[[bytes, bytes], bytes],
        max_age: timedelta | None,
    ) -> None:
        self._keys = tuple(derive(secret, salt) for secret in secrets)
        self._max_age = None if max_age is None else max_age.total_seconds()

    def payload(self, value: str, now: float) -> str | None:
        if not isinstance(value, str) or len(value) > 8192:
            return None
        match = _COOKIE_RE.fullmatch(value)
        if match is None:
            return None
        payload, stamp, signature = match.groups()
        message = f"{payload}.{stamp}".encode("ascii")
        valid = False
        for key in self._keys:  # every key is tried: the work does not tell which matched
            expected = itsdangerous_signature(key, message)
            valid |= hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii"))
        if not valid:
            return None
        try:
            signed_at = int.from_bytes(_b64url(stamp), "big")
        except (binascii.Error, ValueError):
            return None
        if signed_at > now + _SKEW:
            return None
        if self._max_age is not None and now - signed_at > self._max_age:
            return None
        return payload


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


class StarletteSessionCookie:
    """Reads the cookies of Starlette's ``SessionMiddleware(secret_key=...)``.

    :param secret_key: the ``secret_key`` it was given (or several, newest last).
    :param cookie_name: its ``session_cookie`` (``session`` by default).
    :param max_age: its ``max_age`` (14 days by default; ``None`` for no limit).
    :raises ConfigurationError: when no secret is given.
    """

    __slots__ = ("_reader", "cookie_name")

    def __init__(
        self,
        secret_key: str | bytes | Sequence[str | bytes],
        *,
        cookie_name: str = "session",
        max_age: timedelta | None = timedelta(days=14),
    ) -> None:
        self.cookie_name = cookie_name
        self._reader = _TimestampReader(
            _secrets(secret_key), b"itsdangerous.Signer", derive_django_concat, max_age
        )

    def load(self, value: str, now: float) -> dict[str, Any] | None:
        """The session's data, or ``None`` for anything but a valid unexpired cookie."""
        payload = self._reader.payload(value, now)
        if payload is None:
            return None
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
        return _json_object(raw)

    def __repr__(self) -> str:
        return f"StarletteSessionCookie(cookie_name={self.cookie_name!r})"


class FlaskSessionCookie:
    """Reads the cookies of Flask's default session (``app.secret_key``).

    :param secret_key: ``SECRET_KEY``, then any ``SECRET_KEY_FALLBACKS``.
    :param cookie_name: ``SESSION_COOKIE_NAME`` (``session`` by default).
    :param max_age: ``PERMANENT_SESSION_LIFETIME`` (31 days by default).
    :param salt: the interface's ``salt`` (``cookie-session`` unless changed).
    :raises ConfigurationError: when no secret is given.
    """

    __slots__ = ("_reader", "cookie_name")

    def __init__(
        self,
        secret_key: str | bytes | Sequence[str | bytes],
        *,
        cookie_name: str = "session",
        max_age: timedelta | None = timedelta(days=31),
        salt: str = "cookie-session",
    ) -> None:
        self.cookie_name = cookie_name
        self._reader = _TimestampReader(
            _secrets(secret_key), salt.encode("utf-8"), derive_hmac, max_age
        )

    def load(self, value: str, now: float) -> dict[str, Any] | None:
        """The session's data (Flask's tags undone), or ``None`` for anything else."""
        payload = self._reader.payload(value, now)
        if payload is None:
            return None
        compressed = payload.startswith(".")
        try:
            raw = _b64url(payload[1:] if compressed else payload)
        except (binascii.Error, ValueError):
            return None
        if compressed:
            inflater = zlib.decompressobj()
            try:
                raw = inflater.decompress(raw, _MAX_INFLATE)
            except zlib.error:
                return None
            if inflater.unconsumed_tail:
                return None
        data = _json_object(raw)
        if data is None:
            return None
        out: dict[str, Any] = {}
        for key, value_ in data.items():
            try:
                out[key] = _untag(value_)
            except _NotJson:
                continue  # bytes or a datetime: JSON cannot hold it, so it stays behind
        return out

    def __repr__(self) -> str:
        return f"FlaskSessionCookie(cookie_name={self.cookie_name!r})"


class _NotJson(Exception):
    """A Flask-tagged value that JSON cannot hold (bytes, datetime)."""


_TAGS = frozenset({" t", " di", " u", " m", " b", " d"})


def _untag(value: Any) -> Any:
    """A value of Flask's ``TaggedJSONSerializer`` as plain JSON.

    Tuples become lists, ``Markup`` text, a UUID its canonical text, a tagged dict a
    dict. Raises _NotJson for bytes and datetimes.
    """
    if isinstance(value, list):
        return [_untag(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in _TAGS:
            if tag == " t" and isinstance(inner, list):
                return [_untag(item) for item in inner]
            if tag == " di" and isinstance(inner, dict) and len(inner) == 1:
                # A one-key dict whose key looks like a tag: Flask wrote the key + "__".
                ((key, item),) = inner.items()
                if isinstance(key, str) and key.endswith("__"):
                    return {key[:-2]: _untag(item)}
                raise _NotJson
            if tag == " m" and isinstance(inner, str):
                return inner
            if tag == " u" and isinstance(inner, str):
                try:
                    return str(uuid.UUID(hex=inner))
                except ValueError:
                    raise _NotJson from None
            raise _NotJson
    return {k: _untag(v) for k, v in value.items()}
