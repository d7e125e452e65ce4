"""Flask extension: sessions, JWTs or hybrid mode, cookie and bearer, CSRF, on sync I/O.

::

    from coatcheck.adapters.flask import CoatCheck, current_identity, login_required

    coatcheck = CoatCheck(app, authenticator=authenticator, csrf=CsrfProtector(secret))

    @app.post("/login")
    def login():
        user = check_password(...)
        coatcheck.login(user.id, data={"name": user.name}, persistent=True)
        return redirect("/")

    @app.get("/me")
    @login_required
    def me():
        return {"name": current_identity.name}

Read JSON bodies with :func:`json_body` rather than ``request.get_json()``: it refuses
what ``json.loads`` lets through and code after it chokes on (a lone surrogate from
``"\\ud800"``, a NUL, ``1e999``, nesting deep enough for a RecursionError) with a 400
``invalid_text`` / ``bad_request``, and a body over its limit with 413.

The authenticator's coroutines run through :func:`~coatcheck.sync.run_sync`, so its
store must never suspend: ``open_store(url, sync=True)``, memory or SQLite. Every
coatcheck error becomes the JSON body ``{"error": code, "message": ...}`` with the
status of :func:`~coatcheck.adapters.http.error_status` (401, 403, 503 ...).

``flask.session`` for every visitor: :class:`CoatCheckSessionInterface` is a drop-in
for Flask's default session and Flask-Session (``app.session_interface = ...``), kept
in a store or a signed cookie; ``CoatCheck(app, ..., sessions=...)`` installs it with
the login-aware rules (the data follows a login to a new id)::

    coatcheck = CoatCheck(app, authenticator=authenticator,
                          sessions=StoreSessions(SessionManager(store)))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request, session
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request
from werkzeug.local import LocalProxy

from ..auth.authenticator import Authenticator, AuthResult, LoginResult
from ..auth.hybrid_cookies import HybridCookieTransport
from ..auth.identity import Identity
from ..auth.transports import CookieTransport
from ..bodies import parse_json
from ..cookies import check_distinct_names
from ..csrf import CsrfProtector
from ..csrf.rules import CsrfRequest, CsrfRules
from ..errors import (
    CoatcheckError,
    ConfigurationError,
    InputError,
    InvalidCredentials,
    MissingCredentials,
    PayloadTooLarge,
)
from ..policies import CookiePolicy
from ..sessions.data import GUEST, SessionBackend
from ..sessions.flash import flash as _flash
from ..sessions.flash import pop_flashes as _pop_flashes
from ..sessions.mapping import SessionMapping
from ..sync import run_sync
from ._session_glue import LoginWatch, credential_cookie_names, visitor_of
from .dbsc import dbsc_endpoint, method_not_allowed, serve_dbsc
from .http import error_body, error_headers, error_json, error_status
from .wsgi import request_headers

__all__ = [
    "CoatCheck",
    "CoatCheckSessionInterface",
    "FlaskSession",
    "current_identity",
    "flash",
    "json_body",
    "login_required",
    "pop_flashes",
]

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION = "coatcheck"
_IDENTITY = "_coatcheck_identity"
_PRESENTED = "_coatcheck_presented"
_AUTH_ERROR = "_coatcheck_auth_error"
_HEADERS = "_coatcheck_headers"
_CSRF = "_coatcheck_csrf"
_RESULT = "_coatcheck_result"
_ERROR = "_coatcheck_session_error"


class CoatCheck:
    """Authenticate every Flask request with ``authenticator``.

    ``csrf``: a :class:`~coatcheck.csrf.CsrfProtector` to refuse forged unsafe requests
    with the decisions of :class:`~coatcheck.csrf.rules.CsrfRules`, as the ASGI and
    WSGI middleware do: the token comes from the ``policy.header_name`` header or the
    ``policy.field_name`` form field (a body of at most ``csrf_max_body`` bytes), and
    templates get ``csrf_token()``, which also sets the pre-session cookie for guests
    and the double-submit cookie in jwt mode. The credential cookies and the CSRF
    cookies' ``Secure`` (and ``__Host-`` prefix) come from the authenticator's cookie
    transports. ``own_origin``: the app's public ``scheme://host[:port]`` when behind
    a proxy. ``exclude_paths`` skip both. An authenticator with a DBSC ``binding``
    gets its registration and refresh endpoints answered here, before any view.

    ``sessions``: a :class:`~coatcheck.sessions.StoreSessions` or
    :class:`~coatcheck.sessions.CookieSessions` for ``flask.session``; :meth:`init_app`
    installs a :class:`CoatCheckSessionInterface` that knows the login (in session mode
    the data lives in the login session; at login and logout it moves to a new id).
    A guest's CSRF tokens then bind to their session once it exists.

    :raises ConfigurationError: from :meth:`init_app` if a store in use suspends
        (an async store in a sync app) on the first request; at construction, for two
        coatcheck cookies (login, refresh, session data, CSRF) that share a name.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        authenticator: Authenticator,
        csrf: CsrfProtector | None = None,
        own_origin: str | None = None,
        exclude_paths: Iterable[str] = (),
        csrf_max_body: int = 64 * 1024,
        protect_forms: bool = True,
        sessions: SessionBackend | None = None,
    ) -> None:
        self.authenticator = authenticator
        # getattr: an authenticator stand-in (tests, proxies) may have no DBSC at all.
        self._binding = getattr(authenticator, "binding", None)
        self.sessions = sessions
        self.session_interface = (
            None
            if sessions is None
            else CoatCheckSessionInterface(sessions, authenticator=authenticator)
        )
        self.csrf = csrf
        self.csrf_rules = None if csrf is None else _rules_for(
            csrf, authenticator, own_origin=own_origin or "", max_body=csrf_max_body,
            protect_forms=protect_forms,
        )  # fmt: skip
        if sessions is not None and self.csrf_rules is not None:
            # The credential cookies were checked against each; now all of them at once.
            rules = self.csrf_rules
            check_distinct_names(
                [
                    *credential_cookie_names(authenticator),
                    ("session-data", sessions.cookie_name),
                    ("CSRF pre-session", rules.pre_cookie),
                    ("CSRF double-submit", rules.double_cookie),
                ]
            )
        paths = [p.rstrip("/") or "/" for p in exclude_paths]
        self._exact = frozenset(paths)
        self._prefixes = tuple(p + "/" for p in paths if p != "/")
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the request hooks, the error handler and the template helpers."""
        app.extensions[_EXTENSION] = self
        if self.session_interface is not None:
            app.session_interface = self.session_interface
        app.before_request(self._before)
        app.after_request(self._after)
        app.register_error_handler(CoatcheckError, _error_response)
        app.context_processor(self._template_globals)

    # -- per request ------------------------------------------------------------------------

    def _excluded(self, path: str) -> bool:
        return bool(self._exact) and (path in self._exact or path.startswith(self._prefixes))

    def authenticate(self) -> AuthResult:
        """This request's authentication, made once (the session interface may ask first).

        Raises StoreError / StoreUnavailable.
        """
        done = g.get(_RESULT)
        if isinstance(done, AuthResult):
            return done
        if self._excluded(request.path):
            result = AuthResult(None)
        else:
            # Raises StoreUnavailable (503 through the error handler): fail closed.
            result = run_sync(self.authenticator.authenticate(request_headers(request.environ)))
        setattr(g, _RESULT, result)
        setattr(g, _IDENTITY, result.identity)
        setattr(g, _PRESENTED, result.presented)
        setattr(g, _AUTH_ERROR, result.error)
        setattr(g, _HEADERS, list(result.set_headers))
        return result

    def _before(self) -> Response | None:
        failed = g.pop(_ERROR, None)
        if isinstance(failed, CoatcheckError):
            raise failed  # the session could not be opened: its status, not a bare 500
        binding = self._binding
        which = dbsc_endpoint(binding, request.path)
        if binding is not None and which is not None:
            # DBSC registration or refresh: answered here, before any view or CSRF check.
            if request.environ.get("REQUEST_METHOD") != "POST":
                status, out, body = method_not_allowed()
            else:
                # Raises StoreUnavailable (503 through the error handler): fail closed.
                headers = request_headers(request.environ)
                status, out, body = run_sync(serve_dbsc(binding, which, headers))
            return Response(body, status=status, headers=out)
        if self._excluded(request.path):
            self.authenticate()
            return None
        result = self.authenticate()
        rules = self.csrf_rules
        if rules is None:
            return None
        state = rules.request(request_headers(request.environ))
        setattr(g, _CSRF, state)
        # The method as sent: werkzeug upper-cases request.method, but "get" is not GET
        # (RFC 9110 §9.1). Raises CsrfError (403 through the error handler).
        method = request.environ.get("REQUEST_METHOD", "")
        check = state.decide(method, result.identity, guest=_guest_binding(result.identity))
        if check is not None:
            rules.verify(check, _form_body(rules.max_body) if check.read_form else None)
        return None

    def _after(self, response: Response) -> Response:
        pending: list[tuple[str, str]] = g.get(_HEADERS, [])
        state = g.get(_CSRF)
        if isinstance(state, CsrfRequest):
            # A logout (the view's cookies or cc.logout()'s) clears the CSRF cookies too.
            app_cookies = [
                *response.headers.getlist("set-cookie"),
                *(v for k, v in pending if k.lower() == "set-cookie"),
            ]
            pending = pending + [("set-cookie", c) for c in state.response_cookies(app_cookies)]
        own = {v.split("=", 1)[0] for v in response.headers.getlist("set-cookie")}
        for name, value in pending:
            if name.lower() == "set-cookie" and value.split("=", 1)[0] in own:
                continue  # the view set this cookie itself: it is the newer one
            response.headers.add(name, value)
        return response

    def _template_globals(self) -> dict[str, Any]:
        return {"current_identity": _current(), "csrf_token": self.csrf_token}

    # -- helpers for views ------------------------------------------------------------------

    @property
    def identity(self) -> Identity | None:
        """This request's Identity (``None`` for a guest)."""
        return _current()

    def require(self) -> Identity:
        """This request's Identity, or raise MissingCredentials / InvalidCredentials (401),
        DeviceBindingRequired for a DBSC-bound session without its bound cookie."""
        identity = _current()
        if identity is not None:
            return identity
        error = g.get(_AUTH_ERROR)
        if error is not None:
            # A refused DPoP proof or binding (its own 401 and challenge), or DBSC's
            # DeviceBindingRequired (a bound session without its bound cookie).
            raise error
        if g.get(_PRESENTED, False):
            raise InvalidCredentials("the credentials are invalid or have expired")
        raise MissingCredentials("log in first: no session cookie or bearer token was sent")

    def login(
        self,
        user_id: str,
        *,
        data: dict[str, Any] | None = None,
        persistent: bool = True,
        revoke_previous: bool = True,
    ) -> LoginResult:
        """Log ``user_id`` in (after checking the password): a brand-new credential.

        The cookie goes on this request's response; a native client takes
        ``result.token``. Raises StoreError / StoreUnavailable.
        """
        result = run_sync(
            self.authenticator.login(
                user_id,
                headers=request_headers(request.environ),
                data=data,
                persistent=persistent,
                revoke_previous=revoke_previous,
                ip=request.remote_addr or "",
            )
        )
        _replace_headers(result.set_headers)
        setattr(g, _IDENTITY, result.identity)
        return result

    def logout(self) -> None:
        """Revoke the presented credential and clear the cookie on the response.

        Raises StoreError / StoreUnavailable.
        """
        cleared = run_sync(self.authenticator.logout(request_headers(request.environ)))
        _replace_headers(cleared)
        setattr(g, _IDENTITY, None)

    def csrf_token(self) -> str:
        """The CSRF token for this request's forms, one per request ("" without ``csrf``).

        For a guest it sets the pre-session cookie, in jwt mode the double-submit cookie.
        """
        state = g.get(_CSRF)
        if not isinstance(state, CsrfRequest):
            return ""
        identity = _current()
        return state.token(identity, guest=_guest_binding(identity))

    def __repr__(self) -> str:
        return f"CoatCheck({self.authenticator!r})"


def _guest_binding(identity: Identity | None) -> str:
    """The id a guest's CSRF tokens bind to: their session's, once it exists."""
    if identity is not None:
        return ""
    current = getattr(request, "_coatcheck_session", None)
    return current.binding if isinstance(current, SessionMapping) else ""


class FlaskSession(SessionMapping, SessionMixin):
    """``flask.session``: a :class:`~coatcheck.sessions.SessionMapping` (JSON only, changes
    found by itself, nested ones too) with Flask's ``SessionMixin``.

    ``modified`` is computed, so ``session.modified = True`` is not needed (and is
    ignored); ``permanent`` is kept as Flask keeps it (the ``_permanent`` key), while
    the cookie's lifetime is the sessions backend's.
    """

    @property
    def modified(self) -> bool:
        return self.changes() is not None

    @modified.setter
    def modified(self, value: bool) -> None:
        pass  # changes are found by comparing with what was stored

    @property
    def accessed(self) -> bool:
        return True

    @accessed.setter
    def accessed(self, value: bool) -> None:
        pass  # the adapter adds Vary: Cookie whenever the session holds data


class CoatCheckSessionInterface(SessionInterface):
    """``flask.session`` from a coatcheck sessions backend: ``app.session_interface = ...``.

    A drop-in for Flask's default session and Flask-Session: views keep using
    ``flask.session``, ``flask.flash`` and ``get_flashed_messages``. The session is
    saved once per request, after the ``after_request`` handlers, and only when it
    changed; a guest who stores nothing costs no store call and gets no cookie. The
    backend's coroutines run with :func:`~coatcheck.sync.run_sync` (use a store that
    never suspends: ``open_store(url, sync=True)``, SQLite, memory).

    ``authenticator`` (given by :class:`CoatCheck`, which also authenticates the request
    first) makes it login-aware: the data follows a login or logout to a new id. A store
    failure while saving answers 503, data too large or not JSON 500, as JSON errors.

    :raises ConfigurationError: for a session cookie named like the credential cookie.
    """

    def __init__(
        self, sessions: SessionBackend, *, authenticator: Authenticator | None = None
    ) -> None:
        self.sessions = sessions
        self._logins = None if authenticator is None else LoginWatch(authenticator, sessions)

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        """The request's session (Flask calls it before any ``before_request`` hook)."""
        headers = request_headers(request.environ)
        extension = app.extensions.get(_EXTENSION)
        try:
            visitor = GUEST
            if isinstance(extension, CoatCheck):
                result = extension.authenticate()
                visitor = visitor_of(result.identity, result.record)
            opened: FlaskSession = run_sync(
                self.sessions.open(headers, visitor, factory=FlaskSession)
            )
        except CoatcheckError as exc:
            if not isinstance(extension, CoatCheck):
                raise
            # Answered by CoatCheck's first before_request hook with the error's status.
            setattr(g, _ERROR, exc)
            return FlaskSession()
        request._coatcheck_session = opened  # type: ignore[attr-defined]
        return opened

    def save_session(
        self, app: Flask, session: SessionMixin, response: Response
    ) -> None:
        """Write the session if it changed and add its cookie to ``response``."""
        if not isinstance(session, FlaskSession) or session.handle is None:
            return
        try:
            after = None
            if self._logins is not None:
                after = run_sync(
                    self._logins.visitor(
                        response.headers.getlist("Set-Cookie"), request_headers(request.environ)
                    )
                )
            extra = run_sync(self.sessions.save(session, after))
        except CoatcheckError as exc:
            _replace_with_error(response, exc)
            return
        for name, value in extra:
            response.headers.add(name, value)
        if session.base or session:
            response.vary.add("Cookie")


def _replace_with_error(response: Response, exc: CoatcheckError) -> None:
    response.status_code = error_status(exc)
    response.set_data(error_json(exc))
    response.headers.pop("Set-Cookie", None)
    for name, value in error_headers(exc):
        response.headers[name] = value


def flash(request: Any, message: str, category: str = "message") -> None:
    """Leave ``message`` for the next page, in this request's ``flask.session``.

    ``request`` is ``flask.request`` (the session is that of the current request);
    ``flask.flash`` works as well, on the same key. Raises SessionValueError for
    non-text arguments.
    """
    _flash(session, message, category)


def pop_flashes(request: Any, categories: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Take the pending ``(category, message)`` pairs (also what ``flask.flash`` left)."""
    wanted = None if categories is None else frozenset(categories)
    return _pop_flashes(session, wanted)


def _rules_for(
    protector: CsrfProtector,
    authenticator: Authenticator,
    *,
    own_origin: str,
    max_body: int,
    protect_forms: bool,
) -> CsrfRules:
    # The credential cookies are the authenticator's (and a hybrid refresh cookie); the
    # CSRF cookies follow the first one's Secure and SameSite.
    cookies = [t for t in authenticator.transports if isinstance(t, CookieTransport)]
    names = [t.cookie_name for t in cookies]
    names += [t.refresh_name for t in cookies if isinstance(t, HybridCookieTransport)]
    return CsrfRules(
        protector,
        credential_cookies=names,
        cookie_policy=cookies[0].policy if cookies else CookiePolicy(),
        own_origin=own_origin,
        max_body=max_body,
        protect_forms=protect_forms,
    )


def _form_body(limit: int) -> bytes | None:
    """The form body if it declares at most ``limit`` bytes, kept for Flask to parse."""
    length = request.content_length
    if length is None or length == 0:
        return b""  # no declared length: nothing is read (PEP 3333)
    if length > limit:
        return None
    # cache=True: request.form parses these same bytes later.
    return request.get_data(cache=True, parse_form_data=False)


def json_body(*, max_bytes: int = 64 * 1024) -> Any:
    """This request's JSON body, parsed strictly (:func:`coatcheck.bodies.parse_json`).

    A refusal is a coatcheck error, which :class:`CoatCheck` answers with its JSON body.

    :raises InputError: (400) when the body is not ``application/json`` or not JSON.
    :raises InvalidText: (400) for a string that is not valid Unicode or holds a NUL.
    :raises PayloadTooLarge: (413) for a body over ``max_bytes``.
    """
    if not request.is_json:
        raise InputError("send the body as application/json")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"the body is over {max_bytes} bytes")
    # No declared length (chunked): read one byte past the limit, no more.
    data = request.stream.read(max_bytes + 1) if length is None else request.get_data(cache=True)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the body is over {max_bytes} bytes")
    return parse_json(data)


def _current() -> Identity | None:
    identity = g.get(_IDENTITY)
    return identity if isinstance(identity, Identity) else None


def _replace_headers(new: list[tuple[str, str]]) -> None:
    # A login or logout on this request supersedes a renewal the authenticator queued.
    names = {v.split("=", 1)[0] for k, v in new if k.lower() == "set-cookie"}
    kept = [
        (k, v)
        for k, v in g.get(_HEADERS, [])
        if not (k.lower() == "set-cookie" and v.split("=", 1)[0] in names)
    ]
    setattr(g, _HEADERS, kept + new)


def _error_response(exc: CoatcheckError) -> Response:
    response = current_app.json.response(error_body(exc))
    response.status_code = error_status(exc)
    for name, value in error_headers(exc):
        if name != "content-type":
            response.headers[name] = value
    return cast("Response", response)


def _extension() -> CoatCheck:
    ext = current_app.extensions.get(_EXTENSION)
    if not isinstance(ext, CoatCheck):
        raise ConfigurationError("CoatCheck(app, ...) was not set up on this Flask app")
    return ext


#: This request's Identity, or ``None`` for a guest (a proxy, like ``flask.g``).
current_identity: Identity | None = cast("Identity | None", LocalProxy(_current))


def login_required(view: F) -> F:
    """Answer 401 ``{"error": "missing_credentials" | "invalid_credentials", ...}`` to guests."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _extension().require()
        return view(*args, **kwargs)

    return cast("F", wrapper)
