"""Who sent a Django request: coatcheck's :class:`~coatcheck.auth.Authenticator` on it.

:func:`authenticate` (sync views, WSGI, DRF's ``authenticate``) and :func:`aauthenticate`
(async views, the ASGI path: the async store's read runs in the event loop, no thread)
return the :class:`~coatcheck.auth.Identity` behind the request's credential, or
``None`` for a guest; :func:`authenticate_request` / :func:`aauthenticate_request` the
whole :class:`~coatcheck.auth.AuthResult` (cookies to renew or clear, whether a
credential was presented, why it was refused). The result is kept on the request, so
the middleware, DRF and the view share one store read.

Absent, malformed or forged credentials make a guest and never raise; only
:class:`~coatcheck.errors.StoreUnavailable` / :class:`~coatcheck.errors.StoreError`
propagate (an outage is not "logged out": the middleware answers 503).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...auth.authenticator import AuthResult
from ...auth.identity import Identity
from ...sync import run_sync
from ..wsgi import request_headers
from .conf import get_runtime

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = [
    "RESULT_ATTR",
    "aauthenticate",
    "aauthenticate_request",
    "authenticate",
    "authenticate_request",
    "headers_of",
]

#: The request attribute the :class:`~coatcheck.auth.AuthResult` is kept in.
RESULT_ATTR = "_coatcheck_auth"


def headers_of(request: HttpRequest) -> dict[str, str]:
    """The request headers as ``{lower-case name: value}``, cached in ``request.META``.

    Django's ``META`` has the WSGI/CGI shape on both WSGI and ASGI, so the WSGI
    adapter's reader serves both.
    """
    return request_headers(request.META)


def authenticate_request(request: HttpRequest) -> AuthResult:
    """The request's :class:`~coatcheck.auth.AuthResult`, from the synchronous store.

    :raises StoreUnavailable: the store cannot be reached. :raises StoreError.
    :raises ConfigurationError: a bad ``settings.COATCHECK``.
    """
    result: AuthResult | None = getattr(request, RESULT_ATTR, None)
    if result is None:
        authenticator = get_runtime().sync.authenticator
        result = run_sync(authenticator.authenticate(headers_of(request)))
        setattr(request, RESULT_ATTR, result)
    return result


async def aauthenticate_request(request: HttpRequest) -> AuthResult:
    """:func:`authenticate_request` in the running event loop (the async store's read)."""
    result: AuthResult | None = getattr(request, RESULT_ATTR, None)
    if result is None:
        authenticator = get_runtime().async_parts().authenticator
        result = await authenticator.authenticate(headers_of(request))
        setattr(request, RESULT_ATTR, result)
    return result


def authenticate(request: HttpRequest) -> Identity | None:
    """The identity behind the request's credential, or ``None`` for a guest.

    Raises as :func:`authenticate_request`.
    """
    return authenticate_request(request).identity


async def aauthenticate(request: HttpRequest) -> Identity | None:
    """:func:`authenticate` for async code. Raises as :func:`authenticate_request`."""
    return (await aauthenticate_request(request)).identity
