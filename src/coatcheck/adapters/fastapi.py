"""FastAPI integration: ``optional_user`` / ``current_user`` dependencies with OpenAPI security.

::

    cc = CoatCheck(app, authenticator=authenticator)

    @app.get("/me")
    async def me(user: Identity = Depends(cc.current_user)) -> dict[str, str]:
        return {"name": user.name}

The dependencies declare two OpenAPI security schemes, HTTP bearer and an API key in
the authenticator's cookie, so ``/docs`` shows the lock and "Authorize" takes a
bearer token. The schemes only document: the :class:`~coatcheck.auth.Authenticator`
reads both transports itself, once per request (reusing what
:class:`~coatcheck.adapters.asgi.AuthMiddleware` found when it is installed too).
Errors answer ``{"error": code, "message": ...}`` with the status of
:func:`~coatcheck.adapters.http.error_status` (401 with ``WWW-Authenticate: Bearer``).

Request bodies: declare text fields of a body model as :data:`Text` (a ``str`` that
is Unicode scalar values without NUL, :func:`coatcheck.bodies.check_text`), so a
lone surrogate from JSON's ``"\\ud800"`` is a 400 ``invalid_text`` before the
endpoint runs, not a 500 in whatever encodes it later. ``init_app`` also replaces
FastAPI's default validation-error handler, which echoes the input and answers 500
when that input holds a lone surrogate or an infinite number.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response, Security
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import APIKey
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import JSONResponse
from fastapi.security.base import SecurityBase
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from ..auth.authenticator import Authenticator, LoginResult
from ..auth.identity import Identity
from ..auth.transports import CookieTransport
from ..bodies import check_text
from ..errors import CoatcheckError, InvalidCredentials, InvalidText, MissingCredentials
from .asgi import AUTH_ERROR_KEY, IDENTITY_KEY, auth_error_of, identity_of, request_headers
from .http import error_body, error_headers, error_status

__all__ = ["CoatCheck", "Text", "error_response"]

_PRESENTED_KEY = "coatcheck.presented"
_Resolve = Callable[[Request, Response], Awaitable[Any]]
_NOT_SCALAR = re.compile("[\ud800-\udfff]")


def _valid_text(value: str) -> str:
    try:
        return check_text(value, field="the field")
    except InvalidText as exc:
        raise PydanticCustomError(InvalidText.code, exc.message) from None


#: A ``str`` body field that must be valid text: Unicode scalar values, no NUL. A
#: refusal is 400 ``invalid_text`` (with :meth:`CoatCheck.init_app`'s handler).
Text = Annotated[str, AfterValidator(_valid_text)]


class _BearerScheme(SecurityBase):
    """OpenAPI ``{"type": "http", "scheme": "bearer"}``; reads nothing (the authenticator does)."""

    def __init__(self, scheme_name: str) -> None:
        self.model = HTTPBearerModel(bearerFormat="opaque session token or JWT")
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


class _CookieScheme(SecurityBase):
    """OpenAPI ``{"type": "apiKey", "in": "cookie", "name": ...}``; reads nothing."""

    def __init__(self, scheme_name: str, cookie_name: str) -> None:
        self.model = APIKey.model_validate({"type": "apiKey", "in": "cookie", "name": cookie_name})
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


def error_response(exc: CoatcheckError) -> JSONResponse:
    """The JSON error body and status for a coatcheck error."""
    headers = {k: v for k, v in error_headers(exc) if k != "content-type"}
    return JSONResponse(error_body(exc), status_code=error_status(exc), headers=headers)


async def _on_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CoatcheckError):  # pragma: no cover - registered for these only
        raise exc
    return error_response(exc)


def _safe_loc(part: object) -> object:
    # A location may name a client's own member name: keep it encodable as UTF-8.
    return _NOT_SCALAR.sub("\ufffd", part) if isinstance(part, str) else part


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, without echoing the input (which can hold a lone surrogate or an
    infinite number that no JSON response can carry); 400 ``invalid_text`` for text."""
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for these
        raise exc
    errors = exc.errors()
    detail = [
        {
            "loc": [_safe_loc(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]
    headers = {"cache-control": "no-store"}
    if any(error.get("type") == InvalidText.code for error in errors):
        body = {"error": InvalidText.code, "message": "a text field is not valid Unicode or "
                "contains a NUL character", "detail": detail}  # fmt: skip
        return JSONResponse(body, status_code=400, headers=headers)
    body = {"error": "bad_request", "message": "the request does not match what this "
            "endpoint takes", "detail": detail}  # fmt: skip
    return JSONResponse(body, status_code=422, headers=headers)


class CoatCheck:
    """Authentication dependencies for FastAPI, built on ``authenticator``.

    ``optional_user`` gives the Identity or ``None``; ``current_user`` gives the
    Identity or answers 401 (``missing_credentials`` / ``invalid_credentials``). A
    renewed cookie goes on the response (FastAPI copies it to the response it makes
    from the endpoint's return value; an endpoint that returns a ``Response`` itself
    should install :class:`~coatcheck.adapters.asgi.AuthMiddleware` instead, which
    these dependencies then reuse). A store outage answers 503. ``init_app`` (or
    passing ``app``) registers the error handler that writes the stable error body.
    """

    def __init__(
        self,
        app: FastAPI | None = None,
        *,
        authenticator: Authenticator,
        bearer_scheme: str = "bearer",
        cookie_scheme: str = "cookie",
    ) -> None:
        self.authenticator = authenticator
        names = [t.name for t in authenticator.transports]
        cookies = [t for t in authenticator.transports if isinstance(t, CookieTransport)]
        bearer = _BearerScheme(bearer_scheme) if "bearer" in names else None
        cookie = _CookieScheme(cookie_scheme, cookies[0].cookie_name) if cookies else None
        resolve = self._resolver()
        self.optional_user = _with_schemes(resolve, bearer, cookie, "optional_user")
        self.current_user = _with_schemes(
            self._requiring(resolve), bearer, cookie, "current_user"
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: FastAPI) -> None:
        """Answer coatcheck errors with the stable JSON body (401, 403, 503 ...), and
        replace FastAPI's default validation-error handler (not one the app set) with
        one that never echoes the input: 400 ``invalid_text`` for a :data:`Text` field
        that is not valid text, else 422 ``bad_request`` with ``detail``."""
        app.add_exception_handler(CoatcheckError, _on_error)
        if app.exception_handlers.get(RequestValidationError) is (
            request_validation_exception_handler
        ):
            app.add_exception_handler(RequestValidationError, _on_invalid_request)

    def _resolver(self) -> _Resolve:
        authenticator = self.authenticator

        async def resolve(request: Request, response: Response) -> Identity | None:
            scope = request.scope
            if IDENTITY_KEY in scope:  # AuthMiddleware (or an earlier dependency) ran
                return identity_of(scope)
            result = await authenticator.authenticate(request_headers(scope))
            scope[IDENTITY_KEY] = result.identity
            scope[_PRESENTED_KEY] = result.presented
            if result.error is not None:
                scope[AUTH_ERROR_KEY] = result.error
            for name, value in result.set_headers:
                response.headers.append(name, value)
            return result.identity

        return resolve

    def _requiring(self, resolve: _Resolve) -> _Resolve:
        authenticator = self.authenticator

        async def require(request: Request, response: Response) -> Identity:
            identity: Identity | None = await resolve(request, response)
            if identity is not None:
                return identity
            error = auth_error_of(request.scope)
            if error is not None:
                raise error  # a refused DPoP proof or binding: its own 401 and challenge
            if request.scope.get(_PRESENTED_KEY) or _presented(authenticator, request):
                raise InvalidCredentials("the credentials are invalid or have expired")
            raise MissingCredentials("log in first: no session cookie or bearer token was sent")

        return require

    async def login(
        self,
        request: Request,
        response: Response,
        user_id: str,
        *,
        data: dict[str, Any] | None = None,
        persistent: bool = True,
        revoke_previous: bool = True,
    ) -> LoginResult:
        """Log ``user_id`` in; the cookie goes on ``response``, ``result.token`` to a native app.

        Raises StoreError / StoreUnavailable.
        """
        result = await self.authenticator.login(
            user_id,
            headers=request_headers(request.scope),
            data=data,
            persistent=persistent,
            revoke_previous=revoke_previous,
            ip=request.client.host if request.client else "",
        )
        for name, value in result.set_headers:
            response.headers.append(name, value)
        return result

    async def logout(self, request: Request, response: Response) -> None:
        """Revoke the presented credential; clear the cookie on ``response``.

        Raises StoreError / StoreUnavailable.
        """
        for name, value in await self.authenticator.logout(request_headers(request.scope)):
            response.headers.append(name, value)

    def __repr__(self) -> str:
        return f"CoatCheck({self.authenticator!r})"


def _with_schemes(
    resolve: _Resolve, bearer: _BearerScheme | None, cookie: _CookieScheme | None, name: str
) -> Any:
    """A dependency running ``resolve`` that declares the schemes to OpenAPI.

    Each scheme is its own parameter, so OpenAPI lists them as alternatives (either is
    enough); each costs one no-op call. ``resolve`` is called directly, not as a nested
    dependency: one dependency less to solve per request.
    """
    dependency: Callable[..., Awaitable[Any]]
    if bearer is not None and cookie is not None:

        async def either(
            request: Request,
            response: Response,
            _bearer: None = Security(bearer),
            _cookie: None = Security(cookie),
        ) -> Any:
            return await resolve(request, response)

        dependency = either
    elif bearer is not None or cookie is not None:
        scheme = bearer if bearer is not None else cookie

        async def one(
            request: Request, response: Response, _scheme: None = Security(scheme)
        ) -> Any:
            return await resolve(request, response)

        dependency = one
    else:

        async def undocumented(request: Request, response: Response) -> Any:
            return await resolve(request, response)

        dependency = undocumented
    dependency.__name__ = dependency.__qualname__ = name
    return dependency


def _presented(authenticator: Authenticator, request: Request) -> bool:
    # With AuthMiddleware in front, "was anything presented?" is asked here, cheaply.
    headers = request_headers(request.scope)
    return any(t.read(headers) is not None for t in authenticator.transports)
