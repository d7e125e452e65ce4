from __future__ import annotations

import json

import pytest

from coatcheck import errors
from coatcheck.adapters.http import error_body, error_headers, error_json, error_status


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.MissingCredentials(), 401),
        (errors.InvalidCredentials(), 401),
        (errors.RevokedCredentials(), 401),
        (errors.StaleAuthentication(), 401),
        (errors.ExpiredToken(claim="exp"), 401),
        (errors.InvalidSignature(), 401),
        (errors.CrossOriginRequest(), 403),
        (errors.MissingCsrfToken(), 403),
        (errors.CsrfTokenMismatch(), 403),
        (errors.RateLimited(retry_after=3.2), 429),
        (errors.InputError(), 400),
        (errors.InvalidText(), 400),
        (errors.PayloadTooLarge(), 413),
        (errors.SignatureExpired(), 400),
        (errors.ConflictError(), 409),
        (errors.StoreUnavailable(), 503),
        (errors.StoreError(), 500),
        (errors.CookieError(), 500),
        (errors.ConfigurationError(), 500),
        (errors.CoatcheckError(), 500),
        (ValueError("not ours"), 500),
    ],
)
def test_status_table(exc: BaseException, status: int) -> None:
    assert error_status(exc) == status


def test_every_error_class_has_a_status() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert error_status(cls()) in {400, 401, 403, 409, 413, 429, 500, 503}


def test_body_has_stable_code_and_message() -> None:
    exc = errors.StoreUnavailable("the session store cannot be reached")
    assert error_body(exc) == {
        "error": "store_unavailable",
        "message": "the session store cannot be reached",
    }
    assert json.loads(error_json(exc)) == error_body(exc)
    assert error_body(RuntimeError("secret detail")) == {
        "error": "internal_error",
        "message": "internal server error",
    }


def test_headers() -> None:
    assert ("www-authenticate", "Bearer") in error_headers(errors.MissingCredentials())
    assert ("www-authenticate", 'Bearer error="invalid_token"') in error_headers(
        errors.InvalidCredentials()
    )
    assert ("retry-after", "3") in error_headers(errors.RateLimited(retry_after=3.2))
    assert ("retry-after", "5") in error_headers(errors.StoreUnavailable())
    assert error_body(errors.RateLimited(retry_after=3.2))["retry_after"] == 3.2
