"""From coatcheck errors to HTTP: one table of statuses and one JSON error body.

Errors do not know HTTP (design rule 3); every adapter and the demo use this table,
so a given error gets the same status everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import (
    AuthenticationError,
    CoatcheckError,
    ConfigurationError,
    ConflictError,
    CookieError,
    CsrfError,
    InputError,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    PayloadTooLarge,
    RateLimited,
    SignatureError,
    StoreError,
    StoreUnavailable,
    TokenError,
    UseDPoPNonce,
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


def error_status(exc: BaseException, *, token_endpoint: bool = False) -> int:
    """The HTTP status for ``exc`` (500 for anything that is not a CoatcheckError).

    With ``token_endpoint`` (a request that asks for tokens: login, refresh) a refused
    DPoP proof or binding is a 400, as RFC 9449 §5 and RFC 6749 §5.2 have it;
    elsewhere it is a 401 with a challenge (§7.1).
    """
    if token_endpoint and isinstance(exc, _DPOP_REFUSALS):
        return 400
    for cls in type(exc).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


_DPOP_REFUSALS = (InvalidDPoPProof, InvalidDPoPBinding)


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


def _quoted(text: str) -> str:
    # RFC 9110 §5.6.4 quoted-string: escape the two characters that need it.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dpop_challenge(exc: InvalidDPoPProof | InvalidDPoPBinding, algs: Sequence[str]) -> str:
    # RFC 9449 §7.1: invalid_dpop_proof for the proof, invalid_token for the binding,
    # use_dpop_nonce (§9) when the proof lacks the server's nonce.
    if isinstance(exc, UseDPoPNonce):
        code = "use_dpop_nonce"
    elif isinstance(exc, InvalidDPoPBinding):
        code = "invalid_token"
    else:
        code = "invalid_dpop_proof"
    challenge = f'DPoP error="{code}", error_description={_quoted(exc.message)}'
    names = exc.algs or tuple(algs)
    return challenge + (f', algs="{" ".join(names)}"' if names else "")


def error_headers(
    exc: BaseException, *, dpop_algs: Sequence[str] = (), token_endpoint: bool = False
) -> list[tuple[str, str]]:
    """Headers that go with the error response (Content-Type, Retry-After, WWW-Authenticate).

    ``dpop_algs`` (the server accepts DPoP with these proof algorithms) adds a
    ``DPoP algs="..."`` challenge to a bearer one (RFC 9449 §7.2). A refused DPoP
    proof or binding gets its DPoP challenge, and ``DPoP-Nonce`` when the server uses
    nonces; at a ``token_endpoint`` only the nonce (RFC 9449 §8).
    """
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    status = error_status(exc, token_endpoint=token_endpoint)
    if isinstance(exc, _DPOP_REFUSALS):
        if not token_endpoint:
            headers.append(("www-authenticate", _dpop_challenge(exc, dpop_algs)))
        if exc.nonce:
            headers.append(("dpop-nonce", exc.nonce))
    elif status == 401:
        # RFC 6750 §3: say which scheme to use; name the error only for a bad token.
        if isinstance(exc, TokenError) or (
            isinstance(exc, AuthenticationError) and exc.code != "missing_credentials"
        ):
            challenge = 'Bearer error="invalid_token"'
        else:
            challenge = "Bearer"
        if dpop_algs:
            challenge += f', DPoP algs="{" ".join(dpop_algs)}"'
        headers.append(("www-authenticate", challenge))
    elif isinstance(exc, RateLimited):
        headers.append(("retry-after", str(max(1, round(exc.retry_after)))))
    elif isinstance(exc, StoreUnavailable):
        headers.append(("retry-after", "5"))
    return headers
