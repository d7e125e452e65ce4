"""A small DRF site for the tests: URLs, views, and the Authenticator they use.

Django is configured by this directory's conftest (``settings.py``); :data:`SETTINGS`
is what the DRF tests put on top with ``override_settings``. The views authenticate
with ``SITE.authenticator``, which each test sets to one built on a real store (the
``configured/`` ones with ``settings.COATCHECK``'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.authentication import JWTAuthentication

from coatcheck.adapters.django import drf, drf_views
from coatcheck.auth import Authenticator

SETTINGS: dict[str, Any] = {
    "ROOT_URLCONF": __name__,
    # DRF's classes alone: what each test shows is theirs, not a middleware's.
    "MIDDLEWARE": [],
    "REST_FRAMEWORK": {
        "EXCEPTION_HANDLER": "coatcheck.adapters.django.drf.exception_handler",
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    },
}


@dataclass
class Site:
    authenticator: Authenticator | None = None


SITE = Site()


def _current() -> Authenticator:
    if SITE.authenticator is None:
        raise RuntimeError("set SITE.authenticator first")
    return SITE.authenticator


class Bearer(drf.BearerAuthentication):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Passthrough(drf.BearerAuthentication):
    passthrough = True

    def get_authenticator(self) -> Authenticator:
        return _current()


class Stateless(drf.StatelessBearerAuthentication):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Cookie(drf.SessionCookieAuthentication):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Obtain(drf_views.TokenObtainView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Refresh(drf_views.TokenRefreshView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Revoke(drf_views.TokenRevokeView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class MeSerializer(serializers.Serializer):  # type: ignore[misc]
    username = serializers.CharField()
    mode = serializers.CharField()
    via = serializers.CharField()


class Me(GenericAPIView):  # type: ignore[misc]
    """Who am I: the user and the coatcheck identity behind it."""

    serializer_class = MeSerializer

    authentication_classes = (Bearer, Cookie)
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response(self._me(request))

    def post(self, request: Request) -> Response:
        return Response(self._me(request))

    @staticmethod
    def _me(request: Request) -> dict[str, Any]:
        return {
            "username": request.user.get_username(),
            "mode": request.auth.mode,
            "via": request.auth.via,
        }


class StatelessMe(Me):
    authentication_classes = (Stateless,)


class MigratingMe(Me):
    """coatcheck first, simplejwt's class behind it: both kinds of token work."""

    authentication_classes = (Passthrough, JWTAuthentication)

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username()})


class ConfiguredMe(Me):
    """The same view with the classes as a project lists them (settings.COATCHECK)."""

    authentication_classes = (drf.BearerAuthentication, drf.SessionCookieAuthentication)


urlpatterns = [
    path("configured/token/", drf_views.TokenObtainView.as_view()),
    path("configured/token/refresh/", drf_views.TokenRefreshView.as_view()),
    path("configured/token/revoke/", drf_views.TokenRevokeView.as_view()),
    path("configured/me/", ConfiguredMe.as_view()),
    path("api/token/", Obtain.as_view()),
    path("api/token/refresh/", Refresh.as_view()),
    path("api/token/revoke/", Revoke.as_view()),
    path("api/me/", Me.as_view()),
    path("api/stateless/me/", StatelessMe.as_view()),
    path("api/migrating/me/", MigratingMe.as_view()),
]
