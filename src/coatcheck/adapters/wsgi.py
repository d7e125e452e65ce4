"""WSGI middleware (PEP 3333): the ASGI adapter's twin, for Flask, Django or any WSGI app.

:class:`AuthMiddleware` authenticates; :class:`SessionMiddleware` gives every visitor a
session mapping (:func:`session_of`); :class:`CsrfMiddleware` refuses forged requests.

The decisions are the core's, unchanged: the same :class:`~coatcheck.auth.Authenticator`
coroutines, driven without an event loop by :func:`~coatcheck.sync.run_sync`. That
works because coatcheck's coroutines suspend only on a store's network I/O, so use
a store that never suspends: ``open_store(url, sync=True)`` (blocking Redis or
PostgreSQL), or the memory and SQLite stores. Only the I/O and this glue differ
from :mod:`coatcheck.adapters.asgi`; statuses and error bodies come from
:mod:`coatcheck.adapters.http`, every CSRF decision from :mod:`coatcheck.csrf.rules`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from ..auth.authenticator import Authenticator
from ..auth.dpop import METHOD_HEADER, PATH_HEADER, SCHEME_HEADER
from ..auth.identity import Identity
from ..bodies import content_length
from ..csrf import CsrfProtector, is_safe_method
from ..csrf.rules import CsrfRequest, CsrfRules
from ..errors import (
    AuthenticationError,
    CoatcheckError,
    ConfigurationError,
    InputError,
    TokenError,
)
from ..policies import CookiePolicy
from ..sessions.data import SessionBackend
from ..sessions.flash import flash as _flash
from ..sessions.flash import pop_flashes as _pop_flashes
from ..sessions.mapping import SessionMapping
from ..sync import run_sync
from ._session_glue import LoginWatch, visitor_of
from .dbsc import dbsc_endpoint, method_not_allowed, serve_dbsc
from .http import error_headers, error_json, error_status

__all__ = [
    "AUTH_ERROR_KEY",
    "CSRF_TOKEN_KEY",
    "IDENTITY_KEY",
    "RECORD_KEY",
    "SESSION_KEY",
    "AuthMiddleware",
    "CsrfMiddleware",
    "Environ",
    "SessionMiddleware",
    "StartResponse",
    "WSGIApp",
    "auth_error_of",
    "csrf_token",
    "error_response",
    "flash",
    "identity_of",
    "pop_flashes",
    "request_headers",
    "session_of",
]

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Environ key holding the request's Identity (``None`` for a guest).
IDENTITY_KEY = "coatcheck.identity"
#: Environ key holding the request headers as a ``dict[str, str]`` (built once).
HEADERS_KEY = "coatcheck.headers"
#: Environ key holding why a presented credential was refused (a DPoP proof or
#: binding), for the 401 a view then answers; absent otherwise.
AUTH_ERROR_KEY = "coatcheck.auth_error"
#: Environ key holding the server-side session behind the identity (session mode).
RECORD_KEY = "coatcheck.record"
#: Environ key holding the session mapping (:func:`session_of`).
SESSION_KEY = "coatcheck.session"
#: Environ key holding the request's CSRF state, which :func:`csrf_token` reads.
CSRF_TOKEN_KEY = "coatcheck.csrf_token"  # noqa: S105 - an environ key, not a secret
_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def request_headers(environ: Environ) -> dict[str, str]:
    """The request headers as ``{lower-case name: value}``, never raising; cached in environ.

    WSGI gives ``HTTP_*`` keys (the server joined repeated fields) plus
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` (PEP 3333). A request with a ``DPoP``
    header also gets the pseudo-headers ``:method``, ``:scheme`` and ``:path`` its
    proof is checked against (:mod:`coatcheck.auth.dpop`).
    """
    cached = environ.get(HEADERS_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers[key[5:].replace("_", "-").lower()] = value
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        value = environ.get(key)
        if value:
            headers[name] = value
    if "dpop" in headers:
        headers[METHOD_HEADER] = str(environ.get("REQUEST_METHOD") or "GET")
        headers[SCHEME_HEADER] = str(environ.get("wsgi.url_scheme") or "http")
        headers[PATH_HEADER] = _raw_path(environ)
    environ[HEADERS_KEY] = headers
    return headers


def _raw_path(environ: Environ) -> str:
    # The path as sent when the server passes it on (gunicorn RAW_URI, others
    # REQUEST_URI); else PEP 3333's decoded SCRIPT_NAME + PATH_INFO, which the DPoP
    # transport percent-encodes again.
    for key in ("RAW_URI", "REQUEST_URI"):
        value = environ.get(key)
        if isinstance(value, str) and value.startswith("/"):
            return value.partition("?")[0]
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))


def identity_of(environ: Environ) -> Identity | None:
    """The Identity the middleware put in ``environ`` (``None`` for a guest or no middleware)."""
    identity = environ.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else None


def auth_error_of(environ: Environ) -> AuthenticationError | TokenError | None:
    """Why the middleware refused the presented credential, when it can say more than
    "invalid" (a DPoP proof or binding): raise it for the right 401."""
    error = environ.get(AUTH_ERROR_KEY)
    return error if isinstance(error, AuthenticationError | TokenError) else None


def error_response(exc: BaseException, start_response: StartResponse) -> list[bytes]:
    """Answer with the JSON error body and the status of ``http.error_status``."""
    status = error_status(exc)
    body = error_json(exc)
    headers = error_headers(exc)
    headers.append(("content-length", str(len(body))))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", headers)
    return [body]


class _Paths:
    """``exclude_paths`` as in the ASGI adapter: a path, or a prefix at a ``/`` boundary."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, paths: Iterable[str]) -> None:
        cleaned = [p.rstrip("/") or "/" for p in paths]
        self.exact = frozenset(cleaned)
        self.prefixes = tuple(p + "/" for p in cleaned if p != "/")

    def __contains__(self, path: str) -> bool:
        return bool(self.exact) and (path in self.exact or path.startswith(self.prefixes))


class AuthMiddleware:
    """Authenticate every request with ``authenticator``, before the app sees it.

    The identity goes to ``environ["coatcheck.identity"]`` (:func:`identity_of`).
    ``Set-Cookie`` headers the strategy asks for (a renewed or cleared cookie) are
    appended to the app's response; a cookie the app sets itself wins. Paths in
    ``exclude_paths`` skip authentication. A store outage answers 503
    ``{"error": "store_unavailable", ...}``; other coatcheck errors get their status
    from :func:`~coatcheck.adapters.http.error_status`. With an authenticator's DBSC
    ``binding`` the middleware answers its registration and refresh paths itself
    (:mod:`coatcheck.adapters.dbsc`).
    """

    __slots__ = ("_app", "_authenticator", "_dbsc", "_excluded")

    def __init__(
        self, app: WSGIApp, authenticator: Authenticator, *, exclude_paths: Iterable[str] = ()
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._excluded = _Paths(exclude_paths)
        # getattr: an authenticator stand-in (tests, proxies) may have no DBSC at all.
        binding = getattr(authenticator, "binding", None)
        self._dbsc: frozenset[str] = (
            frozenset()
            if binding is None
            else frozenset((binding.registration_path, binding.refresh_path))
        )

    @property
    def authenticator(self) -> Authenticator:
        return self._authenticator

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self._excluded:
            environ[IDENTITY_KEY] = None
            return self._app(environ, start_response)
        if self._dbsc and path in self._dbsc:
            return self._device_binding(environ, path, start_response)
        try:
            result = run_sync(self._authenticator.authenticate(request_headers(environ)))
        except CoatcheckError as exc:
            # Fail closed and say so: never a guest that was really a store outage.
            return error_response(exc, start_response)
        environ[IDENTITY_KEY] = result.identity
        if result.record is not None:
            environ[RECORD_KEY] = result.record
        if result.error is not None:
            environ[AUTH_ERROR_KEY] = result.error
        extra = result.set_headers
        if not extra:
            return self._app(environ, start_response)

        def start_with_cookies(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, _merge(list(headers), extra), exc_info)

        return self._app(environ, start_with_cookies)

    def _device_binding(
        self, environ: Environ, path: str, start_response: StartResponse
    ) -> list[bytes]:
        binding = self._authenticator.binding
        which = dbsc_endpoint(binding, path)
        if binding is None or which is None:  # pragma: no cover - only for the binding's paths
            return []
        if environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = method_not_allowed()
        else:
            headers_in = request_headers(environ)
            try:
                status, headers, body = run_sync(serve_dbsc(binding, which, headers_in))
            except CoatcheckError as exc:
                return error_response(exc, start_response)
        headers = [*headers, ("content-length", str(len(body)))]
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", headers)
        return [body]

    def __repr__(self) -> str:
        return f"AuthMiddleware({self._app!r}, {self._authenticator!r})"


def _merge(headers: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # The app may have logged in or out on this request; its cookie is the newer one.
    own = {v.split("=", 1)[0] for k, v in headers if k.lower() == "set-cookie"}
    for name, value in extra:
        if name.lower() == "set-cookie":
            if value.split("=", 1)[0] in own:
                continue
        elif any(k.lower() == name for k, _ in headers):
            continue  # e.g. DPoP-Nonce: the app's error response already says it
        headers.append((name, value))
    return headers


def csrf_token(environ: Environ) -> str:
    """The CSRF token for this request's forms, the same one per request ("" without
    :class:`CsrfMiddleware`).

    Call it before ``start_response``: for a guest it sets the pre-session cookie, in
    jwt mode the double-submit cookie.
    """
    state = environ.get(CSRF_TOKEN_KEY)
    if not isinstance(state, CsrfRequest):
        return ""
    identity = identity_of(environ)
    return state.token(identity, guest=_guest(environ, identity))


def _guest(environ: Environ, identity: Identity | None) -> str:
    """A guest session's id (:class:`SessionMiddleware` outside), else ""."""
    if identity is not None:
        return ""
    session = environ.get(SESSION_KEY)
    return session.binding if isinstance(session, SessionMapping) else ""


def session_of(environ: Environ) -> SessionMapping:
    """The session mapping :class:`SessionMiddleware` put in ``environ``.

    :raises ConfigurationError: when no SessionMiddleware handled the request.
    """
    session = environ.get(SESSION_KEY)
    if not isinstance(session, SessionMapping):
        raise ConfigurationError("there is no session: add coatcheck's SessionMiddleware")
    return session


def flash(environ: Environ, message: str, category: str = "message") -> None:
    """Leave ``message`` for the next page (see :mod:`coatcheck.sessions.flash`).

    Raises ConfigurationError without :class:`SessionMiddleware`, SessionValueError for
    non-text arguments.
    """
    _flash(session_of(environ), message, category)


def pop_flashes(
    environ: Environ, categories: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Take the pending ``(category, message)`` pairs (all, or those ``categories``)."""
    wanted = None if categories is None else frozenset(categories)
    return _pop_flashes(session_of(environ), wanted)


class SessionMiddleware:
    """A session mapping for every visitor, in ``environ["coatcheck.session"]``.

    ``sessions`` is a :class:`~coatcheck.sessions.StoreSessions` (with a store that
    never suspends: ``open_store(url, sync=True)``, SQLite, memory) or a
    :class:`~coatcheck.sessions.CookieSessions`. The mapping is saved once, when the app
    calls ``start_response``, and only when it changed; a guest who stores nothing costs
    no store call and gets no cookie. Install it inside :class:`AuthMiddleware` and
    pass its ``authenticator`` for login-aware sessions (see the ASGI
    :class:`~coatcheck.adapters.asgi.SessionMiddleware`, which takes the same options).
    A store failure answers 503; data too large or not JSON 500 (JSON error bodies).
    Paths in ``exclude_paths`` get an empty session that is never read nor saved.

    :raises ConfigurationError: when the session cookie has the credential cookie's name.
    """

    __slots__ = ("_app", "_excluded", "_logins", "_sessions")

    def __init__(
        self,
        app: WSGIApp,
        sessions: SessionBackend,
        *,
        authenticator: Authenticator | None = None,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._sessions = sessions
        self._logins = None if authenticator is None else LoginWatch(authenticator, sessions)
        self._excluded = _Paths(exclude_paths)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self._excluded:
            environ[SESSION_KEY] = SessionMapping()
            return self._app(environ, start_response)
        headers = request_headers(environ)
        visitor = visitor_of(identity_of(environ), environ.get(RECORD_KEY))
        try:
            session: SessionMapping = run_sync(self._sessions.open(headers, visitor))
        except CoatcheckError as exc:
            return error_response(exc, start_response)
        environ[SESSION_KEY] = session
        sessions, logins = self._sessions, self._logins
        refused: list[bytes] = []

        def start_saving(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            if exc_info is not None:  # the app is answering its own error: save nothing
                return start_response(status, response_headers, exc_info)
            try:
                after = None
                if logins is not None:
                    cookies = (v for k, v in response_headers if k.lower() == "set-cookie")
                    after = run_sync(logins.visitor(cookies, headers))
                extra = run_sync(sessions.save(session, after))
            except CoatcheckError as exc:
                refused[:] = error_response(exc, start_response)
                return _discard
            if extra or session or session.base:
                # The response depends on the cookie: caches must key on it.
                extra = [("Vary", "Cookie"), *extra]
            return start_response(status, list(response_headers) + extra)

        result = self._app(environ, start_saving)
        if refused:
            _close(result)
            return refused
        return _Body(result, refused)

    def __repr__(self) -> str:
        return f"SessionMiddleware({self._app!r}, {self._sessions!r})"


def _discard(data: bytes) -> object:
    return None


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


class _Body:
    """The app's body, or the error that replaced it when ``start_response`` came late."""

    __slots__ = ("_refused", "_result")

    def __init__(self, result: Iterable[bytes], refused: list[bytes]) -> None:
        self._result = result
        self._refused = refused

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            if self._refused:
                yield from self._refused
                return
            yield chunk
        if self._refused:  # start_response came with an empty body
            yield from self._refused

    def close(self) -> None:
        _close(self._result)


class CsrfMiddleware:
    """Refuse forged unsafe requests (403 JSON), inside :class:`AuthMiddleware`.

    The decisions are :class:`~coatcheck.csrf.rules.CsrfRules` (the ASGI
    :class:`~coatcheck.adapters.csrf.CsrfMiddleware` takes the same options):
    Fetch Metadata / Origin for every unsafe request; then a token from the
    ``policy.header_name`` header or the ``policy.field_name`` field of a form body
    (read up to ``max_body`` bytes and put back for the app), bound to the session,
    the login (jwt double-submit cookie) or a guest's pre-session cookie. Forms get
    their token from :func:`csrf_token`, which also sets those cookies.

    :raises ConfigurationError: for a non-positive ``max_body``.
    :raises CookieError: for a cookie name or policy the CSRF cookies cannot use.
    """

    __slots__ = ("_app", "_rules")

    def __init__(
        self,
        app: WSGIApp,
        protector: CsrfProtector,
        *,
        # CookieTransport()'s name over HTTPS and over plain HTTP.
        credential_cookies: Iterable[str] = ("__Host-session", "session"),
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen: sharing is safe)
        own_origin: str | None = None,
        exempt_paths: Iterable[str] = (),
        max_body: int = 64 * 1024,
        protect_forms: bool = True,
    ) -> None:
        self._app = app
        self._rules = CsrfRules(
            protector,
            credential_cookies=credential_cookies,
            cookie_policy=cookie_policy,
            own_origin=own_origin or "",
            exempt_paths=exempt_paths,
            max_body=max_body,
            protect_forms=protect_forms,
        )

    @property
    def rules(self) -> CsrfRules:
        return self._rules

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        rules = self._rules
        if rules.exempt(environ.get("PATH_INFO", "")):
            return self._app(environ, start_response)
        state = rules.request(request_headers(environ))
        environ[CSRF_TOKEN_KEY] = state
        method = environ.get("REQUEST_METHOD", "GET")
        if not is_safe_method(method):
            try:
                identity = identity_of(environ)
                check = state.decide(method, identity, guest=_guest(environ, identity))
                if check is not None:
                    body = _read_body(environ, rules.max_body) if check.read_form else None
                    rules.verify(check, body)
            except CoatcheckError as exc:
                return error_response(exc, start_response)

        def start_with_cookies(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            # The app's own Set-Cookie: a logout there clears the CSRF cookies too.
            app_cookies = [v for k, v in headers if k.lower() == "set-cookie"]
            extra = state.response_cookies(app_cookies)
            if extra:
                headers = list(headers) + [("set-cookie", c) for c in extra]
            return start_response(status, headers, exc_info)

        return self._app(environ, start_with_cookies)

    def __repr__(self) -> str:
        return f"CsrfMiddleware({self._app!r}, {self._rules.protector!r})"


def _read_body(environ: Environ, limit: int) -> bytes | None:
    """The request body if ``CONTENT_LENGTH`` is at most ``limit`` (else ``None``), put back.

    ``wsgi.input`` is replaced by a fresh stream over the same bytes, so the app reads
    them again. Without a ``CONTENT_LENGTH`` nothing is read (PEP 3333). Never raises
    for a bad length.
    """
    try:
        length = content_length(str(environ.get("CONTENT_LENGTH") or "0")) or 0
    except InputError:
        return b""  # not ASCII digits ("²" is a digit to str.isdigit, not to int)
    if length > limit:
        return None
    if length == 0:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body
