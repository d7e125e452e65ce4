"""Cross-site request forgery protection in two layers.

**Layer 1, Fetch Metadata and Origin** (:meth:`CsrfProtector.check_origin`), the
decision table of Go 1.25's ``net/http.CrossOriginProtection``:

============================  ======================================================
request                        decision
============================  ======================================================
GET, HEAD, OPTIONS             pass (safe methods must not change state)
Sec-Fetch-Site: same-origin    pass
Sec-Fetch-Site: none           pass (typed URL, bookmark: the user started it)
Sec-Fetch-Site: same-site      pass only with ``allow_same_site`` or a trusted Origin
Sec-Fetch-Site: anything else  pass only with a trusted Origin
no Sec-Fetch-Site, no Origin   pass (a non-browser client, or a browser too old for both)
Origin's host == Host header   pass (as Go), and with ``own_origin`` only if the schemes
                               agree too: ``http://host`` is refused when the app is https
Origin == own_origin           pass (the app's configured origin, e.g. behind a proxy)
Origin trusted                 pass (``CsrfPolicy.trusted_origins``)
anything else                  :class:`~coatcheck.errors.CrossOriginRequest`
============================  ======================================================

``Origin: null`` (sandboxed frames, cross-origin redirects, ``file:``) never matches a
host and cannot be trusted (trusted origins need a scheme and host), so it is refused,
as in Go. Method names are case-sensitive (RFC 9110 §9.1), so ``get`` is not safe.
Two deliberate differences from Go, neither of which lets a real browser through where
Go would not: hosts and origins are compared case-insensitively (browsers send them in
lower case anyway), and a missing Host header matches nothing (Go would compare the
Origin's host with "", letting ``Origin: null`` through on HTTP/1.0). And one addition:
Go cannot tell an ``http://`` page from an ``https://`` one on the same host, since the
Host header carries no scheme, and lets it through (relying on HSTS). When the app's own
origin is configured, its scheme is known, so an ``Origin`` of the same host with the
other scheme (a page on plain HTTP, which a network attacker can write) is refused
(RFC 6454 §5: the scheme is part of the origin).

**Layer 2, a token** for forms and browsers without Fetch Metadata: ``issue(binding)``
makes ``base64url(nonce || HMAC-SHA256(key, nonce || binding))`` with a fresh 128-bit
nonce (so a page never shows the same token twice, which defeats BREACH-style
compression attacks), and :meth:`CsrfProtector.verify_token` checks it in constant
time against the binding, trying every secret of the ring:

- *synchronizer token* (session mode): bind to the session id; the page embeds
  ``issue(session_id)`` in each form (field ``CsrfPolicy.field_name``) or JS sends it in
  the ``CsrfPolicy.header_name`` header; the server calls ``verify_token(submitted,
  session_id)``. Nothing extra is stored: the MAC ties the token to the session.
- *signed double-submit cookie* (jwt mode, nothing server-side): bind to the JWT's
  ``jti``; set ``issue(jti)`` as a readable cookie (``CsrfPolicy.cookie_name``; use the
  ``__Host-`` prefix over HTTPS so a sibling subdomain cannot toss its own), let the form
  or JS echo it, and call :meth:`CsrfProtector.verify_double_submit`: the two copies must
  be equal *and* bound to the ``jti``. A token planted by an attacker is bound to the
  attacker's ``jti``, not the victim's, so it fails (naive double submit would not).
  Issue a new cookie whenever a new JWT (new ``jti``) is issued.

A binding must not be empty: anyone could mint a token for the empty binding on their
own visit. For a form shown before login, bind to a random pre-session id kept in a
``__Host-`` cookie. :mod:`coatcheck.csrf.rules` applies both layers to a whole
request (which check, which binding, which cookie), for every adapter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, CrossOriginRequest, CsrfTokenMismatch, MissingCsrfToken
from ..policies import CsrfPolicy
from ..secret import Secret, SecretRing
from ..signing import derive_key

__all__ = ["CsrfProtector", "is_safe_method"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NONCE_BYTES = 16
_TOKEN_CHARS = 64  # (16-byte nonce + 32-byte MAC) in unpadded base64: no spare bits
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{64}")
_BAD_ORIGIN_RE = re.compile(r"[\x00-\x20\x7f]")
# Its own key purpose, disjoint from every Signer namespace ("coatcheck.signer\0...").
_PURPOSE = b"coatcheck.csrf\x00token"


def is_safe_method(method: str) -> bool:
    """Whether ``method`` is GET, HEAD or OPTIONS, the methods CSRF checks let through.

    Exactly Go's ``CrossOriginProtection`` list, compared case-sensitively (RFC 9110 §9.1).
    """
    return method in _SAFE_METHODS


class CsrfProtector:
    """The two CSRF layers: :meth:`check_origin`, then a token bound to the session.

    :param secrets: a :class:`~coatcheck.secret.SecretRing`, one secret, or a sequence of
        secrets oldest first (the newest issues tokens, all verify).
    :param policy: trusted origins, same-site handling, and field, header and cookie names.
    :param clock: kept for time-limited tokens; the tokens themselves last as long as
        what they are bound to.
    :raises ConfigurationError: for no secrets or a secret shorter than 32 bytes.
    """

    __slots__ = ("_allow_same_site", "_clock", "_keys", "_policy", "_trusted")

    def __init__(
        self,
        secrets: SecretRing | str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        policy: CsrfPolicy = CsrfPolicy(),  # noqa: B008  (frozen, so one shared default is safe)
        clock: Clock = SystemClock(),  # noqa: B008  (stateless, so one shared default is safe)
    ) -> None:
        ring = SecretRing.coerce(secrets)
        self._keys = tuple(derive_key(secret, _PURPOSE) for secret in ring.all)
        self._policy = policy
        self._trusted = frozenset(policy.trusted_origins)
        self._allow_same_site = policy.allow_same_site
        self._clock = clock

    @property
    def policy(self) -> CsrfPolicy:
        return self._policy

    def check_origin(self, method: str, headers: Mapping[str, str], *, own_origin: str) -> None:
        """Layer 1: refuse an unsafe request that a browser says comes from elsewhere.

        ``headers`` has lower-case names; ``own_origin`` is the app's
        ``scheme://host[:port]`` in lower case, or ``""`` when unknown (then, as in Go,
        an ``Origin`` is compared with the Host header without its scheme). The decision
        table is in the module docstring.

        :raises CrossOriginRequest: when Sec-Fetch-Site or Origin says another origin.
        """
        if method in _SAFE_METHODS:
            return
        site = headers.get("sec-fetch-site", "")
        origin = headers.get("origin", "")
        if site:
            if site == "same-origin" or site == "none":
                return
            if site == "same-site" and self._allow_same_site:
                return
            if origin and origin.lower() in self._trusted:
                return
            raise CrossOriginRequest("cross-origin request refused (Sec-Fetch-Site)")
        if not origin:
            return
        folded = origin.lower()
        if folded == own_origin.lower() or folded in self._trusted:
            return
        host = headers.get("host", "")
        # Go stops at the host; knowing our own scheme, an http:// page is not us (RFC 6454).
        own_scheme = own_origin[: own_origin.find(":") + 1].lower()
        if host and _host_of(folded) == host.lower() and folded.startswith(own_scheme):
            return
        raise CrossOriginRequest(
            "cross-origin request refused: no Sec-Fetch-Site, and Origin matches neither "
            "Host nor a trusted origin"
        )

    def issue(self, binding: str) -> str:
        """A new CSRF token bound to ``binding`` (a session id, or a JWT's ``jti``).

        :raises ConfigurationError: for an empty binding (see the module docstring).
        """
        if not binding:
            raise ConfigurationError("a CSRF token must be bound to a session id or jti")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        mac = hmac.digest(self._keys[0], nonce + _encode(binding), hashlib.sha256)
        return base64.urlsafe_b64encode(nonce + mac).decode("ascii")

    def verify_token(self, submitted: str | None, binding: str) -> None:
        """Layer 2: check a submitted token against ``binding``, in constant time.

        :raises MissingCsrfToken: when no token was submitted.
        :raises CsrfTokenMismatch: when it is malformed, forged, bound to another
            session or jti, or ``binding`` is empty.
        """
        if not submitted:
            raise MissingCsrfToken("the request carries no CSRF token")
        if (
            not binding
            or not isinstance(submitted, str)
            or len(submitted) != _TOKEN_CHARS
            or not _TOKEN_RE.fullmatch(submitted)
        ):
            raise CsrfTokenMismatch("the CSRF token is invalid")
        try:
            raw = base64.urlsafe_b64decode(submitted)
        except (binascii.Error, ValueError) as exc:  # unreachable after the regex; kept safe
            raise CsrfTokenMismatch("the CSRF token is invalid") from exc
        nonce, mac = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        message = nonce + _encode(binding)
        # Every secret is tried even after a match would be found: the work done does
        # not tell which secret (or whether any) matched.
        valid = False
        for key in self._keys:
            valid |= hmac.compare_digest(hmac.digest(key, message, hashlib.sha256), mac)
        if not valid:
            raise CsrfTokenMismatch("the CSRF token is invalid or belongs to another session")

    def verify_double_submit(
        self, cookie_token: str | None, submitted: str | None, binding: str
    ) -> None:
        """Signed double submit: the cookie's token and the echoed one agree and fit ``binding``.

        :raises MissingCsrfToken: when the cookie or the echoed token is absent.
        :raises CsrfTokenMismatch: when they differ or are not bound to ``binding``.
        """
        if not cookie_token or not submitted:
            raise MissingCsrfToken("the request lacks the CSRF cookie or its echo")
        if not isinstance(cookie_token, str) or not isinstance(submitted, str):
            raise CsrfTokenMismatch("the CSRF token is invalid")
        if not hmac.compare_digest(_encode(cookie_token), _encode(submitted)):
            raise CsrfTokenMismatch("the CSRF cookie and the submitted token differ")
        self.verify_token(submitted, binding)

    def __repr__(self) -> str:
        return f"CsrfProtector(secrets=<{len(self._keys)}>, policy={self._policy!r})"


def _encode(text: str) -> bytes:
    # surrogatepass: any str encodes (never raises) and distinct strs stay distinct.
    return text.encode("utf-8", "surrogatepass")


def _host_of(origin: str) -> str:
    """The ``host[:port]`` of an Origin value, or "" (Go: ``url.Parse(origin).Host``)."""
    # urlsplit silently drops tabs and newlines that Go's url.Parse refuses; refuse them too.
    if _BAD_ORIGIN_RE.search(origin):
        return ""
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return ""
    return netloc.rpartition("@")[2]
