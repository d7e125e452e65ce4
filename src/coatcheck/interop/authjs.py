"""Auth.js (NextAuth) session tokens: read the JWE a Next.js front end puts in its cookie.

The format, checked against ``@auth/core`` 0.41 ``jwt.js`` and NextAuth v4's
``jwt/index.ts``:

* **v5** (``@auth/core``): compact JWE, ``{"alg":"dir","enc":"A256CBC-HS512","kid":...}``.
  The key is HKDF-SHA256 (RFC 5869) over the secret, salt = the cookie name
  (``authjs.session-token`` or ``__Secure-authjs.session-token``), info =
  ``"Auth.js Generated Encryption Key (<salt>)"``, 64 bytes (32 when a token says
  ``A256GCM``). ``kid`` is the RFC 7638 thumbprint of ``{"kty":"oct","k":...}`` with
  SHA-512 (SHA-256 for a 32-byte key); Auth.js picks the secret whose thumbprint
  matches, and tries only the first secret for a token without ``kid``.
* **v4** (NextAuth.js): ``{"alg":"dir","enc":"A256GCM"}`` without ``kid``; HKDF-SHA256
  with an empty salt and info ``"NextAuth.js Generated Encryption Key"``, 32 bytes.

Both decode with a 15-second clock tolerance (``clockTolerance: 15``). Auth.js splits a
token over 3936 characters into cookies ``<name>.0``, ``<name>.1``, ...;
:func:`join_chunks` puts them back together.

coatcheck is stricter than Auth.js in two places: ``exp`` is required (Auth.js always
sets it; a token without one would never expire), and only ``<name>`` or
``<name>.<digits>`` are read as chunks (Auth.js takes every cookie whose name merely
starts with the session cookie name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets as _secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from ..clock import Clock, SystemClock
from ..cookies import parse_cookie
from ..errors import (
    ConfigurationError,
    DecryptionFailed,
    ExpiredToken,
    ImmatureToken,
    MalformedToken,
    MissingClaim,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from ..tokens._codec import loads_object

__all__ = [
    "AUTHJS_CHUNK_SIZE",
    "AUTHJS_COOKIE",
    "AUTHJS_LEEWAY",
    "AUTHJS_SECURE_COOKIE",
    "MAX_AUTHJS_HEADER",
    "NEXTAUTH_COOKIE",
    "NEXTAUTH_SECURE_COOKIE",
    "AuthJSDecoder",
    "chunk_token",
    "derive_authjs_key",
    "encode_authjs",
    "join_chunks",
    "read_authjs_cookie",
    "read_authjs_token",
]

AUTHJS_COOKIE = "authjs.session-token"
AUTHJS_SECURE_COOKIE = "__Secure-authjs.session-token"
NEXTAUTH_COOKIE = "next-auth.session-token"
NEXTAUTH_SECURE_COOKIE = "__Secure-next-auth.session-token"
#: Auth.js's ``clockTolerance`` when it decodes (seconds).
AUTHJS_LEEWAY = timedelta(seconds=15)
#: ``ALLOWED_COOKIE_SIZE - ESTIMATED_EMPTY_COOKIE_SIZE`` in ``@auth/core`` (4096 - 160).
AUTHJS_CHUNK_SIZE = 3936

_DEFAULT_MAX_AGE = 30 * 24 * 3600
_ENC_LENGTH = {"A256CBC-HS512": 64, "A256GCM": 32}
_V4_INFO = b"NextAuth.js Generated Encryption Key"
# Chunked cookies of a 20-chunk token are about 80 KB; anything longer is not Auth.js.
_MAX_TOKEN = 100_000
_MAX_CHUNKS = 32
#: Cookie header read for Auth.js: chunked tokens overrun parse_cookie()'s 8 KB default.
MAX_AUTHJS_HEADER = 64 * 1024
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]*")


def derive_authjs_key(
    secret: str | bytes, *, salt: str, enc: str = "A256CBC-HS512", version: Literal[4, 5] = 5
) -> bytes:
    """The content-encryption key Auth.js derives from ``secret`` (HKDF-SHA256, RFC 5869).

    :raises ConfigurationError: for an ``enc`` Auth.js does not use.
    """
    length = _ENC_LENGTH.get(enc)
    if length is None or (version == 4 and enc != "A256GCM"):
        raise ConfigurationError(f"Auth.js v{version} does not use enc {enc!r}")
    ikm = secret.encode() if isinstance(secret, str) else bytes(secret)
    if version == 4:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=_V4_INFO)
    else:
        info = f"Auth.js Generated Encryption Key ({salt})".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt.encode(), info=info)
    return hkdf.derive(ikm)


def _thumbprint(key: bytes) -> str:
    # RFC 7638 §3.2: members k and kty in lexicographic order, no whitespace; the
    # digest is sha<key bits> as in @auth/core (SHA-512 for a 64-byte key).
    member = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    canonical = f'{{"k":"{member}","kty":"oct"}}'.encode()
    digest = hashlib.new(f"sha{len(key) * 8}", canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class _DerivedKey:
    enc: str
    kid: str
    key: OctKey


def _b64url_json(segment: str) -> dict[str, Any]:
    if not _SEGMENT_RE.fullmatch(segment):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # The tokens package's strict parse: bounded depth (no RecursionError from
    # `[[[...]]]`), no duplicate names, UTF-8 only; it raises MalformedToken.
    return loads_object(raw)


class AuthJSDecoder:
    """Decrypts and checks Auth.js v5 (or NextAuth v4) session tokens.

    ``secrets`` is ``AUTH_SECRET`` or the ``secret: [...]`` list in Auth.js's order:
    the first one encrypts, every one decrypts (Auth.js puts ``AUTH_SECRET_1`` ... in
    front of ``AUTH_SECRET``). ``cookie_name`` is the salt, and must be exactly the
    cookie the token came from (``__Secure-`` included); it defaults to
    ``authjs.session-token`` (v5) or ``next-auth.session-token`` (v4). Keys are derived
    once here, so :meth:`decode` only decrypts.

    :raises ConfigurationError: without a secret, or for a version other than 4 or 5.
    """

    __slots__ = ("_by_kid", "_clock", "_cookie_name", "_first", "_leeway", "_v4_keys", "_version")

    def __init__(
        self,
        secrets: Sequence[str | bytes] | str | bytes,
        *,
        cookie_name: str | None = None,
        version: Literal[4, 5] = 5,
        clock: Clock = SystemClock(),  # noqa: B008  (stateless; one shared default is safe)
        leeway: timedelta = AUTHJS_LEEWAY,
    ) -> None:
        ring = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
        if not ring or any(not s for s in ring):
            raise ConfigurationError("AuthJSDecoder needs AUTH_SECRET (one or more, non-empty)")
        if version not in (4, 5):
            raise ConfigurationError("Auth.js token version must be 4 or 5")
        if leeway < timedelta(0):
            raise ConfigurationError("leeway cannot be negative")
        self._version = version
        self._cookie_name = cookie_name or (AUTHJS_COOKIE if version == 5 else NEXTAUTH_COOKIE)
        self._clock = clock
        self._leeway = leeway.total_seconds()
        self._by_kid: dict[tuple[str, str], OctKey] = {}
        self._first: dict[str, OctKey] = {}
        self._v4_keys: tuple[OctKey, ...] = ()
        if version == 4:
            self._v4_keys = tuple(
                OctKey.import_key(derive_authjs_key(s, salt="", enc="A256GCM", version=4))
                for s in ring
            )
            return
        for index, secret in enumerate(ring):
            for enc in _ENC_LENGTH:
                raw = derive_authjs_key(secret, salt=self._cookie_name, enc=enc)
                key = OctKey.import_key(raw)
                self._by_kid.setdefault((enc, _thumbprint(raw)), key)
                if index == 0:
                    self._first[enc] = key

    @property
    def cookie_name(self) -> str:
        """The cookie (and HKDF salt) this decoder reads."""
        return self._cookie_name

    @property
    def version(self) -> int:
        return self._version

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of a valid token: :meth:`decrypt`, then the time checks.

        :raises MissingClaim: no ``exp``.
        :raises ExpiredToken: ``exp`` is more than the leeway in the past.
        :raises ImmatureToken: ``nbf`` is more than the leeway in the future.
        :raises TokenError: as :meth:`decrypt`.
        """
        claims = self.decrypt(token)
        self._check_times(claims)
        return claims

    def decrypt(self, token: str) -> dict[str, Any]:
        """The claims of an authentic token, without looking at ``exp`` or ``nbf``.

        For inspectors that show an expired session; authentication uses :meth:`decode`.

        :raises MalformedToken: not a compact JWE with a JSON object inside.
        :raises UnsupportedAlgorithm: ``alg`` is not ``dir`` or ``enc`` is not one Auth.js uses.
        :raises UnsupportedHeader: ``zip`` or ``crit`` in the header (Auth.js sends neither).
        :raises UnknownKey: the ``kid`` matches none of the secrets (or the cookie name is wrong).
        :raises DecryptionFailed: tampered, or made with another secret or salt.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            raise MalformedToken("an Auth.js token is a compact JWE string of bounded size")
        parts = token.split(".")
        if len(parts) != 5:
            raise MalformedToken("an Auth.js token is a compact JWE (five segments)")
        try:
            header = _b64url_json(parts[0])
        except (ValueError, binascii.Error) as exc:
            raise MalformedToken("the JWE header is not base64url JSON") from exc
        enc = header.get("enc")
        if header.get("alg") != "dir" or not isinstance(enc, str) or enc not in _ENC_LENGTH:
            raise UnsupportedAlgorithm("Auth.js tokens use alg 'dir' with A256CBC-HS512 or A256GCM")
        if "zip" in header or "crit" in header:
            raise UnsupportedHeader("Auth.js tokens carry neither 'zip' nor 'crit'")
        plaintext = _decrypt_any(token, self._keys_for(enc, header.get("kid")), enc)
        return loads_object(plaintext)

    def _keys_for(self, enc: str, kid: object) -> tuple[OctKey, ...]:
        if self._version == 4:
            if enc != "A256GCM":
                raise UnsupportedAlgorithm("NextAuth v4 tokens use A256GCM")
            # v4 tokens have no kid, so each secret is tried in turn.
            return self._v4_keys
        if kid is None:
            # As @auth/core: a token without kid is tried with the first secret only.
            return (self._first[enc],)
        key = self._by_kid.get((enc, kid)) if isinstance(kid, str) else None
        if key is None:
            raise UnknownKey("no secret matches the kid (or the cookie name, the salt, differs)")
        return (key,)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock.now()
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise MalformedToken(f"the {name!r} claim is not a number")
        exp = claims.get("exp")
        if exp is None:
            raise MissingClaim("an Auth.js token must carry 'exp'", claim="exp")
        # RFC 7519 §4.1.4, with jose's comparison: expired when exp <= now - tolerance.
        if exp <= now - self._leeway:
            raise ExpiredToken("the Auth.js session has expired", claim="exp")
        nbf = claims.get("nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise ImmatureToken("the Auth.js token is not valid yet", claim="nbf")

    def decode_cookies(self, cookies: Mapping[str, str]) -> dict[str, Any] | None:
        """The claims from parsed cookies (chunks joined), or None when there is no token.

        :raises TokenError: as :meth:`decode` when a token is present but refused.
        """
        token = join_chunks(cookies, self._cookie_name)
        return None if token is None else self.decode(token)

    def __repr__(self) -> str:
        return f"AuthJSDecoder(version={self._version}, cookie_name={self._cookie_name!r})"


def _decrypt_any(token: str, keys: tuple[OctKey, ...], enc: str) -> bytes:
    last: Exception | None = None
    for key in keys:
        try:
            return jwe.decrypt_compact(token, key, algorithms=["dir", enc]).plaintext or b""
        except (JoseError, ValueError, TypeError) as exc:
            last = exc
    raise DecryptionFailed("the Auth.js token does not decrypt with these secrets") from last


def join_chunks(cookies: Mapping[str, str], name: str) -> str | None:
    """The session token from ``{name: value}`` cookies, joining ``name.0``, ``name.1``...

    Auth.js writes one cookie when the token fits in 3936 characters, else numbered
    chunks. An unchunked cookie wins over stray chunks (Auth.js clears the other kind
    when it switches, so both present means a stale leftover). Never raises.
    """
    whole = cookies.get(name)
    if whole:
        return whole
    prefix = name + "."
    chunks: list[tuple[int, str]] = []
    for key, value in cookies.items():
        if key.startswith(prefix) and value:
            suffix = key[len(prefix) :]
            if suffix.isdigit() and len(suffix) <= 3:
                chunks.append((int(suffix), value))
    if not chunks or len(chunks) > _MAX_CHUNKS:
        return None
    chunks.sort()
    return "".join(value for _, value in chunks)


def chunk_token(token: str, name: str, *, size: int = AUTHJS_CHUNK_SIZE) -> list[tuple[str, str]]:
    """Split a token into ``(cookie name, value)`` pairs the way Auth.js does."""
    if len(token) <= size:
        return [(name, token)]
    starts = range(0, len(token), size)
    return [(f"{name}.{i}", token[start : start + size]) for i, start in enumerate(starts)]


def read_authjs_cookie(headers: Mapping[str, str], cookie_name: str = AUTHJS_COOKIE) -> str | None:
    """The (possibly chunked) session cookie's token from request headers. Never raises.

    ``None`` also when the cookie or any of its chunks arrives twice: a sibling
    subdomain can toss a second copy (or its own chunks) under the same names, and
    then neither is trusted, as for coatcheck's own credential cookies
    (:mod:`coatcheck.cookies`).
    """
    header = headers.get("cookie")
    cookies = parse_cookie(header, max_size=MAX_AUTHJS_HEADER, unique=True)
    chunk_prefix = cookie_name + "."
    for name in parse_cookie(header, max_size=MAX_AUTHJS_HEADER):
        if name not in cookies and (name == cookie_name or name.startswith(chunk_prefix)):
            return None
    return join_chunks(cookies, cookie_name)


def read_authjs_token(headers: Mapping[str, str], cookie_name: str = AUTHJS_COOKIE) -> str | None:
    """The raw token from request headers, as ``getToken()`` finds it. Never raises.

    First the (possibly chunked) cookie, then ``Authorization: Bearer <token>``,
    which Auth.js URL-decodes. ``headers`` has lower-case names.
    """
    token = read_authjs_cookie(headers, cookie_name)
    if token:
        return token
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    # getToken() compares the scheme case-sensitively to "Bearer"; RFC 9110 §11.1 says
    # schemes are case-insensitive, so accept both spellings.
    if scheme.lower() != "bearer" or not value.strip():
        return None
    try:
        return unquote(value.strip(), errors="strict")
    except UnicodeDecodeError:
        return None


def encode_authjs(
    claims: Mapping[str, Any],
    secret: str | bytes,
    *,
    cookie_name: str | None = None,
    version: Literal[4, 5] = 5,
    max_age: float = _DEFAULT_MAX_AGE,
    clock: Clock = SystemClock(),  # noqa: B008  (stateless; one shared default is safe)
) -> str:
    """A token Auth.js's ``decode()`` accepts, made as its ``encode()`` does.

    For migrations and tests: it adds ``iat``, ``exp`` (now + ``max_age``) and a UUID
    ``jti`` to ``claims``, and encrypts with ``secret`` (the first of Auth.js's list).

    :raises ConfigurationError: for an empty secret or a version other than 4 or 5.
    """
    if not secret:
        raise ConfigurationError("encode_authjs needs AUTH_SECRET")
    if version not in (4, 5):
        raise ConfigurationError("Auth.js token version must be 4 or 5")
    now = int(clock.now())
    payload = dict(claims)
    payload["iat"] = now
    payload["exp"] = int(now + max_age)
    payload["jti"] = str(uuid.UUID(bytes=_secrets.token_bytes(16), version=4))
    plaintext = json.dumps(payload, separators=(",", ":")).encode()
    if version == 4:
        raw = derive_authjs_key(secret, salt="", enc="A256GCM", version=4)
        header: dict[str, Any] = {"alg": "dir", "enc": "A256GCM"}
    else:
        salt = cookie_name or AUTHJS_COOKIE
        raw = derive_authjs_key(secret, salt=salt)
        header = {"alg": "dir", "enc": "A256CBC-HS512", "kid": _thumbprint(raw)}
    algorithms = ["dir", header["enc"]]
    return jwe.encrypt_compact(header, plaintext, OctKey.import_key(raw), algorithms=algorithms)
