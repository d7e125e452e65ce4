"""A DBSC user agent written from the W3C draft, for the tests (not from coatcheck's code).

It shares nothing with the server side: structured fields are parsed by ``http_sf``
(RFC 9651), keys and signatures come from ``cryptography``, and the cookie jar is its
own, honouring Max-Age against an injected clock. What it does, section by section:

* "Process session registration": every response's ``Secure-Session-Registration``
  list; for each inner list with a ``path``, pick the first algorithm it supports, make
  a key pair and POST a ``dbsc+jwt`` proof (header ``alg``, ``typ``, ``jwk``; payload
  ``jti`` = the challenge, ``authorization`` when given) to the path, with cookies;
* "Create session": the instructions JSON (session_identifier, refresh_url, scope,
  credentials); ``continue: false`` ends it;
* "Cache challenge": ``Secure-Session-Challenge`` items ``"<challenge>";id="<session>"``;
* "Identify session needing refresh": before a request in scope (not the refresh URL,
  not excluded) whose credential cookie is missing, refresh first (the request is
  held back): POST the refresh URL with ``Sec-Secure-Session-Id`` and, with a cached
  challenge, a proof without ``jwk``; a 403 brings a challenge to sign, once more; a
  200 with instructions replaces them; other 4xx end the session.

Like Chromium it sends the proof and the session id bare, not as sf-strings (the
draft says sf-string; ``quoted=True`` sends that form instead).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import http_sf
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["DbscBrowser", "DeviceKey", "Thief", "b64"]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


class DeviceKey:
    """A session's key pair: ES256 (P-256) or RS256 (RSA 2048)."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        if alg == "ES256":
            self._ec = ec.generate_private_key(ec.SECP256R1())
            numbers = self._ec.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big")),
            }
        elif alg == "RS256":
            self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self._rsa.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
        else:
            raise ValueError(alg)

    def sign(self, data: bytes) -> bytes:
        if self.alg == "ES256":
            r, s = decode_dss_signature(self._ec.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self._rsa.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def proof(
        self,
        challenge: str | None,
        *,
        with_jwk: bool,
        authorization: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        head: dict[str, Any] = {"alg": self.alg, "typ": "dbsc+jwt"}
        if with_jwk:
            head["jwk"] = self.jwk
        head.update(header or {})
        payload: dict[str, Any] = {}
        if challenge is not None:
            payload["jti"] = challenge
        if authorization is not None:
            payload["authorization"] = authorization
        signing_input = (
            b64(json.dumps(head).encode()) + "." + b64(json.dumps(payload).encode())
        ).encode()
        return signing_input.decode() + "." + b64(self.sign(signing_input))


def _parse_list(value: str) -> list[tuple[Any, dict[str, Any]]]:
    """An RFC 9651 list, or nothing: the draft ignores a header that does not parse."""
    try:
        parsed = http_sf.parse(value.encode(), tltype="list")
    except ValueError:
        return []
    return list(parsed)


@dataclass
class _Cookie:
    value: str
    expires: float | None
    path: str


@dataclass
class Session:
    id: str
    key: DeviceKey
    refresh_url: str
    credentials: list[str]
    excluded: list[str] = field(default_factory=list)
    challenge: str | None = None


class Jar:
    """Cookies by name for one host: Max-Age and Expires against ``clock``, Path matched."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.cookies: dict[str, _Cookie] = {}

    def store(self, set_cookie: str) -> None:
        first, *attributes = [part.strip() for part in set_cookie.split(";")]
        name, _, value = first.partition("=")
        expires: float | None = None
        path = "/"
        max_age: int | None = None
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            key = key.strip().lower()
            if key == "max-age":
                max_age = int(val)
            elif key == "expires" and max_age is None:
                expires = parsedate_to_datetime(val).timestamp()
            elif key == "path":
                path = val or "/"
        if max_age is not None:  # RFC 6265bis §5.6.2: Max-Age wins over Expires
            expires = self.clock() + max_age if max_age > 0 else 0.0
        if expires is not None and expires <= self.clock():
            self.cookies.pop(name, None)
            return
        self.cookies[name] = _Cookie(value, expires, path)

    def live(self, name: str) -> str | None:
        cookie = self.cookies.get(name)
        if cookie is None:
            return None
        if cookie.expires is not None and cookie.expires <= self.clock():
            del self.cookies[name]
            return None
        return cookie.value

    def header(self, path: str) -> str:
        path = path.split("?")[0]
        parts = []
        for name in list(self.cookies):
            value = self.live(name)
            if value is None:
                continue
            cookie_path = self.cookies[name].path
            # RFC 6265bis §5.1.4 path-match.
            if path == cookie_path or (
                path.startswith(cookie_path)
                and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")
            ):
                parts.append(f"{name}={value}")
        return "; ".join(parts)


class DbscBrowser:
    """A browser with DBSC: ``request()`` follows the draft's fetch integration."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        clock: Callable[[], float] = time.time,
        algorithms: tuple[str, ...] = ("ES256", "RS256"),
        quoted: bool = False,
        dbsc: bool = True,
    ) -> None:
        self.http = http
        self.jar = Jar(clock)
        self.algorithms = algorithms
        self.quoted = quoted
        self.dbsc = dbsc
        self.sessions: dict[str, Session] = {}
        #: What happened, in order: ("register", status), ("refresh", status), ...
        self.events: list[tuple[str, int]] = []

    # -- fetch -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _hop in range(5):
            if self.dbsc:
                for session in list(self.sessions.values()):
                    if self._needs_refresh(session, path):
                        self._refresh(session)
            response = self._send(method, path, **kwargs)
            if self.dbsc:
                self._process(response)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            # Redirects are followed here, so that each hop gets the jar's cookies.
            path = response.headers["location"]
            if response.status_code == 303:
                method = "GET"
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        cookie = self.jar.header(path)
        if cookie:
            headers["cookie"] = cookie
        response = self.http.request(
            method, path, headers=headers, follow_redirects=False, **kwargs
        )
        # The jar here is the only one: httpx's own would leak cookies between clients.
        self.http.cookies.clear()
        for value in response.headers.get_list("set-cookie"):
            self.jar.store(value)
        return response

    def _wire(self, value: str) -> str:
        return '"' + value + '"' if self.quoted else value

    # -- registration ----------------------------------------------------------------------

    def _process(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("secure-session-challenge"):
            self._cache_challenges(value)
        for value in response.headers.get_list("secure-session-registration"):
            entries = _parse_list(value)
            for inner, params in entries:
                if not isinstance(inner, list) or not isinstance(params.get("path"), str):
                    continue
                offered = [str(item) for item, _ in inner]
                algs = [a for a in self.algorithms if a in offered]
                if algs:
                    self._register(params["path"], algs[0], params.get("challenge"),
                                   params.get("authorization"))  # fmt: skip

    def _register(self, path: str, alg: str, challenge: Any, authorization: Any) -> None:
        key = DeviceKey(alg)
        proof = key.proof(
            challenge if isinstance(challenge, str) else None,
            with_jwk=True,
            authorization=authorization if isinstance(authorization, str) else None,
        )
        headers = {"secure-session-response": self._wire(proof), "accept": "application/json"}
        if isinstance(authorization, str):
            headers["authorization"] = authorization
        response = self._send("POST", path, headers=headers)
        self.events.append(("register", response.status_code))
        if response.status_code == 200:
            self._create(response, key, None)
        self._process_challenges_only(response)
        # A 403 may offer a new registration (DBSC: "request a new registration").
        if response.status_code == 403:
            for value in response.headers.get_list("secure-session-registration"):
                for inner, params in _parse_list(value):
                    offered = [str(item) for item, _ in inner]
                    if alg in offered and self.events.count(("register", 403)) < 2:
                        self._register(params["path"], alg, params.get("challenge"), None)

    def _create(self, response: httpx.Response, key: DeviceKey, session_id: str | None) -> None:
        try:
            body = response.json()
        except ValueError:
            if session_id is not None:
                self.sessions.pop(session_id, None)
            return
        if not isinstance(body, dict) or body.get("continue") is False:
            if session_id is not None:
                self.sessions.pop(session_id, None)
            return
        sid = body["session_identifier"]
        if session_id is not None and sid != session_id:
            self.sessions.pop(session_id, None)
            return
        creds = [c["name"] for c in body["credentials"] if c.get("type") == "cookie"]
        rules = body.get("scope", {}).get("scope_specification", [])
        excluded = [r.get("path", "/") for r in rules if r.get("type") == "exclude"]
        previous = self.sessions.get(sid)
        self.sessions[sid] = Session(
            id=sid,
            key=key,
            refresh_url=body.get("refresh_url") or "",
            credentials=creds,
            excluded=excluded,
            challenge=previous.challenge if previous else None,
        )
        self._process_challenges_only(response)

    def _process_challenges_only(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("secure-session-challenge"):
            self._cache_challenges(value)

    def _cache_challenges(self, value: str) -> None:
        for challenge, params in _parse_list(value):
            session = self.sessions.get(params.get("id"))
            if isinstance(challenge, str) and session is not None:
                session.challenge = challenge

    # -- refresh -----------------------------------------------------------------------------

    def _needs_refresh(self, session: Session, path: str) -> bool:
        if path.split("?")[0] == session.refresh_url:
            return False
        for excluded in session.excluded:
            if path == excluded or path.startswith(excluded.rstrip("/") + "/"):
                return False
        return any(self.jar.live(name) is None for name in session.credentials)

    def _refresh(self, session: Session) -> None:
        for _attempt in range(2):
            headers = {"sec-secure-session-id": self._wire(session.id)}
            if session.challenge is not None:
                proof = session.key.proof(session.challenge, with_jwk=False)
                headers["secure-session-response"] = self._wire(proof)
            response = self._send("POST", session.refresh_url, headers=headers)
            self.events.append(("refresh", response.status_code))
            if response.status_code == 403:
                before = session.challenge
                self._process_challenges_only(response)
                if session.challenge == before:
                    return
                continue
            if 400 <= response.status_code < 500:
                self.sessions.pop(session.id, None)
                return
            if response.status_code >= 500:
                return
            self._create(response, session.key, session.id)
            return

    # -- for the theft ----------------------------------------------------------------------

    def cookie_header(self) -> str:
        """Every live cookie of the jar, whatever its path: what an infostealer copies."""
        names = [name for name in list(self.jar.cookies) if self.jar.live(name) is not None]
        return "; ".join(f"{name}={self.jar.cookies[name].value}" for name in names)


class Thief:
    """Another machine replaying a copied Cookie header; it has no device key."""

    def __init__(self, http: httpx.Client, cookie_header: str) -> None:
        self.http = http
        self.cookie_header = cookie_header

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("POST", path, headers)

    def request(self, method: str, path: str, headers: dict[str, str] | None) -> httpx.Response:
        self.http.cookies.clear()
        sent = {"cookie": self.cookie_header, **(headers or {})}
        response = self.http.request(method, path, headers=sent)
        self.http.cookies.clear()
        return response
