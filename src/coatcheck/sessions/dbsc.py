"""Device Bound Session Credentials: the pure rules (W3C ``dbsc`` draft, Chromium 145+).

A browser that supports DBSC keeps a private key per session that never leaves the
device. After login it proves possession once (registration) and then whenever its
short-lived **bound cookie** runs out (refresh); the server answers each proof with a
new bound cookie. A copy of the cookies works only until that cookie expires: without
the key there is no refresh. Everything here is a pure function of its inputs; the
I/O shell is :mod:`coatcheck.auth.dbsc` and the HTTP shape :mod:`coatcheck.adapters`.

* :class:`DbscPolicy`: lifetimes, paths and how long a session may stay unbound.
* :class:`Binding`: what registration keeps in the session record (under
  :data:`BINDING_KEY`): the device's public key, its thumbprint, when it was bound,
  and the issue time of the newest challenge it answered (replay protection).
* :class:`Challenges`: stateless challenges, ``HMAC(session id, issue time, nonce)``;
  a proof is accepted only for a challenge of its own session, younger than
  ``challenge_ttl`` and issued after the last one accepted ("jti once").
* :class:`BoundCookies`: session mode's bound cookie, ``<exp>.<HMAC(session id, exp)>``,
  checked with one HMAC: no store read is added between refreshes.
* the wire: the ``Secure-Session-Registration`` and ``Secure-Session-Challenge``
  headers (RFC 9651 structured fields), the session instructions JSON, and
  :func:`read_sf_string` for the request headers, which Chromium sends bare.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from ..errors import ConfigurationError, DbscChallengeFailed
from ..policies import CookiePolicy
from ..secret import Secret, SecretRing
from ..signing import MAX_CLOCK_SKEW, derive_key
from ..tokens.dbsc import DBSC_ALGORITHMS

__all__ = [
    "BINDING_KEY",
    "BOUND_CLAIM",
    "END_SESSION",
    "Admission",
    "Binding",
    "BoundCookies",
    "Challenges",
    "DbscPolicy",
    "admission",
    "challenge_header",
    "cookie_attributes",
    "instructions",
    "read_sf_string",
    "registration_header",
]

#: Session-data key (reserved) holding the :class:`Binding` of a bound session.
BINDING_KEY = "_dbsc"
#: Claim of hybrid access tokens minted for a bound session: the device key's thumbprint.
BOUND_CLAIM = "dbsc"

_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What a path in an sf-string and a JSON instruction may hold: printable ASCII, no quote
# or backslash (RFC 9651 §3.3.3 would need escapes), no ';' or ',' (cookie attributes).
_PATH = re.compile(r"/[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
# A bare value (Chromium sends the proof and the session id unquoted): a JWS, an id.
_BARE = re.compile(r"[A-Za-z0-9._~+/=:-]+")
_MAX_HEADER = 8192
_NONCE = 12
_MAC = 16
_CHALLENGE_RAW = 8 + _NONCE
_CHALLENGE_CHARS = 27 + 1 + 22  # base64url of 20 and 16 bytes, and the dot


@dataclass(frozen=True, slots=True, kw_only=True)
class DbscPolicy:
    """How DBSC binds browser sessions.

    ``bound_ttl`` is the bound cookie's lifetime in session mode (a copied cookie
    works at most this long; in hybrid mode the access token is the bound cookie and
    lives the strategy's ``access_ttl``). ``unbound`` is how long after login a session
    may stay without a device key: ``None`` (the default) keeps today's behaviour for
    browsers without DBSC; a duration makes DBSC mandatory after it. ``pending`` lets a
    request the browser sent before registration finished (so without the bound
    cookie) through for that long after the key was bound.
    ``challenge_ttl`` bounds how old a signed challenge may be; ``None`` means the bound
    cookie's lifetime plus 5 minutes, so that the challenge sent ahead of time with each
    new bound cookie is still good when the browser refreshes (one round trip, not
    two), while a proof signed today is useless tomorrow. ``leeway`` absorbs
    clock skew on the bound cookie's expiry. ``exclude_paths`` are left out of the
    session's scope (static files, health checks), so the browser never holds them
    back for a refresh. ``refresh_path`` ``None`` means ``/auth/dbsc/refresh`` in
    session mode and ``<refresh cookie path>/dbsc`` in hybrid mode.

    :raises ConfigurationError: for a non-positive lifetime, an unsupported or empty
        algorithm list, a path that is not absolute, or a bad cookie name.
    """

    bound_ttl: timedelta = timedelta(minutes=10)
    unbound: timedelta | None = None
    challenge_ttl: timedelta | None = None
    pending: timedelta = timedelta(seconds=5)
    leeway: timedelta = timedelta(seconds=5)
    algorithms: tuple[str, ...] = ("ES256", "RS256")
    registration_path: str = "/auth/dbsc/register"
    refresh_path: str | None = None
    cookie_name: str = "coatcheck_bound"
    exclude_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.bound_ttl.total_seconds() < 1 or (
            self.challenge_ttl is not None and self.challenge_ttl.total_seconds() < 1
        ):
            raise ConfigurationError("DBSC bound_ttl and challenge_ttl must be at least 1 second")
        if self.unbound is not None and self.unbound.total_seconds() < 0:
            raise ConfigurationError("DBSC unbound must be None (no limit) or at least 0")
        if not timedelta(0) <= self.pending <= timedelta(minutes=1):
            raise ConfigurationError("DBSC pending must be between 0 and 1 minute")
        if not timedelta(0) <= self.leeway <= timedelta(minutes=5):
            raise ConfigurationError("DBSC leeway must be between 0 and 5 minutes")
        algorithms = tuple(self.algorithms)
        if isinstance(self.algorithms, str) or not algorithms:
            raise ConfigurationError("DBSC algorithms is a non-empty tuple such as ('ES256',)")
        unknown = set(algorithms) - DBSC_ALGORITHMS
        if unknown:
            # The draft's "none" ends up here: a session bound to no key binds nothing.
            raise ConfigurationError(
                f"unsupported DBSC algorithms: {', '.join(sorted(unknown))}; use ES256, RS256"
            )
        object.__setattr__(self, "algorithms", tuple(dict.fromkeys(algorithms)))
        paths = [self.registration_path, *self.exclude_paths]
        if self.refresh_path is not None:
            paths.append(self.refresh_path)
        for path in paths:
            if not isinstance(path, str) or not _PATH.fullmatch(path) or path.startswith("//"):
                raise ConfigurationError(
                    f"DBSC path {path!r} must be an absolute path of visible ASCII without "
                    "quotes, backslashes, ';' or ','"
                )
        object.__setattr__(self, "exclude_paths", tuple(self.exclude_paths))
        if not isinstance(self.cookie_name, str) or not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise ConfigurationError("the DBSC cookie_name must be a cookie name (RFC 6265 token)")


@dataclass(frozen=True, slots=True)
class Binding:
    """A session's device key, kept in its data under :data:`BINDING_KEY`.

    ``jwk`` holds only the public members, ``jkt`` their RFC 7638 thumbprint,
    ``bound_at`` when registration succeeded, ``last_challenge`` the issue time
    (microseconds) of the newest challenge a proof answered.
    """

    jwk: Mapping[str, str]
    alg: str
    jkt: str
    bound_at: float
    last_challenge: int = 0

    def to_data(self) -> dict[str, Any]:
        return {
            "jwk": dict(self.jwk),
            "alg": self.alg,
            "jkt": self.jkt,
            "at": self.bound_at,
            "ch": self.last_challenge,
        }

    @classmethod
    def from_data(cls, data: object) -> Binding | None:
        """The binding stored in session data, or ``None`` when there is none (never raises)."""
        if not isinstance(data, Mapping):
            return None
        jwk, alg, jkt = data.get("jwk"), data.get("alg"), data.get("jkt")
        at, last = data.get("at"), data.get("ch", 0)
        if (
            not isinstance(jwk, Mapping)
            or not all(isinstance(v, str) for v in jwk.values())
            or alg not in DBSC_ALGORITHMS
            or not isinstance(jkt, str)
            or not isinstance(at, int | float)
            or not isinstance(last, int)
            or isinstance(last, bool)
        ):
            return None
        return cls(jwk=dict(jwk), alg=str(alg), jkt=jkt, bound_at=float(at), last_challenge=last)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ring(value: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret]) -> SecretRing:
    return SecretRing.coerce(value)


class Challenges:
    """Stateless DBSC challenges, each bound to one session and one purpose.

    A challenge is ``<base64url(issue time in µs || 12 random bytes)>.<base64url(MAC)>``
    with ``MAC = HMAC-SHA256(key, purpose, session id, issue time, nonce)[:16]``, the
    key derived from the newest secret (all of them verify). Nothing is stored when one
    is issued; replay protection comes from :meth:`check`'s ``after``: the caller keeps
    the issue time of the last challenge it accepted (:attr:`Binding.last_challenge`).

    :raises ConfigurationError: for no secrets or one shorter than 32 bytes, or a
        non-positive ``ttl``.
    """

    __slots__ = ("_keys", "_last", "_ttl_us")

    def __init__(
        self,
        secrets_: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        ring = _ring(secrets_)
        self._keys = tuple(derive_key(s, b"coatcheck.dbsc.challenge") for s in ring.all)
        self._ttl_us = int(ttl.total_seconds() * 1_000_000)
        if self._ttl_us <= 0:
            raise ConfigurationError("the challenge ttl must be positive")
        self._last = 0

    @staticmethod
    def _mac(key: bytes, purpose: str, session_id: str, raw: bytes) -> bytes:
        message = purpose.encode() + b"\x00" + session_id.encode() + b"\x00" + raw
        return hmac.digest(key, message, hashlib.sha256)[:_MAC]

    def issue(self, session_id: str, purpose: str, now: float) -> str:
        """A new challenge for ``session_id`` (``purpose``: ``"register"`` or ``"refresh"``).

        Issue times are strictly increasing in this process, so that a challenge sent
        in the same microsecond as the one just answered (a coarse clock) is still
        newer than it; across processes a tie only costs the browser one more 403.
        """
        issued = max(int(now * 1_000_000), self._last + 1)
        self._last = issued
        raw = issued.to_bytes(8, "big") + secrets.token_bytes(_NONCE)
        return f"{_b64(raw)}.{_b64(self._mac(self._keys[0], purpose, session_id, raw))}"

    def check(self, challenge: str, session_id: str, purpose: str, now: float, *,
              after: int = 0) -> int:  # fmt: skip
        """The issue time (µs) of a challenge this server made for ``session_id``.

        :raises DbscChallengeFailed: not such a challenge, older than the ttl, dated
            in the future, or issued no later than ``after`` (already answered).
        """
        if (
            not isinstance(challenge, str)
            or len(challenge) != _CHALLENGE_CHARS
            or challenge[27] != "."
            or not _BARE.fullmatch(challenge)
        ):
            raise DbscChallengeFailed("this is not a challenge of this server")
        try:
            raw, mac = _unb64(challenge[:27]), _unb64(challenge[28:])
        except (binascii.Error, ValueError):
            raise DbscChallengeFailed("this is not a challenge of this server") from None
        # Canonical base64url only (RFC 4648 §3.5): one challenge, one spelling.
        if (
            len(raw) != _CHALLENGE_RAW
            or len(mac) != _MAC
            or _b64(raw) != challenge[:27]
            or _b64(mac) != challenge[28:]
        ):
            raise DbscChallengeFailed("this is not a challenge of this server")
        if not any(
            hmac.compare_digest(self._mac(key, purpose, session_id, raw), mac)
            for key in self._keys
        ):
            raise DbscChallengeFailed("the challenge was made for another session or use")
        issued = int.from_bytes(raw[:8], "big")
        now_us = int(now * 1_000_000)
        if issued > now_us + int(MAX_CLOCK_SKEW * 1_000_000):
            raise DbscChallengeFailed("the challenge is dated in the future")
        if now_us - issued > self._ttl_us:
            raise DbscChallengeFailed("the challenge has expired")
        if issued <= after:
            raise DbscChallengeFailed("this challenge (or a newer one) was already answered")
        return issued


class BoundCookies:
    """Session mode's bound cookie: ``<exp>.<base64url(HMAC(session id, exp))>``.

    Checking one costs an HMAC and no store read; the session id comes from the
    session record the request already loaded.

    :raises ConfigurationError: for no secrets or one shorter than 32 bytes.
    """

    __slots__ = ("_keys",)

    def __init__(
        self, secrets_: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret]
    ) -> None:
        ring = _ring(secrets_)
        self._keys = tuple(derive_key(s, b"coatcheck.dbsc.bound") for s in ring.all)

    @staticmethod
    def _mac(key: bytes, session_id: str, exp: str) -> bytes:
        # Per request: one HMAC and one base64 in C (32 bytes encode to 43 characters + "=").
        message = f"{session_id}\x00{exp}".encode()
        return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256"))[:43]

    def make(self, session_id: str, expires_at: float) -> str:
        """The cookie value for ``session_id``, valid until ``expires_at`` (POSIX seconds)."""
        exp = str(max(int(expires_at), 0))
        return f"{exp}.{self._mac(self._keys[0], session_id, exp).decode()}"

    def check(self, value: str | None, session_id: str, now: float, leeway: float = 0.0) -> bool:
        """Whether ``value`` is a live bound cookie of ``session_id`` (never raises)."""
        if not value or len(value) > 64:
            return False
        exp, dot, mac = value.partition(".")
        if not dot or not exp.isdigit() or len(exp) > 12 or len(mac) != 43 or not mac.isascii():
            return False
        if int(exp) + leeway <= now:
            return False
        presented = mac.encode()
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, session_id, exp), presented):
                return True
        return False


class Admission(Enum):
    """Whether an authenticated request may go on, as far as DBSC is concerned."""

    ADMIT = "admit"
    #: A bound session, but the request lacks a live bound cookie.
    MISSING_BOUND_COOKIE = "missing_bound_cookie"
    #: Never bound, and the policy's ``unbound`` period since login is over.
    UNBOUND_TOO_LONG = "unbound_too_long"


def admission(
    claims: Mapping[str, Any],
    *,
    session_id: str | None,
    auth_time: float,
    bound_cookie: str | None,
    now: float,
    policy: DbscPolicy,
    cookies: BoundCookies | None,
) -> Admission:
    """The DBSC decision for one authenticated request (pure, no I/O).

    ``claims`` are the identity's session data (session mode, ``cookies`` given) or
    access-token claims (hybrid mode, ``cookies`` ``None``: the access token is the
    bound cookie, so a bound one carries :data:`BOUND_CLAIM`).
    """
    if cookies is None:
        bound = isinstance(claims.get(BOUND_CLAIM), str)
    else:
        binding = claims.get(BINDING_KEY)
        bound = binding is not None
        if bound:
            if session_id is not None and cookies.check(
                bound_cookie, session_id, now, policy.leeway.total_seconds()
            ):
                return Admission.ADMIT
            at = binding.get("at") if isinstance(binding, Mapping) else None
            # A request the browser sent before registration finished has no bound cookie.
            if isinstance(at, int | float) and now < at + policy.pending.total_seconds():
                return Admission.ADMIT
            return Admission.MISSING_BOUND_COOKIE
    if bound or policy.unbound is None or now < auth_time + policy.unbound.total_seconds():
        return Admission.ADMIT
    return Admission.UNBOUND_TOO_LONG


# -- the wire ----------------------------------------------------------------------------


def _sf_string(value: str) -> str:
    # RFC 9651 §4.1.6: only printable ASCII, '"' and '\' escaped. Our values never hold
    # those two (paths are checked by the policy, challenges and ids are base64url/hex).
    if not all(0x20 <= ord(c) <= 0x7E for c in value):
        raise ConfigurationError("a structured-field string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def registration_header(algorithms: Collection[str], path: str, challenge: str) -> str:
    """``Secure-Session-Registration``: ``(ES256 RS256);path="...";challenge="..."``.

    An inner list of algorithm tokens with ``path`` and ``challenge`` parameters
    (DBSC "Secure-Session-Registration HTTP header field"; RFC 9651 §3.1.1).
    """
    return f"({' '.join(algorithms)});path={_sf_string(path)};challenge={_sf_string(challenge)}"


def challenge_header(challenge: str, session_id: str) -> str:
    """``Secure-Session-Challenge``: ``"<challenge>";id="<session id>"``."""
    return f"{_sf_string(challenge)};id={_sf_string(session_id)}"


def read_sf_string(value: str | None) -> str | None:
    """The string in a request's ``Secure-Session-Response`` or ``Sec-Secure-Session-Id``.

    The draft defines both as an sf-string (parameters ignored), while Chromium sends
    the bare value; both forms are read. ``None`` for anything else (never raises).
    """
    if not value or len(value) > _MAX_HEADER:
        return None
    value = value.strip(" \t")
    if value.startswith('"'):
        out: list[str] = []
        escaped = False
        for index in range(1, len(value)):
            char = value[index]
            if escaped:
                if char not in '"\\':
                    return None
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                rest = value[index + 1 :]
                # Parameters (";key=...") are ignored; anything else is not an sf-string.
                if rest and not rest.startswith(";"):
                    return None
                return "".join(out) or None
            elif not 0x20 <= ord(char) <= 0x7E:
                return None
            else:
                out.append(char)
        return None
    bare = value.partition(";")[0].strip(" \t")
    return bare if _BARE.fullmatch(bare) else None


def cookie_attributes(policy: CookiePolicy) -> str:
    """The ``attributes`` of a bound cookie as the session instructions name them.

    The browser decides whether a request carries the credential by Domain, Path,
    Secure, HttpOnly and SameSite (DBSC "Identify if missing session credential"),
    so they must be exactly the Set-Cookie's.
    """
    parts = [f"Path={policy.path}"]
    if policy.domain is not None:
        parts.append(f"Domain={policy.domain}")
    if policy.secure:
        parts.append("Secure")
    if policy.http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={policy.same_site.capitalize()}")
    return "; ".join(parts)


def instructions(
    *,
    session_id: str,
    refresh_url: str,
    credentials: Sequence[tuple[str, str]],
    exclude_paths: Sequence[str] = (),
    host: str | None = None,
) -> dict[str, Any]:
    """The session instructions JSON (DBSC "JSON Session Instruction Format").

    ``credentials`` are ``(cookie name, attributes)``; the scope is this origin
    (``include_site`` false) less ``exclude_paths`` on ``host`` (every host when it
    is ``None`` or not a plain host name).
    """
    domain = host if host is not None and _HOST.fullmatch(host) else None
    rules: list[dict[str, str]] = []
    for path in exclude_paths:
        rule = {"type": "exclude", "path": path}
        if domain is not None:
            rule["domain"] = domain
        rules.append(rule)
    return {
        "session_identifier": session_id,
        "refresh_url": refresh_url,
        "scope": {"include_site": False, "scope_specification": rules},
        "credentials": [
            {"type": "cookie", "name": name, "attributes": attributes}
            for name, attributes in credentials
        ],
    }


#: The instructions that end a session in the browser (refresh answered with it).
END_SESSION: Mapping[str, Any] = {"continue": False}
