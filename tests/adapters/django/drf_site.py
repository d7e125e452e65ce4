"""A small DRF site for the tests: settings, URLs, and the Authenticator the views use.

Django's settings are process-wide: they are configured here once (unless another
test module did it first, in which case DRF's own needs are put in with
``override_settings`` by :func:`drf_settings`). The views authenticate with
``SITE.authenticator``, which each test sets to one built on a real store.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="drf-tests-" + "x" * 40,
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "drf_spectacular",
        ],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                # A file: each thread of the concurrent tests gets its own connection.
                "NAME": os.path.join(tempfile.mkdtemp(prefix="cc-drf-"), "db.sqlite3"),
            }
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        REST_FRAMEWORK={
            "EXCEPTION_HANDLER": "coatcheck.adapters.django.drf.exception_handler",
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        },
    )
    django.setup()

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coatcheck.adapters.django import drf
from coatcheck.auth import Authenticator


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


class Stateless(drf.StatelessBearerAuthentication):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Cookie(drf.SessionCookieAuthentication):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Obtain(drf.TokenObtainView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Refresh(drf.TokenRefreshView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class Revoke(drf.TokenRevokeView):
    def get_authenticator(self) -> Authenticator:
        return _current()


class MeSerializer(serializers.Serializer):  # type: ignore[misc]
    username = serializers.CharField()
    mode = serializers.CharField()
    via = serializers.CharField()


@extend_schema_view(get=extend_schema(responses=MeSerializer), post=extend_schema(
    request=None, responses=MeSerializer
))
class Me(APIView):
    """Who am I: the user and the coatcheck identity behind it."""

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


class ConfiguredMe(Me):
    """The same view with the classes as a project lists them (settings.COATCHECK)."""

    authentication_classes = (drf.BearerAuthentication, drf.SessionCookieAuthentication)


urlpatterns = [
    path("configured/token/", drf.TokenObtainView.as_view()),
    path("configured/token/refresh/", drf.TokenRefreshView.as_view()),
    path("configured/token/revoke/", drf.TokenRevokeView.as_view()),
    path("configured/me/", ConfiguredMe.as_view()),
    path("api/token/", Obtain.as_view()),
    path("api/token/refresh/", Refresh.as_view()),
    path("api/token/revoke/", Revoke.as_view()),
    path("api/me/", Me.as_view()),
    path("api/stateless/me/", StatelessMe.as_view()),
]


def migrate() -> None:
    """The auth tables (once per process; the database file is this run's own)."""
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
