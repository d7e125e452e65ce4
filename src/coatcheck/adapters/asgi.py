"""Pure ASGI middleware: authenticate each request, before any framework sees it;
and give every visitor a session mapping.

Works under Starlette, FastAPI or any ASGI 3 app. Per request :class:`AuthMiddleware`
scans ``scope["headers"]`` once, asks the :class:`~coatcheck.auth.Authenticator`, stores
the :class:`~coatcheck.auth.Identity` (or ``None`` for a guest) in the scope, and
appends the ``Set-Cookie`` headers the strategy asked for to the response. Nothing
is built per request that could be built once, and no framework object is made.

:class:`SessionMiddleware` puts the :class:`~coatcheck.sessions.SessionMapping` in
``scope["session"]``, where Starlette's and FastAPI's ``request.session`` look: a
drop-in for Starlette's ``SessionMiddleware``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from ..auth.authenticator import Authenticator
from ..auth.dpop import METHOD_HEADER, PATH_HEADER, SCHEME_HEADER
from ..auth.hybrid_cookies import refresh_location
from ..auth.identity import Identity
from ..errors import AuthenticationError, CoatcheckError, ConfigurationError, TokenError
from ..redirects import safe_redirect
from ..sessions.data import SessionBackend
from ..sessions.flash import flash as _flash
from ..sessions.flash import pop_flashes as _pop_flashes
from ..sessions.mapping import SessionMapping
from ..sessions.record import SessionRecord
from ._session_glue import LoginWatch, visitor_of
from .dbsc import dbsc_endpoint, method_not_allowed, serve_dbsc
from .http import error_headers, error_json, error_status

__all__ = [
    "AUTH_ERROR_KEY",
    "IDENTITY_KEY",
    "RECORD_KEY",
    "SESSION_KEY",
    "AuthMiddleware",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "SessionMiddleware",
    "auth_error_of",
    "flash",
    "identity_of",
    "pop_flashes",
    "request_headers",
    "session_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Scope key holding the request's Identity (``None`` for a guest).
IDENTITY_KEY = "coatcheck.identity"
#: Scope key holding the request headers as a ``dict[str, str]`` (built once here).
HEADERS_KEY = "coatcheck.headers"
#: Scope key holding why a presented credential was refused (a DPoP proof or binding),
#: for the 401 a route then answers; ``None`` otherwise.
AUTH_ERROR_KEY = "coatcheck.auth_error"
#: Scope key holding the server-side session behind the identity (session mode), read
#: once by the authentication and reused by :class:`SessionMiddleware`.
RECORD_KEY = "coatcheck.record"
#: Scope key of the session mapping: Starlette's own, so ``request.session`` finds it.
SESSION_KEY = "session"
_SET_COOKIE = b"set-cookie"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request headers as ``{lower-case name: value}``, never raising.

    Repeated fields are joined with ", " (RFC 9110 §5.3), except Cookie, joined with
    "; " (RFC 9113 §8.2.3). A request with a ``DPoP`` header also gets the pseudo-headers
    ``:method``, ``:scheme`` and ``:path`` (as sent, without the query) that its proof
    is checked against (:mod:`coatcheck.auth.dpop`). The middleware caches the result
    in the scope.
    """
    cached = scope.get(HEADERS_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        # ASGI servers lower-case names; latin-1 maps every byte, so this cannot fail.
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            headers[name] += ("; " if name == "cookie" else ", ") + value
        else:
            headers[name] = value
    if "dpop" in headers:
        headers[METHOD_HEADER] = str(scope.get("method") or "GET")
        headers[SCHEME_HEADER] = str(scope.get("scheme") or "http")
        raw = scope.get("raw_path")
        # raw_path is the path exactly as the client sent it (ASGI 3, no query).
        headers[PATH_HEADER] = (
            raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
        )
    scope[HEADERS_KEY] = headers
    return headers


def identity_of(scope: Scope) -> Identity | None:
    """The Identity the middleware put in ``scope`` (``None`` for a guest or no middleware)."""
    identity = scope.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else None


def auth_error_of(scope: Scope) -> AuthenticationError | TokenError | None:
    """Why the middleware refused the credential the request presented, when it can say
    more than "invalid" (a DPoP proof or binding): raise it for the right 401."""
    error = scope.get(AUTH_ERROR_KEY)
    return error if isinstance(error, AuthenticationError | TokenError) else None


class AuthMiddleware:
    """Authenticate every HTTP and WebSocket request with ``authenticator``.

    The identity goes to ``scope["coatcheck.identity"]`` and, for Starlette,
    ``request.state.identity``. Paths in ``exclude_paths`` (a path or a prefix ending
    at a ``/`` boundary: ``"/static"`` covers ``/static/app.css``) skip
    authentication entirely, so health checks and key sets keep answering while the
    store is down. A store outage answers 503 ``{"error": "store_unavailable"}``;
    other coatcheck errors get their status from :func:`~coatcheck.adapters.http.error_status`.
    A cookie the app itself sets wins over the one the middleware would add.

    Hybrid mode (a :class:`~coatcheck.auth.HybridStrategy` with a
    :class:`~coatcheck.auth.HybridCookieTransport`): a request whose access cookie
    has expired is answered ``307`` to the refresh path with ``?next=``; on that path
    the middleware itself rotates the refresh cookie and answers ``307`` back to
    ``next`` (a same-origin path) with both cookies renewed, or cleared on failure.

    Device Bound Session Credentials (an authenticator with a ``binding``): the
    middleware itself answers ``POST`` on the binding's registration and refresh
    paths (:mod:`coatcheck.adapters.dbsc`); the app never sees them.
    """

    __slots__ = ("_app", "_authenticator", "_dbsc", "_exact", "_prefixes", "_refresh_path")

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        *,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        paths = [p.rstrip("/") or "/" for p in exclude_paths]
        self._exact = frozenset(paths)
        self._prefixes = tuple(p + "/" for p in paths if p != "/")
        self._refresh_path = authenticator.refresh_path
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self._app(scope, receive, send)
            return
        if self._exact:
            path = scope.get("path", "")
            if path in self._exact or path.startswith(self._prefixes):
                _put(scope, None, None)
                await self._app(scope, receive, send)
                return
        headers = request_headers(scope)
        refresh_path = self._refresh_path
        try:
            if self._dbsc and kind == "http" and scope.get("path") in self._dbsc:
                await self._device_binding(scope, headers, send)
                return
            if refresh_path is not None and kind == "http" and scope.get("path") == refresh_path:
                await self._refresh(scope, headers, send)
                return
            result = await self._authenticator.authenticate(headers)
        except CoatcheckError as exc:
            # Fail closed and say so: never a guest that was really a store outage.
            await _refuse(kind, exc, send)
            return
        if result.refresh and refresh_path is not None and kind == "http":
            # Hybrid mode, expired access cookie: refresh, then come back (method kept).
            query = scope.get("query_string", b"").decode("latin-1")
            location = refresh_location(refresh_path, scope.get("path", "/"), query)
            await _redirect(location, result.set_headers, send)
            return
        _put(scope, result.identity, result.record)
        if result.error is not None:
            scope[AUTH_ERROR_KEY] = result.error
        if not result.set_headers or kind != "http":
            await self._app(scope, receive, send)
            return
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.set_headers]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _merge(list(message.get("headers") or ()), extra)
            await send(message)

        await self._app(scope, receive, send_with_cookies)

    async def _refresh(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        # The refresh cookie is sent to this path only; rotate it and go back to `next`.
        _, set_headers = await self._authenticator.refresh(headers)
        try:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=8)
        except ValueError:  # too many fields: a hostile query, not a reason to fail
            query = {}
        await _redirect(safe_redirect((query.get("next") or [""])[0]), set_headers, send)

    async def _device_binding(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        # DBSC registration or refresh (the browser POSTs with no body worth reading).
        binding = self._authenticator.binding
        which = dbsc_endpoint(binding, scope.get("path", ""))
        if binding is None or which is None:  # pragma: no cover - only for the binding's paths
            return
        if scope.get("method") != "POST":
            status, out, body = method_not_allowed()
        else:
            status, out, body = await serve_dbsc(binding, which, headers)
        await _respond(status, out, body, send)

    def __repr__(self) -> str:
        return f"AuthMiddleware({self._app!r}, {self._authenticator!r})"


async def _respond(status: int, headers: list[tuple[str, str]], body: bytes, send: Send) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _redirect(location: str, set_headers: list[tuple[str, str]], send: Send) -> None:
    # 307, not 302/303: the browser repeats the same method and body (RFC 9110 §15.4.8).
    headers = [
        (b"location", location.encode("latin-1")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in set_headers]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _put(scope: Scope, identity: Identity | None, record: SessionRecord | None) -> None:
    scope[IDENTITY_KEY] = identity
    if record is not None:
        scope[RECORD_KEY] = record
    state = scope.get("state")
    if state is None:
        scope["state"] = {"identity": identity}
    else:
        state["identity"] = identity


def _merge(
    headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    # The app may have logged in or out on this request; its cookie is the newer one.
    own = [v.split(b"=", 1)[0] for k, v in headers if k.lower() == _SET_COOKIE]
    for name, value in extra:
        if name == _SET_COOKIE:
            if value.split(b"=", 1)[0] in own:
                continue
        elif any(k.lower() == name for k, _ in headers):
            continue  # e.g. DPoP-Nonce: the app's error response already says it
        headers.append((name, value))
    return headers


async def _refuse(kind: str, exc: CoatcheckError, send: Send) -> None:
    if kind == "websocket":
        # RFC 6455 §7.4.1 1011 / IANA 1013 "try again later"; before accept this is a 403.
        await send({"type": "websocket.close", "code": 1013 if error_status(exc) == 503 else 1008})
        return
    body = error_json(exc)
    headers = [(k.encode(), v.encode()) for k, v in error_headers(exc)]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": error_status(exc), "headers": headers})
    await send({"type": "http.response.body", "body": body})


def session_of(scope: Any) -> SessionMapping:
    """The session mapping of a request (a scope, or a Starlette/FastAPI ``Request``).

    :raises ConfigurationError: when no :class:`SessionMiddleware` handled the request.
    """
    scope = getattr(scope, "scope", scope)
    session = scope.get(SESSION_KEY) if isinstance(scope, MutableMapping) else None
    if not isinstance(session, SessionMapping):
        raise ConfigurationError("there is no session: add coatcheck's SessionMiddleware")
    return session


def flash(request: Any, message: str, category: str = "message") -> None:
    """Leave ``message`` for the next page (see :mod:`coatcheck.sessions.flash`).

    ``request`` is a Starlette/FastAPI ``Request`` or an ASGI scope. Raises
    ConfigurationError without :class:`SessionMiddleware`, SessionValueError for
    non-text arguments.
    """
    _flash(session_of(request), message, category)


def pop_flashes(
    request: Any, categories: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Take the pending ``(category, message)`` pairs (all, or those ``categories``)."""
    wanted = None if categories is None else frozenset(categories)
    return _pop_flashes(session_of(request), wanted)


class SessionMiddleware:
    """A session mapping in ``scope["session"]`` for every visitor (``request.session``).

    A drop-in for Starlette's ``SessionMiddleware``: swap the class, give it
    ``sessions`` (a :class:`~coatcheck.sessions.StoreSessions` for a store, or a
    :class:`~coatcheck.sessions.CookieSessions` for a signed or encrypted cookie), and
    ``request.session`` works as before, with JSON values only. The mapping is saved
    once, when the response starts, and only when it changed; a guest who stores
    nothing costs no store call and gets no cookie.

    With coatcheck's authentication, install it inside
    :class:`AuthMiddleware` (``Middleware(AuthMiddleware, ...)`` first, then this) and
    pass the same ``authenticator``: in session mode the data then lives in the login
    session that authentication already read (no second read), and when the app logs
    in or out the data follows to a new id (``on_login`` / ``on_logout`` of the
    sessions). WebSocket connections read the session and never save it. A store
    failure answers 503, data too large or not JSON 500 (``session_too_large``,
    ``session_value_invalid``), with the JSON error body.

    Paths in ``exclude_paths`` (as :class:`AuthMiddleware` takes them) get an empty
    session that is never read nor saved, so health checks make no store call.

    :raises ConfigurationError: when the session cookie has the credential cookie's name.
    """

    __slots__ = ("_app", "_exact", "_logins", "_prefixes", "_sessions")

    def __init__(
        self,
        app: ASGIApp,
        sessions: SessionBackend,
        *,
        authenticator: Authenticator | None = None,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._sessions = sessions
        self._logins = None if authenticator is None else LoginWatch(authenticator, sessions)
        paths = [p.rstrip("/") or "/" for p in exclude_paths]
        self._exact = frozenset(paths)
        self._prefixes = tuple(p + "/" for p in paths if p != "/")

    @property
    def sessions(self) -> SessionBackend:
        return self._sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self._app(scope, receive, send)
            return
        if self._exact:
            path = scope.get("path", "")
            if path in self._exact or path.startswith(self._prefixes):
                scope[SESSION_KEY] = SessionMapping()
                await self._app(scope, receive, send)
                return
        headers = request_headers(scope)
        identity = scope.get(IDENTITY_KEY)
        visitor = visitor_of(
            identity if isinstance(identity, Identity) else None, scope.get(RECORD_KEY)
        )
        try:
            session: SessionMapping = await self._sessions.open(headers, visitor)
        except CoatcheckError as exc:
            await _refuse(kind, exc, send)
            return
        scope[SESSION_KEY] = session
        if kind != "http":
            await self._app(scope, receive, send)
            return
        sessions, logins = self._sessions, self._logins
        refused = False

        async def send_saving(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the app's response was replaced by the error
            if message["type"] == "http.response.start":
                own = list(message.get("headers") or ())
                try:
                    after = None
                    if logins is not None:
                        cookies = (
                            v.decode("latin-1") for k, v in own if k.lower() == _SET_COOKIE
                        )
                        after = await logins.visitor(cookies, headers)
                    extra = await sessions.save(session, after)
                except CoatcheckError as exc:
                    refused = True
                    await _refuse(kind, exc, send)
                    return
                if extra or session or session.base:
                    # The response depends on the cookie: caches must key on it.
                    own.append((b"vary", b"Cookie"))
                    own += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
                    message["headers"] = own
            await send(message)

        await self._app(scope, receive, send_saving)

    def __repr__(self) -> str:
        return f"SessionMiddleware({self._app!r}, {self._sessions!r})"
