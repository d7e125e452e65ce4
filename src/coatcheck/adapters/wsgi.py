"""WSGI middleware (PEP 3333): the ASGI adapter's twin, for Flask, Django or any WSGI app.

The decisions are the core's, unchanged: the same :class:`~coatcheck.auth.Authenticator`
coroutines, driven without an event loop by :func:`~coatcheck._sync.run_sync`. That
works because coatcheck's coroutines suspend only on a store's network I/O, so use
a store that never suspends: ``open_store(url, sync=True)`` (blocking Redis or
PostgreSQL), or the memory and SQLite stores. Only the I/O and this glue differ
from :mod:`coatcheck.adapters.asgi`; statuses and error bodies come from
:mod:`coatcheck.adapters.http`, the CSRF rule from :mod:`coatcheck.adapters.csrf_rules`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from .._sync import run_sync
from ..auth.authenticator import Authenticator
from ..auth.identity import Identity
from ..csrf import CsrfProtector, is_safe_method
from ..errors import CoatcheckError
from .csrf_rules import check_csrf, csrf_binding, origin_of
from .http import error_headers, error_json, error_status

__all__ = [
    "CSRF_TOKEN_KEY",
    "IDENTITY_KEY",
    "AuthMiddleware",
    "CsrfMiddleware",
    "Environ",
    "StartResponse",
    "WSGIApp",
    "csrf_token",
    "error_response",
    "identity_of",
    "request_headers",
]

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Environ key holding the request's Identity (``None`` for a guest).
IDENTITY_KEY = "coatcheck.identity"
#: Environ key holding the request headers as a ``dict[str, str]`` (built once).
HEADERS_KEY = "coatcheck.headers"
#: Environ key holding a function that makes a CSRF token for this request's forms.
CSRF_TOKEN_KEY = "coatcheck.csrf_token"  # noqa: S105 - an environ key, not a secret
#: Largest urlencoded body the CSRF middleware reads to find the token field.
_MAX_FORM = 64 * 1024
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def request_headers(environ: Environ) -> dict[str, str]:
    """The request headers as ``{lower-case name: value}``, never raising; cached in environ.

    WSGI gives ``HTTP_*`` keys (the server joined repeated fields) plus
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` (PEP 3333).
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
    environ[HEADERS_KEY] = headers
    return headers


def identity_of(environ: Environ) -> Identity | None:
    """The Identity the middleware put in ``environ`` (``None`` for a guest or no middleware)."""
    identity = environ.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else None


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
    from :func:`~coatcheck.adapters.http.error_status`.
    """

    __slots__ = ("_app", "_authenticator", "_excluded")

    def __init__(
        self, app: WSGIApp, authenticator: Authenticator, *, exclude_paths: Iterable[str] = ()
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._excluded = _Paths(exclude_paths)

    @property
    def authenticator(self) -> Authenticator:
        return self._authenticator

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self._excluded:
            environ[IDENTITY_KEY] = None
            return self._app(environ, start_response)
        try:
            result = run_sync(self._authenticator.authenticate(request_headers(environ)))
        except CoatcheckError as exc:
            # Fail closed and say so: never a guest that was really a store outage.
            return error_response(exc, start_response)
        environ[IDENTITY_KEY] = result.identity
        extra = result.set_headers
        if not extra:
            return self._app(environ, start_response)

        def start_with_cookies(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, _merge(list(headers), extra), exc_info)

        return self._app(environ, start_with_cookies)

    def __repr__(self) -> str:
        return f"AuthMiddleware({self._app!r}, {self._authenticator!r})"


def _merge(headers: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # The app may have logged in or out on this request; its cookie is the newer one.
    own = {v.split("=", 1)[0] for k, v in headers if k.lower() == "set-cookie"}
    for name, value in extra:
        if name.lower() == "set-cookie" and value.split("=", 1)[0] in own:
            continue
        headers.append((name, value))
    return headers


def csrf_token(environ: Environ) -> str:
    """A fresh CSRF token for this request's forms ("" for a guest or no middleware)."""
    make = environ.get(CSRF_TOKEN_KEY)
    return make() if callable(make) else ""


class CsrfMiddleware:
    """Refuse forged unsafe requests (403 JSON), inside :class:`AuthMiddleware`.

    The rule is :func:`~coatcheck.adapters.csrf_rules.check_csrf`: Fetch Metadata /
    Origin for every unsafe request, and for cookie-authenticated ones a token from
    the ``policy.header_name`` header or, in an urlencoded form, the
    ``policy.field_name`` field (the body is read, up to 64 KiB, and put back for the
    app). Forms get their token from :func:`csrf_token`. ``own_origin`` is the app's
    public ``scheme://host[:port]`` (behind a proxy); by default it comes from the
    request. Paths in ``exempt_paths`` are not checked (webhooks with their own
    signatures).
    """

    __slots__ = ("_app", "_exempt", "_own_origin", "_protector")

    def __init__(
        self,
        app: WSGIApp,
        protector: CsrfProtector,
        *,
        own_origin: str | None = None,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._protector = protector
        self._own_origin = own_origin
        self._exempt = _Paths(exempt_paths)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        identity = identity_of(environ)
        binding = csrf_binding(identity)
        if binding is not None:
            protector = self._protector
            environ[CSRF_TOKEN_KEY] = lambda: protector.issue(binding)
        method = environ.get("REQUEST_METHOD", "GET")
        if is_safe_method(method) or environ.get("PATH_INFO", "") in self._exempt:
            return self._app(environ, start_response)
        headers = request_headers(environ)
        policy = self._protector.policy
        submitted = headers.get(policy.header_name)
        if submitted is None and binding is not None and identity and identity.via == "cookie":
            submitted = _form_field(environ, headers, policy.field_name)
        own = self._own_origin or origin_of(
            environ.get("wsgi.url_scheme", "http"),
            headers.get("host") or environ.get("SERVER_NAME", ""),
        )
        try:
            check_csrf(self._protector, method, headers, identity, submitted, own_origin=own)
        except CoatcheckError as exc:
            return error_response(exc, start_response)
        return self._app(environ, start_response)

    def __repr__(self) -> str:
        return f"CsrfMiddleware({self._app!r}, {self._protector!r})"


def _form_field(environ: Environ, headers: dict[str, str], field: str) -> str | None:
    """The field from an urlencoded body (read once, then put back); never raises."""
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return None
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    if not 0 < length <= _MAX_FORM:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        values = parse_qs(body.decode("utf-8"), max_num_fields=64).get(field)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if values else None
