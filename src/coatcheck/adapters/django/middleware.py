"""``request.user`` from coatcheck: sessions, JWTs or hybrid mode, over cookie or bearer.

Put :class:`AuthenticationMiddleware` where Django's own goes (it is a subclass, so
the admin's checks accept it), after ``SessionMiddleware``::

    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "coatcheck.adapters.django.middleware.AuthenticationMiddleware",
        ...
    ]
    AUTHENTICATION_BACKENDS = [
        "coatcheck.adapters.django.backends.CoatcheckBackend",  # or ModelBackend
    ]

Every request is authenticated by the :class:`~coatcheck.auth.Authenticator` of
``settings.COATCHECK`` (:func:`~coatcheck.adapters.django.auth.authenticate`): on the
ASGI path in the event loop against the async store (no thread hop), on WSGI with the
blocking one. ``request.user`` (and Django 5's ``request.auser()``) is the user behind
the credential, looked up lazily; a guest is ``AnonymousUser``.

* ``MODE = "session"``: the credential is the session engine's own cookie
  (``SESSION_ENGINE = "coatcheck.adapters.django.sessions"``), so ``login()`` /
  ``logout()`` / ``update_session_auth_hash()`` work as in any Django project, and the
  record read here is handed to ``request.session`` (one store read per request).
  The user comes from Django's ``get_user`` (its session-hash check included).
* ``MODE = "jwt"`` / ``"hybrid"``: ``login()`` issues the token (the
  ``user_logged_in`` signal), ``logout()`` revokes and clears it (``user_logged_out``);
  the cookies go out with the response. In hybrid mode an expired access cookie is
  sent ``307`` to ``REFRESH_PATH``, which this middleware answers itself (rotating the
  refresh cookie, with reuse detection) and sends back.

CSRF stays Django's: ``CsrfViewMiddleware`` checks every cookie-authenticated unsafe
request as usual; a request whose credential was a valid bearer token (which a
browser never attaches by itself) is exempt, and nothing else is.

A store outage answers ``503`` (``{"error": "store_unavailable", ...}``, Retry-After),
never a guest. Malformed cookies and tokens make a guest (an API view then answers
401), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth import get_user
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject

from ...auth.authenticator import AuthResult
from ...auth.hybrid_cookies import refresh_location
from ...auth.identity import Identity
from ...auth.transports import BearerTransport, CookieTransport
from ...errors import CoatcheckError
from ...redirects import safe_redirect
from ...sync import run_sync
from ..http import error_headers, error_json, error_status
from .auth import aauthenticate_request, authenticate_request, headers_of
from .conf import Runtime, get_runtime
from .sessions import SessionStore
from .signals import CURRENT_SESSION
from .signals import connect as _connect_signals

__all__ = ["COOKIES_ATTR", "AuthenticationMiddleware", "apply_set_cookies", "error_response"]

#: Request attribute: Set-Cookie values a login or logout during the request wrote.
COOKIES_ATTR = "_coatcheck_cookies"
_MAX_NEXT = 2048


def error_response(exc: CoatcheckError) -> HttpResponse:
    """The JSON error every adapter answers for ``exc`` (status, body, headers)."""
    response = HttpResponse(error_json(exc), status=error_status(exc))
    for name, value in error_headers(exc):
        response[name] = value
    return response


def apply_set_cookies(response: HttpResponse, values: Iterable[str]) -> None:
    """Put coatcheck's ``Set-Cookie`` values on a Django response (which keeps cookies
    in ``response.cookies``, one per name: the last value for a name wins)."""
    for raw in values:
        first, *attributes = raw.split(";")
        name, _, value = first.partition("=")
        options: dict[str, Any] = {"httponly": False, "secure": False, "samesite": None}
        for attribute in attributes:
            key, _, arg = attribute.strip().partition("=")
            key = key.lower()
            if key == "max-age":
                options["max_age"] = int(arg)
            elif key == "expires" and "max_age" not in options:
                options["expires"] = arg
            elif key in ("path", "domain"):
                options[key] = arg
            elif key == "secure":
                options["secure"] = True
            elif key == "httponly":
                options["httponly"] = True
            elif key == "samesite":
                options["samesite"] = arg
        response.set_cookie(name.strip(), value.strip(), **options)


def _is_session_cookie(raw: str, runtime: Runtime) -> bool:
    return runtime.config.mode == "session" and raw.partition("=")[0].strip() == (
        runtime.config.cookie_name
    )


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):  # type: ignore[misc]
    """Sets ``request.user`` from coatcheck's credential (see the module docstring)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        _connect_signals()  # login() and logout() issue and revoke the credential
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._is_async:
            return self.__acall__(request)
        runtime = get_runtime()
        try:
            if self._is_refresh(request, runtime):
                return self._refresh(request, runtime)
            result = authenticate_request(request)
        except CoatcheckError as exc:
            return error_response(exc)
        early = self._attach(request, result, runtime)
        if early is not None:
            return early
        token = CURRENT_SESSION.set(_current(result))
        try:
            response = self.get_response(request)
        finally:
            CURRENT_SESSION.reset(token)
        return self._finish(request, result, response, runtime)

    async def __acall__(self, request: HttpRequest) -> Any:
        runtime = get_runtime()
        try:
            if self._is_refresh(request, runtime):
                return await self._arefresh(request, runtime)
            result = await aauthenticate_request(request)
        except CoatcheckError as exc:
            return error_response(exc)
        early = self._attach(request, result, runtime)
        if early is not None:
            return early
        token = CURRENT_SESSION.set(_current(result))
        try:
            response = await self.get_response(request)
        finally:
            CURRENT_SESSION.reset(token)
        return self._finish(request, result, response, runtime)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """A coatcheck error from a view (a bad body, a refused credential) answers its
        4xx (or 503) JSON, as everywhere else; other exceptions are Django's."""
        if isinstance(exception, CoatcheckError):
            return error_response(exception)
        return None

    # -- hybrid mode's browser refresh ------------------------------------------------------

    @staticmethod
    def _is_refresh(request: HttpRequest, runtime: Runtime) -> bool:
        path = runtime.sync.authenticator.refresh_path
        return path is not None and request.path_info == path

    @staticmethod
    def _back(request: HttpRequest, set_headers: list[tuple[str, str]]) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        try:
            nexts = parse_qs(query[: _MAX_NEXT * 2], max_num_fields=8).get("next") or [""]
        except ValueError:  # too many fields: a hostile query, not a reason to fail
            nexts = [""]
        response = HttpResponseRedirect(safe_redirect(nexts[0]))
        response.status_code = 307  # the method is kept (RFC 9110 §15.4.8)
        response["Cache-Control"] = "no-store"
        apply_set_cookies(response, [v for k, v in set_headers if k.lower() == "set-cookie"])
        return response

    def _refresh(self, request: HttpRequest, runtime: Runtime) -> HttpResponse:
        _, set_headers = run_sync(runtime.sync.authenticator.refresh(headers_of(request)))
        return self._back(request, set_headers)

    async def _arefresh(self, request: HttpRequest, runtime: Runtime) -> HttpResponse:
        authenticator = runtime.async_parts().authenticator
        _, set_headers = await authenticator.refresh(headers_of(request))
        return self._back(request, set_headers)

    # -- the request and the response -----------------------------------------------------

    def _attach(
        self, request: HttpRequest, result: AuthResult, runtime: Runtime
    ) -> HttpResponse | None:
        path = runtime.sync.authenticator.refresh_path
        if result.refresh and path is not None:
            # Hybrid mode, expired access cookie: refresh, then come back (method kept).
            location = refresh_location(
                path, request.path_info, request.META.get("QUERY_STRING", "")
            )
            response = HttpResponseRedirect(location)
            response.status_code = 307
            response["Cache-Control"] = "no-store"
            apply_set_cookies(response, [v for k, v in result.set_headers if k == "set-cookie"])
            return response
        setattr(request, COOKIES_ATTR, None)
        identity = result.identity
        session = getattr(request, "session", None)
        if isinstance(session, SessionStore):
            session.client = (
                request.META.get("HTTP_USER_AGENT", "")[:512],
                request.META.get("REMOTE_ADDR", "") or "",
            )
            session.current = identity
        if (
            identity is not None
            and result.record is not None
            and identity.via == "cookie"
            and runtime.config.mode == "session"
            and isinstance(session, SessionStore)
            and session.session_key is not None
        ):
            # The record the authenticator just read is request.session's: no second
            # read (and on the ASGI path no sync read in a thread) when the view uses it.
            session.prime(session.session_key, result.record)
        if identity is not None and identity.via == "bearer":
            # A browser never attaches Authorization by itself, so a valid bearer
            # credential cannot be a forged cross-site request (Django REST framework
            # draws the same line). A cookie-authenticated request is checked as usual.
            request._dont_enforce_csrf_checks = True
        request.user = SimpleLazyObject(lambda: _user(request, identity, result, runtime))
        request.auser = lambda: _auser(request, identity, result, runtime)
        return None

    def _finish(
        self, request: HttpRequest, result: AuthResult, response: Any, runtime: Runtime
    ) -> Any:
        written: list[str] | None = getattr(request, COOKIES_ATTR, None)
        if written is not None:
            # A login or logout this request: its cookies replace any renewal.
            apply_set_cookies(response, written)
        elif result.set_headers:
            apply_set_cookies(
                response,
                [
                    value
                    for key, value in result.set_headers
                    if key == "set-cookie" and not _is_session_cookie(value, runtime)
                ],
            )
        if result.presented:
            patch_vary_headers(response, ("Cookie", "Authorization"))
        return response


def _current(result: AuthResult) -> tuple[str, str | None] | None:
    identity = result.identity
    return None if identity is None else (identity.user_id, identity.session_id)


def _session_for(
    request: HttpRequest, identity: Identity, result: AuthResult
) -> SessionStore | None:
    """The engine session behind a session-mode identity, primed with its record."""
    session = getattr(request, "session", None)
    token = _presented_token(request, identity)
    if token is None:
        return None
    if not isinstance(session, SessionStore) or session.session_key != token:
        # A bearer token: its own session object, never request.session (whose cookie
        # the session middleware would then write).
        session = SessionStore(token)
    if result.record is not None:
        session.prime(token, result.record)
    return session


def _presented_token(request: HttpRequest, identity: Identity) -> str | None:
    kind = BearerTransport if identity.via == "bearer" else CookieTransport
    headers = headers_of(request)
    for transport in get_runtime().sync.authenticator.transports:
        if isinstance(transport, kind):
            token = transport.read(headers)
            if token is not None:
                return token
    return None


class _Shim:
    """What Django's ``get_user`` reads of a request: its session."""

    def __init__(self, session: SessionStore) -> None:
        self.session = session


def _user(request: HttpRequest, identity: Identity | None, result: AuthResult,
          runtime: Runtime) -> Any:  # fmt: skip
    if identity is None:
        return AnonymousUser()
    if runtime.config.mode == "session":
        session = _session_for(request, identity, result)
        if session is None:
            return AnonymousUser()
        own = session is getattr(request, "session", None)
        return get_user(request if own else _Shim(session))
    from .backends import user_for

    return user_for(identity)


async def _auser(request: HttpRequest, identity: Identity | None, result: AuthResult,
                 runtime: Runtime) -> Any:  # fmt: skip
    cached = getattr(request, "_acached_user", None)
    if cached is not None:
        return cached
    if identity is None:
        user: Any = AnonymousUser()
    elif runtime.config.mode == "session":
        session = _session_for(request, identity, result)
        if session is None:
            user = AnonymousUser()
        else:
            target = request if session is getattr(request, "session", None) else _Shim(session)
            try:
                from django.contrib.auth import aget_user  # Django 5: the session's aget
            except ImportError:  # Django 4.2
                user = await sync_to_async(get_user)(target)
            else:
                user = await aget_user(target)
    else:
        from .backends import user_for

        user = await sync_to_async(user_for)(identity)
    request._acached_user = user
    return user
