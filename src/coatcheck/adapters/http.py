"""From coatcheck errors to HTTP: one table of statuses and one JSON error body.

Errors do not know HTTP (design rule 3); every adapter and the demo use this table,
so a given error gets the same status everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import (
    AuthenticationError,
    CoatcheckError,
    ConfigurationError,
    ConflictError,
    CookieError,
    CsrfError,
    InputError,
    PayloadTooLarge,
    RateLimited,
    SignatureError,
    StoreError,
    StoreUnavailable,
    TokenError,
)

__all__ = ["error_body", "error_headers", "error_json", "error_status"]

# Looked up along the exception's MRO, so the most specific class wins.
_STATUS: dict[type[CoatcheckError], int] = {
    AuthenticationError: 401,  # RFC 9110 §15.5.2
    TokenError: 401,  # a presented token was refused (RFC 6750 §3.1 invalid_token)
    CsrfError: 403,
    RateLimited: 429,  # RFC 6585 §4
    InputError: 400,
    PayloadTooLarge: 413,  # RFC 9110 §15.5.14 Content Too Large
    SignatureError: 400,  # a signed value in the request was tampered with
    ConflictError: 409,
    StoreUnavailable: 503,  # RFC 9110 §15.6.4: temporary, try again
    StoreError: 500,
    CookieError: 500,  # the server tried to write an illegal cookie: a bug or bad config
    ConfigurationError: 500,
    CoatcheckError: 500,
}


def error_status(exc: BaseException) -> int:
    """The HTTP status for ``exc`` (500 for anything that is not a CoatcheckError)."""
    for cls in type(exc).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"error": code, "message": ...}``; never echoes a credential (messages cannot hold one)."""
    if isinstance(exc, CoatcheckError):
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        if isinstance(exc, RateLimited):
            body["retry_after"] = exc.retry_after
        return body
    return {"error": "internal_error", "message": "internal server error"}


def error_json(exc: BaseException) -> bytes:
    """:func:`error_body` as compact UTF-8 JSON."""
    return json.dumps(error_body(exc), separators=(",", ":")).encode()


def error_headers(exc: BaseException) -> list[tuple[str, str]]:
    """Headers that go with the error response (Content-Type, Retry-After, WWW-Authenticate)."""
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    status = error_status(exc)
    if status == 401:
        # RFC 6750 §3: say which scheme to use; name the error only for a bad token.
        if isinstance(exc, TokenError) or (
            isinstance(exc, AuthenticationError) and exc.code != "missing_credentials"
        ):
            headers.append(("www-authenticate", 'Bearer error="invalid_token"'))
        else:
            headers.append(("www-authenticate", "Bearer"))
    elif isinstance(exc, RateLimited):
        headers.append(("retry-after", str(max(1, round(exc.retry_after)))))
    elif isinstance(exc, StoreUnavailable):
        headers.append(("retry-after", "5"))
    return headers
