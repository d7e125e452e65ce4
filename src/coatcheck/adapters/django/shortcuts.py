"""For API views: a 401 instead of a login redirect, and strict JSON bodies.

Errors raised here are coatcheck errors; the middleware's ``process_exception`` turns
them into the JSON error every adapter answers (``{"error": code, "message": ...}``,
400 / 401 / 413 ...), never a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from ...bodies import content_length, parse_json
from ...errors import InputError, InvalidCredentials, MissingCredentials, PayloadTooLarge
from .auth import RESULT_ATTR

__all__ = ["api_login_required", "json_body"]

F = TypeVar("F", bound=Callable[..., Any])
#: Largest JSON body :func:`json_body` reads (bytes).
MAX_BODY = 64 * 1024


def _refusal(request: HttpRequest) -> MissingCredentials | InvalidCredentials:
    result = getattr(request, RESULT_ATTR, None)
    if result is not None and result.presented:
        return InvalidCredentials("the credential is invalid or has expired")
    return MissingCredentials("log in, or send a bearer token")


def api_login_required(view: F) -> F:
    """Like ``login_required``, but a guest gets ``401`` (with ``WWW-Authenticate``):
    ``missing_credentials`` or ``invalid_credentials``. Sync and async views."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            user = await request.auser()
            if not user.is_authenticated:
                raise _refusal(request)
            return await view(request, *args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            raise _refusal(request)
        return view(request, *args, **kwargs)

    return cast(F, wrapper)


def json_body(request: HttpRequest, *, max_body: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object body, every string valid text.

    :raises PayloadTooLarge: over ``max_body`` bytes (413). :raises InputError: not
        ``application/json``, empty, not JSON or not an object (400); InvalidText for
        a lone surrogate or NUL (400).
    """
    media = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise InputError("send a JSON body as application/json")
    declared = content_length(request.META.get("CONTENT_LENGTH") or None)
    if declared is not None and declared > max_body:
        raise PayloadTooLarge(f"the body is over {max_body} bytes")
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge("the body is too large") from exc
    if len(body) > max_body:
        raise PayloadTooLarge(f"the body is over {max_body} bytes")
    if not body.strip():
        raise InputError("the body is empty; send a JSON object")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InputError("the JSON body must be an object")
    return data
