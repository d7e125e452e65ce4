"""Django REST framework token views on coatcheck: obtain, refresh, revoke.

In ``urls.py``::

    from coatcheck.adapters.django import drf_views

    urlpatterns = [
        path("api/token/", drf_views.TokenObtainView.as_view()),
        path("api/token/refresh/", drf_views.TokenRefreshView.as_view()),
        path("api/token/revoke/", drf_views.TokenRevokeView.as_view()),
    ]

They answer as djangorestframework-simplejwt's do (``access``, ``refresh``), so its
clients keep working; errors in DRF's format with coatcheck's codes (see
:mod:`coatcheck.adapters.django.drf`, which holds the authentication classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import get_user_model
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ...auth import Authenticator, HybridStrategy
from ...clock import SystemClock
from ...errors import (
    CoatcheckError,
    InputError,
    InvalidCredentials,
    RateLimited,
)
from ...ratelimit import LoginLimiter
from ...sync import run_sync
from ..wsgi import request_headers
from .conf import get_runtime
from .drf import (
    CHALLENGE,
    CoatcheckAPIError,
    CredentialsRefused,
    JSONBodyParser,
    SignInThrottled,
    api_error,
    configured_authenticator,
)
from .drf_serializers import (
    TokenObtainSerializer,
    TokenRefreshSerializer,
    TokenRevokeSerializer,
)

__all__ = ["TokenObtainView", "TokenRefreshView", "TokenRevokeView"]


class _TokenView(APIView):  # type: ignore[misc]
    authentication_classes: ClassVar[tuple[type[BaseAuthentication], ...]] = ()
    permission_classes: ClassVar[tuple[type[Any], ...]] = ()
    parser_classes: ClassVar[tuple[type[BaseParser], ...]] = (
        JSONBodyParser,
        FormParser,
        MultiPartParser,
    )
    #: ``None``: the Authenticator of ``settings.COATCHECK``.
    authenticator: ClassVar[Authenticator | None] = None
    serializer_class: ClassVar[type[serializers.Serializer]]

    def get_authenticator(self) -> Authenticator:
        return self.authenticator or configured_authenticator()

    def get_authenticate_header(self, request: Request) -> str:
        # DRF turns a 401 into a 403 when the view has no challenge to send.
        return CHALLENGE

    def valid(self, request: Request) -> dict[str, Any]:
        if not isinstance(request.data, Mapping):
            raise CoatcheckAPIError(InputError("the body must be a JSON object or a form"))
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def run(self, coro: Any) -> Any:
        try:
            return run_sync(coro)
        except CoatcheckError as exc:
            raise api_error(exc) from None


def _no_store(data: dict[str, Any], status: int = 200) -> Response:
    # RFC 6749 §5.1: token responses must not be cached.
    return Response(data, status=status, headers={"Cache-Control": "no-store"})


def _headers(request: Request) -> dict[str, str]:
    # Only what a token request may use (User-Agent for the device list, DPoP): the
    # body carries the credentials, and a cookie or bearer header must not vouch here.
    headers = request_headers(request._request.META)
    return {k: v for k, v in headers.items() if k not in ("cookie", "authorization")}


_CLOCK = SystemClock()


def _expires_in(expires_at: float) -> int:
    return max(0, int(expires_at - _CLOCK.now()))


_limiters: dict[int, tuple[Any, LoginLimiter]] = {}


def _store_limiter(store: Any) -> LoginLimiter:
    """The sign-in limiter counting in ``store`` (one per store object)."""
    found = _limiters.get(id(store))
    if found is None or found[0] is not store:
        found = (store, LoginLimiter(store))
        _limiters[id(store)] = found
    return found[1]


class TokenObtainView(_TokenView):
    """POST the username and password: ``{"access", "refresh", "token_type",
    "expires_in"}`` (``refresh`` only in hybrid mode). A wrong username or password
    answers one 401 ``invalid_credentials`` for both (no user enumeration).

    Sign-ins are throttled per account and per client IP
    (:class:`~coatcheck.ratelimit.LoginLimiter`, counted in the store of
    ``settings.COATCHECK``, shared by every process on it): an attempt is reserved
    before the password is checked, and past the limit the answer is 429
    ``rate_limited`` with ``Retry-After``, without any password work. Set
    ``limiter`` on a subclass to count elsewhere or with other limits.
    """

    serializer_class = TokenObtainSerializer
    #: ``None``: a :class:`~coatcheck.ratelimit.LoginLimiter` on the settings' store.
    limiter: ClassVar[LoginLimiter | None] = None

    def get_limiter(self) -> LoginLimiter:
        return self.limiter or _store_limiter(get_runtime().sync.store)

    def post(self, request: Request) -> Response:
        fields = self.valid(request)
        username_field = get_user_model().USERNAME_FIELD
        name = fields[username_field]
        ip = str(request._request.META.get("REMOTE_ADDR") or "")[:64]

        async def checked() -> Any | None:
            # Reserve, then check the password (see coatcheck.ratelimit).
            async with self.get_limiter().attempt(name, ip) as attempt:
                user = django_authenticate(
                    request._request, **{username_field: name, "password": fields["password"]}
                )
                if user is None or not getattr(user, "is_active", True):
                    return None
                await attempt.succeeded()
                return user

        try:
            user = run_sync(checked())
        except RateLimited as exc:
            raise SignInThrottled(exc) from None
        except CoatcheckError as exc:
            raise api_error(exc) from None
        if user is None:
            raise CredentialsRefused(InvalidCredentials("wrong username or password"))
        headers = _headers(request)
        result = self.run(
            self.get_authenticator().login(
                str(user.pk),
                headers=headers,
                data={"username": user.get_username()},
                persistent=fields["remember"],
                # A native client has no previous credential to take over.
                revoke_previous=False,
                ip=ip,
            )
        )
        answer: dict[str, Any] = {
            "access": result.token,
            "token_type": result.token_type,
            "expires_in": _expires_in(result.expires_at),
        }
        if result.refresh_token is not None:
            answer["refresh"] = result.refresh_token
        return _no_store(answer)


class TokenRefreshView(_TokenView):
    """POST ``{"refresh": ...}`` (hybrid mode): a new pair; the old refresh token is
    retired. Racing refreshes (two tabs) get the same pair; a retired token whose
    successor was used revokes the whole session and answers 401
    ``refresh_token_reused``. 404 ``no_refresh`` in the modes without refresh tokens."""

    serializer_class = TokenRefreshSerializer

    def post(self, request: Request) -> Response:
        authenticator = self.get_authenticator()
        if not isinstance(authenticator.strategy, HybridStrategy):
            raise exceptions.NotFound(
                {"detail": "this mode has no refresh tokens", "code": "no_refresh"},
                code="no_refresh",
            )
        fields = self.valid(request)
        result = self.run(
            authenticator.refresh_bearer(fields["refresh"], headers=_headers(request))
        )
        return _no_store(
            {
                "access": result.token,
                "refresh": result.refresh_token,
                "token_type": result.token_type,
                "expires_in": _expires_in(result.expires_at),
            }
        )


class TokenRevokeView(_TokenView):
    """Log out: POST ``{"refresh": ...}`` and/or send the access token as
    ``Authorization: Bearer``; the session behind either ends (and is published to
    the revocation feed, so hybrid access tokens stop at once). 204, also for a token
    that is already dead (revoking is idempotent)."""

    serializer_class = TokenRevokeSerializer

    def post(self, request: Request) -> Response:
        fields = self.valid(request)
        authenticator = self.get_authenticator()
        refresh = fields.get("refresh")
        if refresh:
            self.run(authenticator.strategy.revoke(refresh))
        headers = request_headers(request._request.META)
        if "authorization" in headers:
            bearer = {k: v for k, v in headers.items() if k != "cookie"}
            self.run(authenticator.logout(bearer))
        return Response(status=204)
