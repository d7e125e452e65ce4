"""Client-side sessions: the session mapping kept in a signed, or encrypted, cookie.

For apps that want no store at all (what Starlette's ``SessionMiddleware`` and Flask's
default session do). :class:`CookieSessions` is a
:class:`~coatcheck.sessions.data.SessionBackend` like
:class:`~coatcheck.sessions.data.StoreSessions`: the same mapping, the same JSON rules,
the same owner rules at login and logout, the same adapters.

The cookie holds ``{"d": data, "i": id, "o": owner}`` as compact JSON (``o`` only for a
logged-in owner; ``i`` a random 128-bit id that a guest's CSRF tokens bind to and that
changes at every login and logout):

* **signed** (default): :class:`~coatcheck.signing.Signer` in namespace
  ``coatcheck.session``, HMAC-SHA256 under a :class:`~coatcheck.secret.SecretRing` (the
  newest secret signs, every one verifies: rotate by appending). Readable by anyone
  who holds the cookie (base64url JSON); only the server can make one.
* **encrypted** (``encrypt=True``): a compact JWE, ``dir`` + ``A256GCM``
  (:func:`~coatcheck.tokens.encrypt_jwt`), one 256-bit key per secret, derived with
  HMAC-SHA256 under the purpose ``coatcheck.session\\0jwe``; ``kid`` picks the key.

The honest limits, which a store does not have:

* **About 4 KB.** Browsers keep at most 4096 bytes of name and value (RFC 6265bis §5.6);
  data that would not fit is a :class:`~coatcheck.errors.SessionTooLarge` at save, never
  a cookie the browser silently drops. Base64 and the signature take a third more than
  the JSON, encryption a little more again.
* **Not revocable.** Logging out clears the cookie in this browser; a copy taken earlier
  stays valid until it expires (``max_age``).
* **Replayable until it expires.** An older cookie (yesterday's cart) can be sent again
  and is accepted: nothing server-side remembers that it was superseded.
* **Last writer wins.** Concurrent requests each send a whole new cookie; the browser
  keeps the last one, so a change made by another request at the same moment is lost.
  The key-level merge needs a store.

A changed session is written at the end of the request; an unchanged one is re-sent
only when past half its ``max_age`` (sliding expiry), never on every response.
"""

from __future__ import annotations

import base64
import json
import secrets as _random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..clock import Clock, SystemClock
from ..cookies import MAX_COOKIE_SIZE, find_cookie
from ..errors import ConfigurationError, SessionTooLarge, SignatureError, TokenError
from ..policies import ClaimsPolicy, CookiePolicy
from ..secret import Secret, SecretRing
from ..signing import Signer, derive_key
from ..tokens import Key, KeyRing, decrypt_jwt, encrypt_jwt
from .data import (
    GUEST,
    Hook,
    LegacyCookie,
    M,
    Visitor,
    _CookieWriter,
    _legacy_data,
    carry_all,
    drop_all,
    transfer,
)
from .mapping import SessionMapping, dump_json

__all__ = ["CookieSessions"]

_NAMESPACE = "coatcheck.session"
_JWE_PURPOSE = b"coatcheck.session\x00jwe"
_ID_BYTES = 16


@dataclass(slots=True)
class _Open:
    """What :class:`CookieSessions` remembers between ``open`` and ``save``."""

    visitor: Visitor
    owner: str = ""
    id: str = ""
    # When the cookie read was made (POSIX seconds), 0.0 when none was.
    issued_at: float = 0.0
    clear: bool = False
    # The data changed hands at open (a guest's cookie, now logged in): re-issue.
    reissue: bool = False
    legacy: str | None = None


class CookieSessions:
    """The session mapping in a signed or encrypted cookie (module docstring: the limits).

    :param secrets: a :class:`~coatcheck.secret.SecretRing`, one secret, or several,
        oldest first (at least 32 bytes each); the newest signs or encrypts.
    :param encrypt: a JWE (``dir`` + ``A256GCM``) instead of a signed, readable value.
    :param cookie_name: by default ``coatcheck_data`` with the strongest prefix
        ``cookie_policy`` allows (``__Host-coatcheck_data`` over HTTPS); it must differ
        from every other coatcheck cookie (checked at start-up).
    :param cookie_policy: its attributes (HttpOnly, Secure, SameSite=Lax, Path=/).
    :param max_age: how long a cookie is accepted after it was last written.
    :param persistent: the cookie outlives the browser (Max-Age = ``max_age``).
    :param on_login: what a guest's data becomes at login (default: all of it).
    :param on_logout: what stays with the browser at logout (default: nothing).
    :param legacy: readers of other frameworks' session cookies to migrate from.
    :param clock: the time source.
    :raises ConfigurationError: for no or short secrets, a non-positive ``max_age``, or
        a hook that is not callable.
    :raises CookieError: for an illegal cookie name or policy.
    """

    __slots__ = (
        "_clock",
        "_cookie",
        "_jwe",
        "_legacy",
        "_max_age",
        "_on_login",
        "_on_logout",
        "_signer",
    )

    def __init__(
        self,
        secrets: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        encrypt: bool = False,
        cookie_name: str | None = None,
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen, so sharing is safe
        max_age: timedelta = timedelta(days=14),
        persistent: bool = True,
        on_login: Hook = carry_all,
        on_logout: Hook = drop_all,
        legacy: Sequence[LegacyCookie] = (),
        clock: Clock = SystemClock(),  # noqa: B008 - stateless
    ) -> None:
        ring = SecretRing.coerce(secrets)
        self._max_age = max_age.total_seconds()
        if self._max_age < 1:
            raise ConfigurationError("max_age must be at least one second")
        if not callable(on_login) or not callable(on_logout):
            raise ConfigurationError("on_login and on_logout must be functions of the data")
        self._clock = clock
        self._signer = Signer(ring, namespace=_NAMESPACE, clock=clock)
        self._jwe: KeyRing | None = None
        if encrypt:
            # Oldest first, as a KeyRing wants: the newest secret's key encrypts.
            oldest_first = ring.all[::-1]
            self._jwe = KeyRing(
                [Key.from_secret(derive_key(s, _JWE_PURPOSE), alg="dir") for s in oldest_first]
            )
        self._cookie = _CookieWriter(cookie_name, cookie_policy, persistent, clock)
        self._on_login = on_login
        self._on_logout = on_logout
        self._legacy = tuple(legacy)

    @property
    def cookie_name(self) -> str:
        return self._cookie.name

    # -- the cookie -------------------------------------------------------------------------

    def _read(self, value: str) -> tuple[dict[str, Any], float] | None:
        """The payload and when it was written, or ``None`` for anything but a valid cookie."""
        if self._jwe is not None:
            try:
                claims = decrypt_jwt(
                    value, self._jwe, encryptions=("A256GCM",), policy=_CLAIMS, clock=self._clock
                )
            except TokenError:
                return None
            issued = claims.get("iat")
            return claims, float(issued) if isinstance(issued, (int, float)) else 0.0
        try:
            raw, signed_at = self._signer.unsign_with_timestamp(value, max_age=self._max_age)
        except SignatureError:
            return None
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):  # pragma: no cover - we signed it ourselves
            return None
        return (payload, signed_at) if isinstance(payload, dict) else None

    def _write(self, data: dict[str, Any], owner: str, id_: str) -> tuple[str, str]:
        payload: dict[str, Any] = {"d": data, "i": id_}
        if owner:
            payload["o"] = owner
        body = dump_json(payload)
        if self._jwe is not None:
            value = encrypt_jwt(
                payload, self._jwe, enc="A256GCM", ttl=self._max_age, policy=_CLAIMS,
                clock=self._clock,
            )
        else:
            value = self._signer.sign(body)
        size = len(self._cookie.name) + 1 + len(value)
        if size > MAX_COOKIE_SIZE:
            raise SessionTooLarge(
                f"the session cookie would be {size} bytes ({len(body)} bytes of JSON); "
                f"browsers keep at most {MAX_COOKIE_SIZE}: keep less in the session, or "
                "keep it in a store (StoreSessions)",
                size=size,
                limit=MAX_COOKIE_SIZE,
            )
        return self._cookie.write(value, self._clock.now() + self._max_age)

    # -- the backend ------------------------------------------------------------------------

    async def open(
        self,
        headers: Mapping[str, str],
        visitor: Visitor = GUEST,
        *,
        factory: type[M] = SessionMapping,  # type: ignore[assignment]
    ) -> M:
        """The request's session mapping, from the cookie (no I/O). Never raises."""
        header = headers.get("cookie")
        value = find_cookie(header, self._cookie.name) if header else None
        state = _Open(visitor, owner=visitor.user_id)
        read = self._read(value) if value else None
        session: M | None = None
        if value and read is None:
            state.clear = True
        elif read is not None:
            payload, issued_at = read
            data = payload.get("d")
            data = data if isinstance(data, dict) else {}
            owner = payload.get("o", "")
            owner = owner if isinstance(owner, str) else ""
            id_ = payload.get("i", "")
            if owner == visitor.user_id:
                session = factory(data, new=False)
                state.id = id_ if isinstance(id_, str) else ""
                state.issued_at = issued_at
                if not owner and state.id:
                    session.binding = "cookie\x00" + state.id
            elif not owner:
                # A guest's cookie, and the visitor has logged in since: theirs now.
                session = factory()
                session.load(self._transfer(data, "", visitor.user_id).items())
                state.reissue = True
            # else: another login's data, hidden; the cookie stays for its owner.
        if session is None:
            session = factory()
        if self._legacy and read is None:
            legacy = _legacy_data(self._legacy, header, self._cookie.name, value, self._clock.now())
            if legacy is not None:
                data, name = legacy
                session.load(self._transfer(data, "", visitor.user_id).items())
                state.legacy = name if name != self._cookie.name else None
        session.handle = state
        return session

    def _transfer(self, data: dict[str, Any], owner: str, to: str) -> dict[str, Any]:
        return transfer(data, owner, to, self._on_login, self._on_logout)

    async def save(
        self, session: SessionMapping, visitor: Visitor | None = None
    ) -> list[tuple[str, str]]:
        """The ``Set-Cookie`` headers for the session as the request left it (no I/O).

        ``visitor``: who the request ended as after a login or logout (``None``: no
        change). Raises SessionValueError, SessionTooLarge.
        """
        state = session.handle
        if not isinstance(state, _Open):
            raise ConfigurationError("this session was not opened by this CookieSessions")
        headers: list[tuple[str, str]] = []
        owner = state.owner
        if visitor is not None and visitor.user_id != owner:
            data = self._transfer(dict(session), owner, visitor.user_id)
            owner, state.id, state.reissue = visitor.user_id, "", True
        else:
            changes = session.changes()
            due = state.issued_at and self._clock.now() - state.issued_at > self._max_age / 2
            if changes is None and not state.reissue and not due:
                if state.clear:
                    headers.append(self._cookie.clear())
                self._clear_legacy(state, headers)
                return headers
            data = dict(session)
            if changes is not None:
                dump_json(data)  # a value changed inside after assignment: refused here
        if data:
            headers.append(self._write(data, owner, state.id or _new_id()))
        elif state.issued_at or state.clear or state.reissue:
            headers.append(self._cookie.clear())
        self._clear_legacy(state, headers)
        return headers

    def _clear_legacy(self, state: _Open, headers: list[tuple[str, str]]) -> None:
        if state.legacy is not None:
            headers.append(self._cookie.clear(state.legacy))

    def __repr__(self) -> str:
        kind = "encrypted" if self._jwe is not None else "signed"
        return f"CookieSessions({kind}, cookie_name={self._cookie.name!r})"


# The JWE's own claims: exp checked with the default leeway; iat and jti required.
_CLAIMS = ClaimsPolicy()


def _new_id() -> str:
    return base64.urlsafe_b64encode(_random.token_bytes(_ID_BYTES)).rstrip(b"=").decode("ascii")
