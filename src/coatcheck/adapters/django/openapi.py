"""drf-spectacular extensions: coatcheck's security schemes and token views in the schema.

Loaded by :mod:`coatcheck.adapters.django.drf` when drf-spectacular is installed
(spectacular registers an extension when its class is defined), so nothing needs
listing in the settings. Views authenticated by
:class:`~coatcheck.adapters.django.drf.BearerAuthentication` show the
``coatcheckBearer`` scheme (HTTP bearer, RFC 6750), those by
:class:`~coatcheck.adapters.django.drf.SessionCookieAuthentication` the
``coatcheckCookie`` scheme (an API key in the session cookie); the token views show
their request bodies and token responses.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema

from ...auth.transports import DEFAULT_COOKIE_NAME, CookieTransport
from .drf_serializers import (
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    TokenRevokeSerializer,
)

__all__ = ["BearerScheme", "CookieScheme", "TokenViewsSchema"]

_PREFIX = "coatcheck.adapters.django.drf."
_VIEWS = "coatcheck.adapters.django.drf_views."
_ERROR = OpenApiResponse(
    description='Refused: `{"detail": message, "code": a stable coatcheck code}`'
)


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``Authorization: Bearer``: a JWT in jwt and hybrid modes, opaque in session mode."""

    target_class = _PREFIX + "BearerAuthentication"
    name = "coatcheckBearer"
    match_subclasses = True

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        authenticator = _authenticator(self.target)
        opaque = authenticator is not None and authenticator.strategy.name == "session"
        scheme = {"type": "http", "scheme": "bearer"}
        if not opaque:
            scheme["bearerFormat"] = "JWT"
        return scheme


class CookieScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The session cookie (CSRF-checked on unsafe methods)."""

    target_class = _PREFIX + "SessionCookieAuthentication"
    name = "coatcheckCookie"
    match_subclasses = True

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        authenticator = _authenticator(self.target)
        name = DEFAULT_COOKIE_NAME
        if authenticator is not None:
            cookie = next(
                (t for t in authenticator.transports if isinstance(t, CookieTransport)), None
            )
            if cookie is not None:
                name = cookie.cookie_name
        return {"type": "apiKey", "in": "cookie", "name": name}


def _authenticator(target: Any) -> Any:
    """The class's own Authenticator or the configured one; ``None`` when the settings
    name none yet (the schema then shows the defaults)."""
    try:
        instance = target() if isinstance(target, type) else target
        return instance.get_authenticator()
    except Exception:
        return None


def _is(view: type[Any], name: str) -> bool:
    # By name: drf imports this module (to register it), so it cannot import drf back,
    # nor drf_views (which imports rest_framework.views: see drf's docstring).
    return any(c.__name__ == name and c.__module__ == _VIEWS[:-1] for c in view.__mro__)


def _token_schema(view: type[Any], request: type[Any], description: str) -> type[Any]:
    described: type[Any] = extend_schema(
        request=request,
        responses={200: TokenPairSerializer, 400: _ERROR, 401: _ERROR},
        description=description,
        auth=[],
    )(view)
    return described


class TokenViewsSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    """Request and response bodies of the token views."""

    target_class = _VIEWS + "_TokenView"
    match_subclasses = True

    def view_replacement(self) -> type[Any]:
        view: type[Any] = self.target
        if _is(view, "TokenRevokeView"):
            revoke: type[Any] = extend_schema(
                request=TokenRevokeSerializer,
                responses={204: None, 400: _ERROR},
                description=view.__doc__,
            )(view)
            return revoke
        if _is(view, "TokenRefreshView"):
            return _token_schema(view, TokenRefreshSerializer, view.__doc__ or "")
        return _token_schema(view, TokenObtainSerializer, view.__doc__ or "")
