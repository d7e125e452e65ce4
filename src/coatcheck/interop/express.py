"""express-session cookies and session documents, so Python and Express can share sessions.

Checked against express-session 1.19, cookie-signature 1.0.7 and cookie 0.7:

* The cookie (default name ``connect.sid``) holds ``s:<sid>.<signature>``, where the
  signature is HMAC-SHA256(secret, sid) in standard base64 without ``=`` padding. The
  ``cookie`` package writes it with ``encodeURIComponent``, so it travels as
  ``s%3A<sid>.<signature with %2B and %2F>``.
* ``secret`` may be a list: the **first** signs, every one verifies (express-session's
  order, the reverse of :class:`~coatcheck.secret.SecretRing`'s oldest-first).
* The store holds the session as JSON with a ``cookie`` object (``originalMaxAge`` in
  milliseconds, ``expires`` as an ISO-8601 string, ``httpOnly``, ``path``, and
  ``secure``/``domain``/``sameSite`` only when set) next to the app's own fields.

Express secrets are often short ("keyboard cat"); they are accepted as they are,
since the point is to verify what the Express app already signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from ..cookies import dump_cookie, find_cookie, unquote_cookie_value
from ..errors import ConfigurationError, SignatureError
from ..policies import CookiePolicy

__all__ = [
    "EXPRESS_COOKIE",
    "ExpressSessionCookie",
    "format_js_date",
    "new_express_session",
    "new_session_id",
    "parse_js_date",
    "session_expires",
    "sign_value",
    "unsign_value",
]

EXPRESS_COOKIE = "connect.sid"
_SIGNED_PREFIX = "s:"
_MAX_COOKIE_VALUE = 4096


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _ring(secrets: str | bytes | Sequence[str | bytes]) -> tuple[bytes, ...]:
    ring = (secrets,) if isinstance(secrets, (str, bytes)) else tuple(secrets)
    if not ring or any(not s for s in ring):
        raise ConfigurationError("express-session needs one or more non-empty secrets")
    return tuple(_as_bytes(s) for s in ring)


def sign_value(value: str, secret: str | bytes) -> str:
    """``value.<signature>`` exactly as cookie-signature's ``sign()`` makes it."""
    mac = hmac.new(_as_bytes(secret), value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.b64encode(mac).decode().rstrip('=')}"


def unsign_value(signed: str, secrets: str | bytes | Sequence[str | bytes]) -> str:
    """The value inside ``value.<signature>`` when one of ``secrets`` signed it.

    Like cookie-signature's ``unsign()``, the value is everything before the last
    ``.``, and the whole string is compared (in constant time) with a fresh signature.

    :raises SignatureError: when no secret made this signature.
    :raises ConfigurationError: when ``secrets`` is empty.
    """
    ring = _ring(secrets)
    dot = signed.rfind(".")
    if dot < 0 or len(signed) > _MAX_COOKIE_VALUE:
        raise SignatureError("not a signed express value")
    value = signed[:dot]
    presented = signed.encode()
    for secret in ring:
        if hmac.compare_digest(sign_value(value, secret).encode(), presented):
            return value
    raise SignatureError("the express cookie signature does not match any secret")


def new_session_id() -> str:
    """A session id like express-session's: ``uid-safe`` of 24 random bytes (32 chars)."""
    return _secrets.token_urlsafe(24)


class ExpressSessionCookie:
    """Reads and writes express-session's signed ``connect.sid`` cookie.

    :raises ConfigurationError: without a secret.
    """

    __slots__ = ("_name", "_policy", "_secrets")

    def __init__(
        self,
        secrets: str | bytes | Sequence[str | bytes],
        *,
        name: str = EXPRESS_COOKIE,
        policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen, so sharing is safe)
    ) -> None:
        self._secrets = _ring(secrets)
        self._name = name
        self._policy = policy

    @property
    def name(self) -> str:
        return self._name

    def sign(self, sid: str) -> str:
        """The cookie value for ``sid`` before URL-encoding: ``s:<sid>.<signature>``."""
        return _SIGNED_PREFIX + sign_value(sid, self._secrets[0])

    def unsign(self, value: str) -> str:
        """The session id in a cookie value, raw (``s:``) or URL-encoded (``s%3A``).

        :raises SignatureError: unsigned, tampered or signed with an unknown secret.
        """
        value = unquote_cookie_value(value)
        if not value.startswith(_SIGNED_PREFIX):
            raise SignatureError("the express cookie is not signed (no 's:' prefix)")
        return unsign_value(value[len(_SIGNED_PREFIX) :], self._secrets)

    def read(self, headers: Mapping[str, str]) -> str | None:
        """The session id from request headers (lower-case names), or None. Never raises.

        ``None`` also when the cookie's name arrives twice (ambiguous: see
        :mod:`coatcheck.cookies`).
        """
        raw = find_cookie(headers.get("cookie"), self._name)
        if not raw:
            return None
        try:
            return self.unsign(raw)
        except SignatureError:
            return None

    def set_cookie(self, sid: str, *, max_age: int | None = None, now: float | None = None) -> str:
        """The ``Set-Cookie`` value carrying ``sid``, URL-encoded as the ``cookie`` package does.

        :raises CookieError: when the policy or name is not a valid cookie.
        """
        # encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) alone.
        value = quote(self.sign(sid), safe="!~*'()")
        return dump_cookie(self._name, value, self._policy, max_age=max_age, now=now)

    def __repr__(self) -> str:
        return f"ExpressSessionCookie(name={self._name!r}, <{len(self._secrets)} secrets>)"


def format_js_date(timestamp: float) -> str:
    """``timestamp`` as JavaScript's ``Date.prototype.toJSON`` writes it (millisecond UTC)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_js_date(value: object) -> float | None:
    """POSIX seconds from an ISO-8601 date string, or None. Never raises."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def session_expires(session: Mapping[str, Any]) -> float | None:
    """When a stored express session's cookie expires (POSIX seconds), or None. Never raises."""
    cookie = session.get("cookie")
    return parse_js_date(cookie.get("expires")) if isinstance(cookie, Mapping) else None


def new_express_session(
    data: Mapping[str, Any] | None = None,
    *,
    now: float,
    max_age: timedelta | None = timedelta(days=1),
    policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen, so sharing is safe)
) -> dict[str, Any]:
    """A session document shaped as express-session serialises ``req.session``.

    ``max_age`` None makes a browser-session cookie (``originalMaxAge`` and
    ``expires`` null). Fields in ``data`` named ``cookie`` are refused.

    :raises ConfigurationError: when ``data`` has a ``cookie`` field.
    """
    if data is not None and "cookie" in data:
        raise ConfigurationError("'cookie' is express-session's own field in a session")
    cookie: dict[str, Any] = {"originalMaxAge": None, "expires": None}
    if max_age is not None:
        ms = int(max_age.total_seconds() * 1000)
        cookie["originalMaxAge"] = ms
        cookie["expires"] = format_js_date(now + ms / 1000)
    if policy.secure:
        cookie["secure"] = True
    cookie["httpOnly"] = policy.http_only
    if policy.domain is not None:
        cookie["domain"] = policy.domain
    cookie["path"] = policy.path
    cookie["sameSite"] = policy.same_site
    if policy.partitioned:
        cookie["partitioned"] = True
    return {"cookie": cookie, **(data or {})}
