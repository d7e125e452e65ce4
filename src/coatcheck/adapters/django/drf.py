"""Django REST framework on coatcheck: authentication classes, errors and parsing.

The token views live in :mod:`coatcheck.adapters.django.drf_views`: DRF reads
``DEFAULT_AUTHENTICATION_CLASSES`` while ``rest_framework.views`` is being imported, so
this module, which that setting names, must not import ``rest_framework.views`` itself
(djangorestframework-simplejwt splits ``authentication`` and ``views`` for the same reason).

In ``settings.py``::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "coatcheck.adapters.django.drf.BearerAuthentication",         # native apps
            "coatcheck.adapters.django.drf.SessionCookieAuthentication",  # the browser
        ],
    }

and in ``urls.py``::

    from coatcheck.adapters.django import drf_views

    urlpatterns = [
        path("api/token/", drf_views.TokenObtainView.as_view()),
        path("api/token/refresh/", drf_views.TokenRefreshView.as_view()),
        path("api/token/revoke/", drf_views.TokenRevokeView.as_view()),
    ]

* :class:`BearerAuthentication` reads ``Authorization: Bearer`` only, whatever the
  mode of ``settings.COATCHECK`` (a JWT, a hybrid access token, an opaque session
  token): no CSRF token is asked for, a browser never sends that header by itself.
* :class:`SessionCookieAuthentication` reads coatcheck's cookie only, and enforces
  Django's CSRF check exactly as DRF's ``SessionAuthentication`` does (unsafe methods
  need the ``csrftoken``), because the browser sends a cookie on its own.
* The token views answer as djangorestframework-simplejwt's do (``access``,
  ``refresh``), so its clients keep working: :class:`TokenObtainView` (a password for a
  pair), :class:`TokenRefreshView` (a rotating refresh in hybrid mode; a retired token
  that comes back revokes the whole family and answers ``refresh_token_reused``) and
  :class:`TokenRevokeView` (log out: the session ends, and hybrid access tokens with
  it, through the revocation feed).

Errors keep DRF's format with coatcheck's stable codes, ``{"detail": ..., "code":
"invalid_credentials"}`` (the shape simplejwt uses too); a malformed header, token or
body is a 4xx, never a 500. Each class authenticates with the Authenticator of
``settings.COATCHECK``; a subclass may set ``authenticator`` to use another one.

The Authenticator is driven synchronously (DRF views are synchronous), so its store
must do synchronous I/O (``settings.COATCHECK`` gives such a one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, CSRFCheck
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from ...auth import Authenticator, AuthResult, Identity
from ...auth.transports import BearerTransport, CookieTransport
from ...bodies import parse_json
from ...errors import (
    AuthenticationError,
    CoatcheckError,
    InvalidCredentials,
    PayloadTooLarge,
    RateLimited,
    TokenError,
)
from ...sync import run_sync
from ..http import error_status
from ..wsgi import request_headers
from .auth import RESULT_ATTR
from .conf import get_runtime
from .token_user import IdentityUser
from .users import user_of

__all__ = [
    "BearerAuthentication",
    "CoatcheckAPIError",
    "CredentialsRefused",
    "JSONBodyParser",
    "SessionCookieAuthentication",
    "SignInThrottled",
    "StatelessBearerAuthentication",
    "exception_handler",
    "user_of",
]

#: Longest JSON body the token views read (credentials are a few hundred bytes).
MAX_BODY = 16 * 1024
CHALLENGE = 'Bearer realm="api"'


class CredentialsRefused(exceptions.AuthenticationFailed):  # type: ignore[misc]
    """A presented credential was refused: 401, ``{"detail": message, "code": code}``."""

    def __init__(self, error: CoatcheckError) -> None:
        super().__init__({"detail": error.message, "code": error.code}, code=error.code)


class CoatcheckAPIError(exceptions.APIException):  # type: ignore[misc]
    """Any other coatcheck error in DRF's format, with the status coatcheck gives it
    everywhere (:func:`coatcheck.adapters.http.error_status`: 400, 409, 503 ...)."""

    def __init__(self, error: CoatcheckError) -> None:
        self.status_code = error_status(error)
        super().__init__({"detail": error.message, "code": error.code}, code=error.code)


class SignInThrottled(exceptions.Throttled):  # type: ignore[misc]
    """Too many sign-in attempts: 429, ``{"detail", "code": "rate_limited"}`` and
    ``Retry-After`` (whole seconds, rounded up; DRF makes every body value a string,
    so the number travels in the header only)."""

    def __init__(self, error: RateLimited) -> None:
        body = {"detail": error.message, "code": error.code}
        exceptions.APIException.__init__(self, body, code=error.code)
        self.wait = max(1, math.ceil(error.retry_after))


def api_error(error: CoatcheckError) -> exceptions.APIException:
    if isinstance(error, AuthenticationError | TokenError) and error_status(error) == 401:
        return CredentialsRefused(error)
    return CoatcheckAPIError(error)


def configured_authenticator() -> Authenticator:
    """The synchronous Authenticator of ``settings.COATCHECK`` (built once)."""
    return get_runtime().sync.authenticator


class _CoatcheckAuthentication(BaseAuthentication):  # type: ignore[misc]
    #: ``None``: the Authenticator of ``settings.COATCHECK``.
    authenticator: ClassVar[Authenticator | None] = None
    # Request headers this class may show the Authenticator (the others' credentials
    # must never reach it through this class, or one transport would pass for another).
    _dropped: ClassVar[str]
    _via: ClassVar[frozenset[str]]

    def get_authenticator(self) -> Authenticator:
        return self.authenticator or configured_authenticator()

    def _configured(self) -> bool:
        """Whether this class uses the Authenticator of the settings (the middleware's)."""
        return self.authenticator is None and (
            type(self).get_authenticator is _CoatcheckAuthentication.get_authenticator
        )

    def _identity(self, request: Request) -> Identity | None:
        """The identity of this class's credential; ``None`` when none was presented.

        :raises CredentialsRefused: a credential was presented and refused.
        :raises CoatcheckAPIError: the store failed (503).
        """
        raw: HttpRequest = request._request
        if self._configured():
            # The middleware's answer (settings' Authenticator) when it is this class's
            # transport: one store read per request, and its cookies renewed by it.
            shared: AuthResult | None = getattr(raw, RESULT_ATTR, None)
            if shared is not None and shared.identity and shared.identity.via in self._via:
                return shared.identity
        headers: Mapping[str, str] = request_headers(raw.META)
        if self._dropped in headers:
            headers = {k: v for k, v in headers.items() if k != self._dropped}
        try:
            result = run_sync(self.get_authenticator().authenticate(headers))
        except CoatcheckError as exc:  # StoreUnavailable, never "logged out"
            raise api_error(exc) from None
        identity = result.identity
        if identity is None or identity.via not in self._via:
            if result.error is not None:
                raise CredentialsRefused(result.error)
            if result.presented:
                raise CredentialsRefused(
                    InvalidCredentials("the credentials are invalid or have expired")
                )
            return None
        return identity

    def _user(self, identity: Identity) -> tuple[Any, Identity]:
        user = user_of(identity)
        if user is None:
            raise CredentialsRefused(InvalidCredentials("the user is unknown or inactive"))
        return user, identity

    def authenticate_header(self, request: Request) -> str:
        # Any value makes DRF answer 401 (not 403) to an unauthenticated request.
        return CHALLENGE


class BearerAuthentication(_CoatcheckAuthentication):
    """``Authorization: Bearer <token>``: a JWT, a hybrid access token or a session
    token, as ``settings.COATCHECK`` issues them. ``request.auth`` is the
    :class:`~coatcheck.auth.Identity` (its claims, session id, auth_time).

    No CSRF check: browsers never attach this header on their own.
    """

    _dropped = "cookie"
    _via = frozenset({BearerTransport.name, "dpop"})
    #: True: a bearer token this class refuses is left to the classes listed after it
    #: (simplejwt's ``JWTAuthentication`` while its tokens are still out, see the
    #: migration guide) instead of a 401 here.
    passthrough: ClassVar[bool] = False

    def authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        if not self.passthrough:
            return self._authenticate(request)
        try:
            return self._authenticate(request)
        except CredentialsRefused:
            return None

    def _authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        identity = self._identity(request)
        if identity is None:
            header = str(request._request.META.get("HTTP_AUTHORIZATION", ""))
            if header[:7].lower().rstrip() == "bearer":
                # A Bearer header with no readable token: refused, not "none sent" (another
                # scheme, Basic say, is left to the classes after this one).
                raise CredentialsRefused(InvalidCredentials("the bearer token is malformed"))
            return None
        return self._user(identity)


class StatelessBearerAuthentication(BearerAuthentication):
    """:class:`BearerAuthentication` without the user's database row: ``request.user``
    is an :class:`~coatcheck.adapters.django.token_user.IdentityUser` (id and username
    from the token, no staff flag, no permissions), as simplejwt's
    ``JWTStatelessUserAuthentication`` does. No query per request, so a deactivated or
    deleted user is not noticed here: in hybrid and session modes revoke their sessions
    (``revoke_user``), which ends their tokens within the revocation bound; a jwt-mode
    token lives until ``exp`` whatever happens to the user.
    """

    def _user(self, identity: Identity) -> tuple[Any, Identity]:
        return IdentityUser(identity), identity


class SessionCookieAuthentication(_CoatcheckAuthentication):
    """coatcheck's session cookie, with Django's CSRF check on unsafe methods exactly as
    DRF's ``SessionAuthentication`` enforces it (``X-CSRFToken`` with the
    ``csrftoken`` cookie, trusted origins). ``request.auth`` is the Identity.
    """

    _dropped = "authorization"
    _via = frozenset({CookieTransport.name})

    def authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        identity = self._identity(request)
        if identity is None:
            return None
        found = self._user(identity)
        self.enforce_csrf(request)
        return found

    def enforce_csrf(self, request: Request) -> None:
        """Django's CsrfViewMiddleware check, as DRF's SessionAuthentication runs it.

        :raises PermissionDenied: 403, with Django's reason.
        """

        def dummy_get_response(request: HttpRequest) -> None:  # pragma: no cover
            return None

        check = CSRFCheck(dummy_get_response)
        check.process_request(request)  # populates request.META["CSRF_COOKIE"]
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF Failed: {reason}", code="csrf_failed")


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's exception handler, plus a ``code`` beside a lone ``detail`` (DRF's own
    errors: ``not_authenticated``, ``permission_denied``, ``parse_error`` ...), so every
    error body has the shape coatcheck's have. Opt in with
    ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "coatcheck.adapters.django.drf.exception_handler"``.
    """
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(exc, exceptions.APIException)
        and isinstance(response.data, dict)
        and list(response.data) == ["detail"]
    ):
        codes = exc.get_codes()
        if isinstance(codes, str):
            response.data["code"] = codes
    return response


# -- bodies -------------------------------------------------------------------------------


class JSONBodyParser(BaseParser):  # type: ignore[misc]
    """JSON parsed strictly (:func:`coatcheck.bodies.parse_json`): UTF-8 only, no lone
    surrogate or NUL, no duplicate names, bounded depth and size; a 400 (413 for size)
    with coatcheck's code instead of a 500 in the code that reads it later."""

    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = stream.read(MAX_BODY + 1)
        try:
            if len(body) > MAX_BODY:
                raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
            return parse_json(body)
        except CoatcheckError as exc:
            raise CoatcheckAPIError(exc) from None


try:  # drf-spectacular, when installed, shows the security schemes in the schema
    import drf_spectacular  # noqa: F401
except ImportError:  # pragma: no cover - an optional extra
    pass
else:
    from . import openapi  # noqa: F401
